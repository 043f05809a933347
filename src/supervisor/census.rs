//! Asking the kernel how many users each frontend has, for `status`.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::Framed;

use crate::wire::{self, Downstream, Upstream};

/// How long `status` waits for the kernel's answer.
const TIMEOUT: Duration = Duration::from_secs(1);

/// Logged-in users per frontend name, and per other node of a cluster.
#[derive(Debug, Default)]
pub struct Census {
    pub frontends: Vec<(String, u64)>,
    pub nodes: Vec<(String, u64)>,
}

/// The kernel's census; `None` if the kernel does not answer in time.
pub async fn census(socket: &Path) -> Option<Census> {
    let ask = async {
        let stream = tokio::net::UnixStream::connect(socket).await.ok()?;
        let mut framed = Framed::new(stream, wire::codec());
        let mut buf = bytes::BytesMut::new();
        Upstream::Census.encode(&mut buf);
        framed.get_mut().write_all(&buf).await.ok()?;
        while let Some(Ok(body)) = framed.next().await {
            if let Ok(Downstream::Census { frontends, nodes }) = Downstream::decode(&body) {
                return Some(Census { frontends, nodes });
            }
        }
        None
    };
    tokio::time::timeout(TIMEOUT, ask).await.ok().flatten()
}
