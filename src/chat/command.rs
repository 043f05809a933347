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
mod tests;
