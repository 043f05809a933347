//! Rendering events for clients (PROTOCOL.md §3): telnet lines with or without ANSI colour, and
//! WebSocket JSON with an HTML form of the line. Pure functions over [`Event::spans`].

use bytes::Bytes;
use serde::Serialize;

use crate::chat::{Event, Style};

/// A telnet line: the plain text, coloured if `color`, ending `\r\n`.
pub fn telnet(event: &Event, color: bool) -> Bytes {
    let mut out = String::with_capacity(64);
    if color {
        runs(event, |style, text| match sgr(style) {
            None => out.push_str(text),
            Some(code) => {
                out.push_str(code);
                out.push_str(text);
                out.push_str(RESET);
            }
        });
    } else {
        event.spans(&mut |_, text, _| out.push_str(text));
    }
    out.push_str("\r\n");
    Bytes::from(out)
}

/// A WebSocket text frame: `{"action":"response","message":HTML,"text":PLAIN}`, or for a raw
/// user list `{"action":"list","message":[names]}`.
pub fn web(event: &Event) -> String {
    #[derive(Serialize)]
    #[serde(tag = "action", rename_all = "lowercase")]
    enum Json<'a> {
        Response { message: String, text: String },
        List { message: &'a [String] },
    }
    let json = match event {
        Event::UserList { names, raw: true } => Json::List { message: names },
        _ => Json::Response {
            message: html(event),
            text: event.plain(),
        },
    };
    serde_json::to_string(&json).expect("plain data serializes")
}

/// The line as HTML: coloured runs as `<span class="c-COLOUR">`, every character escaped, so
/// nothing a user typed can become markup.
pub fn html(event: &Event) -> String {
    let mut out = String::with_capacity(96);
    runs(event, |style, text| match class(style) {
        None => escape_into(&mut out, text),
        Some(class) => {
            out.push_str("<span class=\"");
            out.push_str(class);
            out.push_str("\">");
            escape_into(&mut out, text);
            out.push_str("</span>");
        }
    });
    out
}

const RESET: &str = "\x1b[0m";

fn sgr(style: Style) -> Option<&'static str> {
    match style {
        Style::Plain => None,
        Style::Green => Some("\x1b[32m"),
        Style::Red => Some("\x1b[31m"),
        Style::Blue => Some("\x1b[34m"),
        Style::Yellow => Some("\x1b[33m"),
    }
}

fn class(style: Style) -> Option<&'static str> {
    match style {
        Style::Plain => None,
        Style::Green => Some("c-green"),
        Style::Red => Some("c-red"),
        Style::Blue => Some("c-blue"),
        Style::Yellow => Some("c-yellow"),
    }
}

/// Calls `run` once per maximal run of same-style spans, so `[NAME]` is one coloured span.
fn runs(event: &Event, mut run: impl FnMut(Style, &str)) {
    let mut style = Style::Plain;
    let mut text = String::new();
    event.spans(&mut |s, t, _| {
        if s != style && !text.is_empty() {
            run(style, &text);
            text.clear();
        }
        style = s;
        text.push_str(t);
    });
    if !text.is_empty() {
        run(style, &text);
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ChatError;

    fn strip_sgr(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                assert_eq!(chars.next(), Some('['));
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn samples() -> Vec<Event> {
        vec![
            Event::Login { name: "bob".into() },
            Event::Logout { name: "bob".into() },
            Event::Private {
                time: "10:00:00".into(),
                from: "a".into(),
                to: "b".into(),
                text: "<script>alert(1)</script> & 'x'".into(),
            },
            Event::Public {
                time: "10:00:00".into(),
                from: "a".into(),
                text: "hi".into(),
            },
            Event::WhoAmI {
                name: "a".into(),
                raw: false,
            },
            Event::UserList {
                names: vec!["a".into(), "b".into()],
                raw: false,
            },
            Event::Help,
            Event::Error(ChatError::NotFound("zed".into())),
            Event::Error(ChatError::FirstLogin),
        ]
    }

    #[test]
    fn plain_telnet_is_exactly_the_protocol_text() {
        for event in samples() {
            let line = telnet(&event, false);
            assert_eq!(line, format!("{}\r\n", event.plain()).into_bytes());
        }
    }

    #[test]
    fn stripping_colour_gives_the_plain_text() {
        for event in samples() {
            let line = String::from_utf8(telnet(&event, true).to_vec()).unwrap();
            assert_eq!(strip_sgr(&line), format!("{}\r\n", event.plain()));
        }
    }

    #[test]
    fn colours_follow_the_original() {
        let login = String::from_utf8(telnet(&Event::Login { name: "bob".into() }, true).to_vec()).unwrap();
        assert_eq!(
            login,
            "\x1b[32m[SYSTEM INFO]\x1b[0m - \x1b[33m[bob]\x1b[0m \x1b[32mlogin to chat.\x1b[0m\r\n"
        );
        let error = String::from_utf8(telnet(&Event::Error(ChatError::FirstLogin), true).to_vec()).unwrap();
        assert_eq!(error, "\x1b[31m[ERROR]\x1b[0m - First login!\r\n");
        let public = Event::Public {
            time: "10:00:00".into(),
            from: "a".into(),
            text: "hi".into(),
        };
        let public = String::from_utf8(telnet(&public, true).to_vec()).unwrap();
        assert_eq!(public, "\x1b[33m[10:00:00][a]\x1b[0m: hi\r\n");
    }

    #[test]
    fn unknown_command_points_at_help_in_every_form() {
        let event = Event::Error(ChatError::Syntax(crate::chat::SyntaxError::UnknownCommand));
        assert_eq!(
            telnet(&event, false),
            "[ERROR] - unknown command (type help)\r\n".as_bytes()
        );
        assert_eq!(
            telnet(&event, true),
            "\x1b[31m[ERROR]\x1b[0m - unknown command (type help)\r\n".as_bytes()
        );
        let json: serde_json::Value = serde_json::from_str(&web(&event)).unwrap();
        assert_eq!(json["text"], "[ERROR] - unknown command (type help)");
        assert_eq!(
            json["message"],
            "<span class=\"c-red\">[ERROR]</span> - unknown command (type help)"
        );
    }

    #[test]
    fn web_json_escapes_user_text() {
        let event = &samples()[2];
        let json: serde_json::Value = serde_json::from_str(&web(event)).unwrap();
        assert_eq!(json["action"], "response");
        assert_eq!(json["text"], event.plain());
        let message = json["message"].as_str().unwrap();
        assert!(!message.contains("<script>"), "{message}");
        assert!(message.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#39;x&#39;"));
        assert!(message.starts_with("<span class=\"c-yellow\">[10:00:00][a]</span>"));
    }

    #[test]
    fn raw_userlist_is_a_list_event_on_the_web() {
        let event = Event::UserList {
            names: vec!["a".into(), "b".into()],
            raw: true,
        };
        assert_eq!(web(&event), r#"{"action":"list","message":["a","b"]}"#);
        let cooked = Event::UserList {
            names: vec!["a".into()],
            raw: false,
        };
        let json: serde_json::Value = serde_json::from_str(&web(&cooked)).unwrap();
        assert_eq!(json["text"], "[INFO] - ['a']");
    }
}
