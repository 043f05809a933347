//! The telnet server: an accept loop with a connection cap, and per client one reader (telnet
//! framing into kernel lines) and one writer (the client's outbox onto the socket). When either
//! ends, or the client is dropped for not reading, the other is dropped too and the session closes
//! once.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::outbox::{Next, OutboxRx};
use super::session::{Session, Sessions};
use super::telnet::{Decoder, Item};
use super::{Limits, render};
use crate::chat::{ChatError, Event};

/// Bytes read from a client at a time.
const READ_CHUNK: usize = 2048;

pub struct Telnet {
    pub sessions: Arc<Sessions<Bytes>>,
    pub color: bool,
    pub limits: Limits,
}

impl Telnet {
    fn render(&self, event: &Event) -> Bytes {
        render::telnet(event, self.color)
    }
}

pub async fn serve(listener: TcpListener, telnet: Arc<Telnet>, shutdown: CancellationToken) {
    let clients = Arc::new(tokio::sync::Semaphore::new(telnet.limits.max_connections));
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = clients.clone().try_acquire_owned() else {
            tracing::warn!(max = telnet.limits.max_connections, "server full; refusing a client");
            let full = telnet.render(&Event::Error(ChatError::ServerFull));
            tokio::spawn(refuse(stream, full));
            continue;
        };
        let telnet = telnet.clone();
        tokio::spawn(async move {
            client(stream, &telnet).await;
            drop(permit);
        });
    }
}

async fn refuse(mut stream: TcpStream, message: Bytes) {
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&message)).await;
}

async fn client(stream: TcpStream, telnet: &Telnet) {
    let (session, mut outbox) = telnet.sessions.open().await;
    let (read, write) = stream.into_split();
    tokio::select! {
        _ = read_lines(read, &session, telnet) => {}
        _ = write_out(write, &mut outbox) => {}
    }
}

async fn read_lines(read: OwnedReadHalf, session: &Session<'_, Bytes>, telnet: &Telnet) {
    let mut decoder = Decoder::new(telnet.limits.max_line);
    loop {
        if read.readable().await.is_err() {
            return;
        }
        // Not held across an await, so an idle client's task carries no read buffer.
        let mut chunk = [0u8; READ_CHUNK];
        let n = match read.try_read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(_) => return,
        };
        decoder.feed(&chunk[..n], &mut |item| match item {
            Item::Line(line) => {
                if let Err(error) = session.line(line) {
                    session.error(error, |e| telnet.render(e));
                }
            }
            Item::TooLong => session.error(ChatError::LineTooLong, |e| telnet.render(e)),
            Item::Answer(bytes) => session.reply(Bytes::copy_from_slice(&bytes)),
        });
    }
}

/// Writes the outbox a batch at a time; returns after a `Close` (flushed) or a kill.
async fn write_out(mut write: OwnedWriteHalf, outbox: &mut OutboxRx<Bytes>) {
    let mut batch = VecDeque::new();
    let mut gathered = BytesMut::new();
    loop {
        match outbox.next(&mut batch).await {
            Next::Send => {}
            Next::Close => break,
            Next::Killed => return,
        }
        let bytes: &[u8] = if batch.len() == 1 {
            &batch[0]
        } else {
            for message in &batch {
                gathered.extend_from_slice(message);
            }
            &gathered
        };
        let written = tokio::select! {
            result = write.write_all(bytes) => result.is_ok(),
            _ = outbox.killed() => false,
        };
        // Held only while writing: an idle connection keeps no buffer.
        gathered = BytesMut::new();
        batch.clear();
        if !written {
            return;
        }
    }
    let _ = write.shutdown().await;
}
