//! Input parsing: one command line in, one [`Command`] or [`SyntaxError`] out (PROTOCOL.md §1, §2).
//!
//! Pure: no state, no I/O. Syntax is checked here for everyone; login state is the kernel's business.

/// A command line that passed the syntax check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    Login {
        name: &'a str,
    },
    Logout,
    /// `text` has control characters removed (see [`strip_controls`]) and is never empty.
    Msg {
        name: &'a str,
        text: String,
    },
    MsgAll {
        text: String,
    },
    /// `raw` is set by the `/whoami` spelling.
    WhoAmI {
        raw: bool,
    },
    UserList {
        raw: bool,
    },
    Help,
}

/// Why a line was refused before looking at login state; each is `[ERROR] - REASON`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntaxError {
    UnknownCommand,
    RequireUsername,
    OverageInfo,
    EmptyMessage,
}

/// Parses one input line (already split off its `\n`, already valid UTF-8).
///
/// Returns `None` for a line that is empty after trimming: such a line is ignored entirely.
pub fn parse(line: &str) -> Option<Result<Command<'_>, SyntaxError>> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (token, rest) = split_token(line);
    let (slash, word) = match token.strip_prefix('/') {
        Some(word) => (true, word),
        None => (false, token),
    };
    let mut lower = [0u8; LONGEST_COMMAND];
    Some(match lowercase(word, &mut lower) {
        b"login" => parse_login(rest),
        b"logout" if rest.is_empty() => Ok(Command::Logout),
        b"logout" => Err(SyntaxError::OverageInfo),
        b"msg" => parse_msg(rest),
        b"msgall" => text_arg(rest).map(|text| Command::MsgAll { text }),
        b"whoami" => Ok(Command::WhoAmI { raw: slash }),
        b"userlist" => Ok(Command::UserList { raw: slash }),
        b"help" => Ok(Command::Help),
        _ => Err(SyntaxError::UnknownCommand),
    })
}

/// The length of the longest command word (`userlist`).
const LONGEST_COMMAND: usize = 8;

/// The command word in ASCII lowercase, so `LOGIN` and `Msg` are commands too (names and text keep
/// their case). Copied into `buf` rather than allocated: this runs for every line. A word too long
/// to be a command comes back empty, which is no command either.
fn lowercase<'b>(word: &str, buf: &'b mut [u8; LONGEST_COMMAND]) -> &'b [u8] {
    let Some(lower) = buf.get_mut(..word.len()) else {
        return &[];
    };
    lower.copy_from_slice(word.as_bytes());
    lower.make_ascii_lowercase();
    lower
}

fn parse_login(rest: &str) -> Result<Command<'_>, SyntaxError> {
    match split_token(rest) {
        ("", _) => Err(SyntaxError::RequireUsername),
        (name, "") => Ok(Command::Login { name }),
        _ => Err(SyntaxError::OverageInfo),
    }
}

fn parse_msg(rest: &str) -> Result<Command<'_>, SyntaxError> {
    match split_token(rest) {
        ("", _) => Err(SyntaxError::RequireUsername),
        (name, text) => text_arg(text).map(|text| Command::Msg { name, text }),
    }
}

fn text_arg(text: &str) -> Result<String, SyntaxError> {
    let text = strip_controls(text);
    // Stripping can expose whitespace that trimming did not see (`msg bob \x1b`); an
    // all-blank message is as empty as no message.
    if text.trim().is_empty() {
        Err(SyntaxError::EmptyMessage)
    } else {
        Ok(text)
    }
}

/// Splits off the first whitespace-separated token; the rest has its leading whitespace removed.
fn split_token(s: &str) -> (&str, &str) {
    match s.find(char::is_whitespace) {
        Some(at) => (&s[..at], s[at..].trim_start()),
        None => (s, ""),
    }
}

/// Removes what could hide, reorder or split the text another user sees (PROTOCOL.md §1): control
/// characters (U+0000..=U+001F, U+007F, U+0080..=U+009F, so no terminal escape sequence gets
/// through), bidirectional controls, zero-width characters and the line and paragraph separators.
pub fn strip_controls(text: &str) -> String {
    text.chars().filter(|c| !is_stripped(*c)).collect()
}

fn is_stripped(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}' // zero-width space, non-joiner, joiner; LRM, RLM
                | '\u{2028}' | '\u{2029}' // line and paragraph separators
                | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
                | '\u{2060}' // word joiner
                | '\u{2066}'..='\u{2069}' // bidi isolates
                | '\u{FEFF}' // zero-width no-break space (BOM)
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command<'_> {
        parse(line).expect("not empty").expect("valid syntax")
    }

    fn err(line: &str) -> SyntaxError {
        parse(line).expect("not empty").expect_err("syntax error")
    }

    #[test]
    fn commands() {
        assert_eq!(ok("login bob"), Command::Login { name: "bob" });
        assert_eq!(ok("logout"), Command::Logout);
        assert_eq!(
            ok("msg bob hi there"),
            Command::Msg {
                name: "bob",
                text: "hi there".into()
            }
        );
        assert_eq!(ok("msgall hi"), Command::MsgAll { text: "hi".into() });
        assert_eq!(ok("whoami"), Command::WhoAmI { raw: false });
        assert_eq!(ok("userlist"), Command::UserList { raw: false });
        assert_eq!(ok("help"), Command::Help);
    }

    #[test]
    fn slash_prefix_is_accepted_and_selects_raw() {
        assert_eq!(ok("/login bob"), Command::Login { name: "bob" });
        assert_eq!(ok("/logout"), Command::Logout);
        assert_eq!(ok("/msgall x"), Command::MsgAll { text: "x".into() });
        assert_eq!(ok("/whoami"), Command::WhoAmI { raw: true });
        assert_eq!(ok("/userlist"), Command::UserList { raw: true });
        assert_eq!(ok("/help"), Command::Help);
        assert_eq!(err("/"), SyntaxError::UnknownCommand);
        assert_eq!(err("//login bob"), SyntaxError::UnknownCommand);
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(err("hello"), SyntaxError::UnknownCommand);
        assert_eq!(err("login"), SyntaxError::RequireUsername);
        assert_eq!(err("login bob alice"), SyntaxError::OverageInfo);
        assert_eq!(err("msg"), SyntaxError::RequireUsername);
        assert_eq!(err("msg bob"), SyntaxError::EmptyMessage);
        assert_eq!(err("msg bob   "), SyntaxError::EmptyMessage);
        assert_eq!(err("msgall"), SyntaxError::EmptyMessage);
        assert_eq!(err("logout now"), SyntaxError::OverageInfo);
    }

    #[test]
    fn commands_are_case_insensitive_and_names_and_text_keep_their_case() {
        assert_eq!(ok("LOGIN Bob"), Command::Login { name: "Bob" });
        assert_eq!(
            ok("Msg Bob Hi THERE"),
            Command::Msg {
                name: "Bob",
                text: "Hi THERE".into()
            }
        );
        assert_eq!(ok("MSGALL Yo"), Command::MsgAll { text: "Yo".into() });
        assert_eq!(ok("/WHOAMI"), Command::WhoAmI { raw: true });
        assert_eq!(ok("UserList"), Command::UserList { raw: false });
        assert_eq!(ok("/uSeRlIsT"), Command::UserList { raw: true });
        assert_eq!(ok("HELP"), Command::Help);
        assert_eq!(ok("LogOut"), Command::Logout);
        assert_eq!(err("LOGOUT now"), SyntaxError::OverageInfo);
        assert_eq!(err("MSG"), SyntaxError::RequireUsername);
        // ASCII case only: a look-alike letter is no command, nor is a longer word.
        assert_eq!(err("logın bob"), SyntaxError::UnknownCommand);
        assert_eq!(err("USERLISTS"), SyntaxError::UnknownCommand);
        assert_eq!(err("ЛОГИН bob"), SyntaxError::UnknownCommand);
    }

    #[test]
    fn arguments_after_whoami_userlist_help_are_ignored() {
        assert_eq!(ok("whoami x y"), Command::WhoAmI { raw: false });
        assert_eq!(ok("/userlist x"), Command::UserList { raw: true });
        assert_eq!(ok("help me"), Command::Help);
    }

    #[test]
    fn empty_lines_are_ignored() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("   \t "), None);
        assert_eq!(parse("\u{3000}"), None);
    }

    #[test]
    fn text_keeps_inner_spacing_and_drops_leading_whitespace() {
        assert_eq!(
            ok("  msg   bob    a  b   c  "),
            Command::Msg {
                name: "bob",
                text: "a  b   c".into()
            }
        );
        assert_eq!(ok("msgall \t x   y"), Command::MsgAll { text: "x   y".into() });
    }

    #[test]
    fn control_characters_are_stripped_from_text() {
        assert_eq!(
            ok("msgall \x1b[31mred\x1b[0m\x07 \u{7f}\u{85}\u{9b}ok"),
            Command::MsgAll {
                text: "[31mred[0m ok".into()
            }
        );
        assert_eq!(err("msgall \x1b\x1b"), SyntaxError::EmptyMessage);
        assert_eq!(err("msg bob \x00 \x01"), SyntaxError::EmptyMessage);
    }

    #[test]
    fn bidi_controls_and_zero_width_characters_are_stripped_from_text() {
        // An override that would show `exe.txt` as `txt.exe`, an isolate, LRM and RLM.
        assert_eq!(
            ok("msgall a\u{202E}exe.txt\u{202C} \u{2067}b\u{2069}\u{200E}\u{200F}"),
            Command::MsgAll {
                text: "aexe.txt b".into()
            }
        );
        for c in ['\u{202A}', '\u{202B}', '\u{202D}', '\u{2066}', '\u{2068}'] {
            assert_eq!(
                ok(&format!("msgall x{c}y")),
                Command::MsgAll { text: "xy".into() },
                "{c:?}"
            );
        }
        assert_eq!(
            ok("msg bob h\u{200B}i\u{200C}\u{200D}\u{2060}\u{FEFF}!"),
            Command::Msg {
                name: "bob",
                text: "hi!".into()
            }
        );
        // Line and paragraph separators cannot split one message into what looks like two.
        assert_eq!(
            ok("msgall hi\u{2028}[12:00:00][bob]: fake\u{2029}"),
            Command::MsgAll {
                text: "hi[12:00:00][bob]: fake".into()
            }
        );
        // Characters next to the stripped ones stay.
        assert_eq!(
            ok("msgall \u{2027}\u{202F}x\u{2030}"),
            Command::MsgAll {
                text: "\u{2027}\u{202F}x\u{2030}".into()
            }
        );
    }

    #[test]
    fn text_of_only_invisible_characters_is_empty() {
        assert_eq!(err("msgall \u{200B}\u{FEFF}"), SyntaxError::EmptyMessage);
        assert_eq!(err("msg bob \u{202E} \u{2028}\u{2029}"), SyntaxError::EmptyMessage);
        assert_eq!(err("msg bob \u{2066}\u{2069} \u{200F}"), SyntaxError::EmptyMessage);
    }
}
