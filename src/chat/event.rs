//! Events: what the kernel tells users, as data, and the one place their texts are spelled.
//!
//! The kernel emits [`Event`]s; every frontend renders them in its own format by walking
//! [`Event::spans`], so the plain, ANSI and HTML forms of a line can never disagree on a byte.

use std::fmt;

use super::command::SyntaxError;

/// Something to show to one or more users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `[SYSTEM INFO] - [NAME] login to chat.`
    Login { name: String },
    /// `[SYSTEM INFO] - [NAME] logout from chat.`
    Logout { name: String },
    /// `[HH:MM:SS][FROM][->][TO]: TEXT`
    Private {
        time: String,
        from: String,
        to: String,
        text: String,
    },
    /// `[HH:MM:SS][FROM]: TEXT`
    Public { time: String, from: String, text: String },
    /// `[INFO] - NAME`, or `NAME` when `raw`.
    WhoAmI { name: String, raw: bool },
    /// `[INFO] - ['a', 'b']`, or `['a', 'b']` when `raw` (a list event on WebSocket).
    UserList { names: Vec<String>, raw: bool },
    /// `[INFO] - commands: …`
    Help,
    /// `[INFO] - MOTD`: the server's greeting, sent by a frontend to each client as it connects,
    /// never by the kernel.
    Greeting { motd: String },
    /// `[SYSTEM INFO] - your last line was lost, please resend`: a frontend that adopted a client
    /// whose partly sent line died with the previous process; never sent by the kernel.
    LineLost,
    /// `[ERROR] - …`
    Error(ChatError),
}

/// Every `[ERROR] - REASON` a user can see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatError {
    Syntax(SyntaxError),
    UsernameTaken,
    InvalidUsername,
    AlreadyLogin,
    FirstLogin,
    NotFound(String),
    /// Sent by a frontend, never by the kernel.
    LineTooLong,
    /// Sent by a frontend whose input queue to the kernel is full.
    ServerBusy,
    /// Sent by a frontend at `max_connections`.
    ServerFull,
    /// Sent by a frontend at `max_connections_per_ip`.
    TooManyConnections,
    /// Sent by the supervisor on the socket of a server that is stopped or failed.
    ServerUnavailable,
}

/// How a span of a line is shown; frontends map these to ANSI SGR codes or HTML classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The terminal's default colour.
    Plain,
    Green,
    Red,
    Blue,
    Yellow,
}

/// The help text, shared by every frontend.
pub const HELP: &str = "commands: login <name>, msg <name> <text>, msgall <text>, whoami, userlist, logout, help";

impl Event {
    /// Calls `span` with each piece of the line in order. Concatenating the texts gives the plain
    /// line of PROTOCOL.md §2; `user` is true where the text came from a user (a name or TEXT), so
    /// markup renderers must escape it.
    pub fn spans(&self, span: &mut impl FnMut(Style, &str, bool)) {
        use Style::*;
        match self {
            Event::Login { name } => {
                span(Green, "[SYSTEM INFO]", false);
                span(Plain, " - ", false);
                bracketed(span, Yellow, name);
                span(Plain, " ", false);
                span(Green, "login to chat.", false);
            }
            Event::Logout { name } => {
                span(Green, "[SYSTEM INFO]", false);
                span(Plain, " - ", false);
                bracketed(span, Yellow, name);
                span(Plain, " ", false);
                span(Red, "logout from chat.", false);
            }
            Event::Private { time, from, to, text } => {
                prefix(span, time, from);
                span(Plain, "[->]", false);
                bracketed(span, Yellow, to);
                span(Plain, ": ", false);
                span(Plain, text, true);
            }
            Event::Public { time, from, text } => {
                prefix(span, time, from);
                span(Plain, ": ", false);
                span(Plain, text, true);
            }
            Event::WhoAmI { name, raw } => {
                if !raw {
                    info(span);
                }
                span(Yellow, name, true);
            }
            Event::UserList { names, raw } => {
                if !raw {
                    info(span);
                }
                span(Plain, "[", false);
                for (i, name) in names.iter().enumerate() {
                    span(Plain, if i == 0 { "'" } else { ", '" }, false);
                    span(Plain, name, true);
                    span(Plain, "'", false);
                }
                span(Plain, "]", false);
            }
            Event::Help => {
                info(span);
                span(Plain, HELP, false);
            }
            Event::Greeting { motd } => {
                info(span);
                span(Plain, motd, false);
            }
            Event::LineLost => {
                span(Green, "[SYSTEM INFO]", false);
                span(Plain, " - your last line was lost, please resend", false);
            }
            Event::Error(error) => {
                span(Red, "[ERROR]", false);
                span(Plain, " - ", false);
                match error {
                    ChatError::NotFound(name) => {
                        bracketed(span, Yellow, name);
                        span(Plain, " not found!", false);
                    }
                    other => span(Plain, other.reason(), false),
                }
            }
        }
    }

    /// The plain text of the line (no colour, no line ending).
    pub fn plain(&self) -> String {
        let mut out = String::new();
        self.spans(&mut |_, text, _| out.push_str(text));
        out
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.plain())
    }
}

impl ChatError {
    /// The reason after `[ERROR] - `, for every error but `NotFound` (which names the user).
    fn reason(&self) -> &'static str {
        match self {
            // Points a lost user, who typed something else, at the list of commands.
            ChatError::Syntax(SyntaxError::UnknownCommand) => "unknown command (type help)",
            ChatError::Syntax(SyntaxError::RequireUsername) => "require username",
            ChatError::Syntax(SyntaxError::OverageInfo) => "overage info",
            ChatError::Syntax(SyntaxError::EmptyMessage) => "empty message",
            ChatError::UsernameTaken => "Username already taken!",
            ChatError::InvalidUsername => "invalid username",
            ChatError::AlreadyLogin => "Already login!",
            ChatError::FirstLogin => "First login!",
            ChatError::NotFound(_) => "not found!",
            ChatError::LineTooLong => "line too long",
            ChatError::ServerBusy => "server busy, try again",
            ChatError::ServerFull => "server full",
            ChatError::TooManyConnections => "too many connections from your address",
            ChatError::ServerUnavailable => "server unavailable, try again later",
        }
    }
}

fn info(span: &mut impl FnMut(Style, &str, bool)) {
    span(Style::Blue, "[INFO]", false);
    span(Style::Plain, " - ", false);
}

/// `[NAME]` in one colour; the name itself is user text.
fn bracketed(span: &mut impl FnMut(Style, &str, bool), style: Style, name: &str) {
    span(style, "[", false);
    span(style, name, true);
    span(style, "]", false);
}

/// The `[HH:MM:SS][NAME]` chat prefix, yellow.
fn prefix(span: &mut impl FnMut(Style, &str, bool), time: &str, from: &str) {
    span(Style::Yellow, "[", false);
    span(Style::Yellow, time, false);
    span(Style::Yellow, "][", false);
    span(Style::Yellow, from, true);
    span(Style::Yellow, "]", false);
}

#[cfg(test)]
mod tests;
