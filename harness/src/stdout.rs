//! A child's stdout, collected line by line as it comes, and bounded waits for a line.

use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A child's stdout lines. A thread reads the pipe; waits take lines in any order.
pub struct Stdout {
    lines: mpsc::Receiver<String>,
    /// Every line so far.
    seen: Vec<String>,
    /// Lines read but not yet taken by a wait.
    pending: Vec<String>,
}

impl Stdout {
    /// Takes the child's stdout (spawned with `Stdio::piped()`) and reads it on a thread, which
    /// ends with the pipe or when this is dropped.
    pub fn capture(child: &mut Child) -> Result<Self> {
        let stdout = child.stdout.take().context("stdout is not piped")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Self {
            lines,
            seen: Vec::new(),
            pending: Vec::new(),
        })
    }

    /// The first line containing `needle` that no earlier wait took, within `limit`.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> Result<String> {
        if let Some(at) = self.pending.iter().position(|l| l.contains(needle)) {
            return Ok(self.pending.remove(at));
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Ok(line);
                    }
                    self.pending.push(line);
                }
                Err(why) => {
                    let why = match why {
                        mpsc::RecvTimeoutError::Timeout => format!("within {limit:?}"),
                        mpsc::RecvTimeoutError::Disconnected => "before stdout closed".to_string(),
                    };
                    bail!("no line with {needle:?} {why}; saw:\n{}", self.seen.join("\n"))
                }
            }
        }
    }

    /// Every line so far, taken or not.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }
}

/// The value of `key` (`addr=`, `pid=`, …) among a line's space-separated words.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn waits_take_lines_in_any_order_and_end_at_eof() {
        let mut child = Command::new("printf")
            .arg("a x=1\\nb x=2\\nc\\n")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = Stdout::capture(&mut child).unwrap();
        let limit = Duration::from_secs(5);
        assert_eq!(out.wait_for("b", limit).unwrap(), "b x=2");
        assert_eq!(out.wait_for("a", limit).unwrap(), "a x=1");
        // Each line is taken once.
        let err = out.wait_for("x=", limit).unwrap_err().to_string();
        assert!(
            err.contains("before stdout closed") && err.ends_with("b x=2\nc"),
            "{err}"
        );
        assert_eq!(out.seen().len(), 3);
        child.wait().unwrap();
    }

    #[test]
    fn fields() {
        let line = "listening name=s0 kind=tcp addr=127.0.0.1:4000 pid=7";
        assert_eq!(field(line, "addr="), Some("127.0.0.1:4000"));
        assert_eq!(field(line, "pid="), Some("7"));
        assert_eq!(field(line, "port="), None);
    }
}
