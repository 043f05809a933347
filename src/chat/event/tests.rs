//! Every event's plain text, as PROTOCOL.md gives it.

use super::*;

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn plain_texts_match_the_protocol() {
    let private = |time, from, to, text| Event::Private {
        time: s(time),
        from: s(from),
        to: s(to),
        text: s(text),
    };
    let public = |time, from, text| Event::Public {
        time: s(time),
        from: s(from),
        text: s(text),
    };
    let whoami = |name, raw| Event::WhoAmI { name: s(name), raw };
    let userlist = |names: &[&str], raw| Event::UserList {
        names: names.iter().map(|name| s(name)).collect(),
        raw,
    };
    let motd = "Welcome to the web chat. Type help for the commands.";
    let cases = [
        (Event::Login { name: s("bob") }, "[SYSTEM INFO] - [bob] login to chat."),
        (
            Event::Logout { name: s("bob") },
            "[SYSTEM INFO] - [bob] logout from chat.",
        ),
        (
            private("12:34:56", "a", "b", "hi  there"),
            "[12:34:56][a][->][b]: hi  there",
        ),
        (public("01:02:03", "a", "yo"), "[01:02:03][a]: yo"),
        (whoami("bob", false), "[INFO] - bob"),
        (whoami("bob", true), "bob"),
        (userlist(&["a", "b"], false), "[INFO] - ['a', 'b']"),
        (userlist(&["a", "b"], true), "['a', 'b']"),
        (userlist(&[], true), "[]"),
        (
            Event::Help,
            "[INFO] - commands: login <name>, msg <name> <text>, msgall <text>, whoami, userlist, logout, help",
        ),
        (
            Event::Error(ChatError::NotFound(s("zed"))),
            "[ERROR] - [zed] not found!",
        ),
        (
            Event::Greeting { motd: s(motd) },
            "[INFO] - Welcome to the web chat. Type help for the commands.",
        ),
        (
            Event::LineLost,
            "[SYSTEM INFO] - your last line was lost, please resend",
        ),
    ];
    for (event, text) in cases {
        assert_eq!(event.plain(), text);
    }
}

#[test]
fn error_texts_match_the_protocol() {
    let cases = [
        (
            ChatError::Syntax(SyntaxError::UnknownCommand),
            "unknown command (type help)",
        ),
        (ChatError::Syntax(SyntaxError::RequireUsername), "require username"),
        (ChatError::Syntax(SyntaxError::OverageInfo), "overage info"),
        (ChatError::Syntax(SyntaxError::EmptyMessage), "empty message"),
        (ChatError::UsernameTaken, "Username already taken!"),
        (ChatError::InvalidUsername, "invalid username"),
        (ChatError::AlreadyLogin, "Already login!"),
        (ChatError::FirstLogin, "First login!"),
        (ChatError::LineTooLong, "line too long"),
        (ChatError::ServerBusy, "server busy, try again"),
        (ChatError::ServerFull, "server full"),
        (ChatError::TooManyConnections, "too many connections from your address"),
        (ChatError::ServerUnavailable, "server unavailable, try again later"),
    ];
    for (error, reason) in cases {
        assert_eq!(Event::Error(error).plain(), format!("[ERROR] - {reason}"));
    }
}

#[test]
fn user_text_is_flagged() {
    let event = Event::Public {
        time: s("00:00:00"),
        from: s("<b>"),
        text: s("<script>"),
    };
    let mut user = Vec::new();
    event.spans(&mut |_, text, is_user| {
        if is_user {
            user.push(text.to_string());
        }
    });
    assert_eq!(user, ["<b>", "<script>"]);
}
