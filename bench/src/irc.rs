//! IRC load clients, for the peer ([`crate::ngircd`]): registered with `NICK` and `USER`, flood
//! protection off (`OPER`, then user mode `+F`), in one channel or none. Each is a writer and a
//! reader task as in [`crate::clients`], tallying the stamped `PRIVMSG` texts (`t=NANOS`) it
//! receives and answering the server's `PING`s. IRC does not echo a line to its sender, so a
//! channel line reaches every member but one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::clients::{Client, Reader, Tally, logins, tally_line, tcp_client};

/// The operator account every load client uses to turn its flood protection off; the server
/// listens on loopback only and lives for one scenario.
pub const OPERATOR: (&str, &str) = ("bench", "chat-bench");

/// How long registering, opering and joining may take.
const WAIT: Duration = Duration::from_secs(60);

/// A line from the server, split as RFC 2812 does: `[:prefix ]COMMAND[ params]`.
#[derive(Debug, PartialEq)]
pub struct Message<'a> {
    /// The prefix's nick (before any `!`); empty when the line has no prefix.
    pub nick: &'a [u8],
    pub command: &'a [u8],
    /// Everything after the command: middle parameters, then the trailing one.
    pub params: &'a [u8],
}

impl<'a> Message<'a> {
    /// Splits one line (with or without its `\r`).
    pub fn parse(line: &'a [u8]) -> Self {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (nick, rest) = match line.strip_prefix(b":") {
            Some(prefixed) => {
                let (prefix, rest) = split_word(prefixed);
                let nick = prefix.split(|b| *b == b'!').next().unwrap_or(prefix);
                (nick, rest)
            }
            None => (&line[..0], line),
        };
        let (command, params) = split_word(rest);
        Self { nick, command, params }
    }

    /// The last parameter: after ` :` (or a leading `:`), else the last word.
    pub fn trailing(&self) -> &'a [u8] {
        if let Some(text) = self.params.strip_prefix(b":") {
            return text;
        }
        if let Some(at) = self.params.windows(2).position(|w| w == b" :") {
            return &self.params[at + 2..];
        }
        self.params.rsplit(|b| *b == b' ').next().unwrap_or(self.params)
    }

    /// A numeric error reply (4xx or 5xx), or `ERROR` before the server closes the connection.
    pub fn is_error(&self) -> bool {
        self.command == b"ERROR"
            || (self.command.len() == 3
                && self.command.iter().all(u8::is_ascii_digit)
                && matches!(self.command[0], b'4' | b'5'))
    }
}

/// The first word of `s` and what follows the space after it.
fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|b| *b == b' ') {
        Some(at) => (&s[..at], &s[at + 1..]),
        None => (s, &s[s.len()..]),
    }
}

/// A client's reader: tallies stamped `PRIVMSG`s, answers `PING`s, and passes the lines a login
/// waits for (numerics, and its own commands) to [`login`] while it listens.
struct IrcLines {
    nick: Vec<u8>,
    tally: Arc<Tally>,
    record: bool,
    /// For `PONG`s. Weak, so that dropping the [`Client`] still ends its writer and connection.
    send: mpsc::WeakUnboundedSender<String>,
    /// To [`login`], which drops the receiver once logged in; then `None`.
    progress: Option<mpsc::UnboundedSender<String>>,
}

impl Reader for IrcLines {
    fn line(&mut self, line: &[u8]) {
        let message = Message::parse(line);
        match message.command {
            b"PRIVMSG" => return tally_line(message.trailing(), &self.tally, self.record),
            b"PING" => {
                if let Some(send) = self.send.upgrade() {
                    let token = String::from_utf8_lossy(message.trailing());
                    let _ = send.send(format!("PONG :{token}"));
                }
                return;
            }
            _ => {}
        }
        let numeric = message.command.first().is_some_and(u8::is_ascii_digit);
        if let Some(progress) = &self.progress
            && (numeric || message.nick == self.nick.as_slice() || message.command == b"ERROR")
            && progress.send(String::from_utf8_lossy(line).into_owned()).is_err()
        {
            self.progress = None;
        }
    }

    fn closed(&mut self) {
        self.tally.closed.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Connects, registers as `nick`, turns its flood protection off and, given a channel, joins it;
/// returns once the server has confirmed each step.
pub async fn login(addr: SocketAddr, nick: &str, channel: Option<&str>, record: bool) -> Result<Client> {
    let tally = Arc::new(Tally::default());
    let (send, outgoing) = mpsc::unbounded_channel::<String>();
    let (progress, mut steps) = mpsc::unbounded_channel();
    let lines = IrcLines {
        nick: nick.as_bytes().to_vec(),
        tally: tally.clone(),
        record,
        send: send.downgrade(),
        progress: Some(progress),
    };
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    tokio::spawn(tcp_client(stream, outgoing, lines));
    send.send(format!("NICK {nick}"))?;
    send.send(format!("USER {nick} 0 * :{nick}"))?;
    expect(&mut steps, nick, "welcome (001)", |m| m.command == b"001").await?;
    let (name, password) = OPERATOR;
    send.send(format!("OPER {name} {password}"))?;
    send.send(format!("MODE {nick} +F"))?;
    expect(&mut steps, nick, "user mode +F", |m| {
        m.command == b"MODE" && m.trailing().contains(&b'F')
    })
    .await?;
    if let Some(channel) = channel {
        send.send(format!("JOIN {channel}"))?;
        expect(&mut steps, nick, "its JOIN", |m| m.command == b"JOIN").await?;
    }
    Ok(Client { send, tally })
}

/// Waits for the line that `done` accepts among those the reader passes on; fails on an error
/// reply, a closed connection, or after [`WAIT`].
async fn expect(
    steps: &mut mpsc::UnboundedReceiver<String>,
    nick: &str,
    what: &str,
    done: impl Fn(&Message) -> bool,
) -> Result<()> {
    let wait = async {
        while let Some(line) = steps.recv().await {
            let message = Message::parse(line.as_bytes());
            if done(&message) {
                return Ok(());
            }
            if message.is_error() {
                bail!("{nick} waiting for {what}: {line}");
            }
        }
        bail!("{nick}: connection closed waiting for {what}")
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .with_context(|| format!("{nick}: no {what} within {WAIT:?}"))?
}

/// Logs in `count` clients named `{prefix}{i}`, in `channel` if given, 8 at a time: ngircd
/// listens with a backlog of 10, and connections past it stall until the client gives up.
pub async fn crowd(
    addr: SocketAddr,
    count: usize,
    prefix: &str,
    channel: Option<&str>,
    record: bool,
) -> Result<Vec<Client>> {
    logins(count, 8, |i| {
        let nick = format!("{prefix}{i}");
        async move { login(addr, &nick, channel, record).await }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::now_ns;
    use std::sync::atomic::Ordering;

    #[test]
    fn lines_split_into_prefix_command_and_params() {
        let m = Message::parse(b":f1!~f1@127.0.0.1 PRIVMSG #bench :t=42 and more\r");
        assert_eq!(m.nick, b"f1");
        assert_eq!(m.command, b"PRIVMSG");
        assert_eq!(m.params, b"#bench :t=42 and more");
        assert_eq!(m.trailing(), b"t=42 and more");

        let m = Message::parse(b"PING :bench.invalid");
        assert_eq!(
            (m.nick, m.command, m.trailing()),
            (&b""[..], &b"PING"[..], &b"bench.invalid"[..])
        );
        let m = Message::parse(b"PING token");
        assert_eq!(m.trailing(), b"token");

        let m = Message::parse(b":bench.invalid 001 f1 :Welcome to the Internet Relay Network f1!~f1@127.0.0.1");
        assert_eq!((m.nick, m.command), (&b"bench.invalid"[..], &b"001"[..]));
        assert!(!m.is_error());

        // ngircd's echo of a user mode: the server's prefix form and the user's.
        assert_eq!(Message::parse(b":f1 MODE f1 :+F").trailing(), b"+F");
        assert_eq!(Message::parse(b":f1!~f1@127.0.0.1 MODE f1 +F").trailing(), b"+F");

        assert!(Message::parse(b":bench.invalid 491 f1 :No O-lines for your host").is_error());
        assert!(Message::parse(b"ERROR :Closing connection").is_error());
        assert_eq!(Message::parse(b"QUIT").params, b"");
        assert_eq!(Message::parse(b"").command, b"");
    }

    #[test]
    fn readers_tally_privmsgs_answer_pings_and_pass_on_their_own_steps() {
        let nick = "f1";
        let (send, mut outgoing) = mpsc::unbounded_channel();
        let (progress, mut steps) = mpsc::unbounded_channel();
        let mut lines = IrcLines {
            nick: nick.as_bytes().to_vec(),
            tally: Arc::default(),
            record: true,
            send: send.downgrade(),
            progress: Some(progress),
        };
        let sent = now_ns();
        lines.line(format!(":f2!~f2@127.0.0.1 PRIVMSG #bench :t={sent}\r").as_bytes());
        // Stamps count in PRIVMSG texts only; ISUPPORT's `KEY=VALUE`s and others' joins do not.
        lines.line(b":bench.invalid 005 f1 CHANLIMIT=#&+:0 t=1 :are supported on this server");
        lines.line(b":f3!~f3@127.0.0.1 JOIN :#bench");
        assert_eq!(lines.tally.count.load(Ordering::Relaxed), 1);
        assert_eq!(lines.tally.latencies.lock().unwrap().len(), 1);

        lines.line(b"PING :bench.invalid");
        assert_eq!(outgoing.try_recv().unwrap(), "PONG :bench.invalid");

        lines.line(b":f1!~f1@127.0.0.1 JOIN :#bench");
        let passed: Vec<String> = std::iter::from_fn(|| steps.try_recv().ok()).collect();
        assert_eq!(
            passed,
            [
                ":bench.invalid 005 f1 CHANLIMIT=#&+:0 t=1 :are supported on this server",
                ":f1!~f1@127.0.0.1 JOIN :#bench"
            ]
        );
        // Once the login stops listening, the reader stops passing lines on.
        drop(steps);
        lines.line(b":bench.invalid 001 f1 :Welcome");
        assert!(lines.progress.is_none());
        // Nor, once the client is dropped, does it answer pings.
        drop(send);
        lines.line(b"PING :bench.invalid");
        assert!(outgoing.try_recv().is_err());
    }
}
