//! Parsing input lines into commands, and their syntax errors.

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
