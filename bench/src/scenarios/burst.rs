//! Burst: 20 senders x 1,000 `msgall` at once to 1,000 reading clients over 3 telnet and 1 web
//! frontend (about 1.6 MB for each client), on the multi-process system: nothing may be lost and
//! no client dropped while the outboxes hold the burst back.

use anyhow::Result;
use serde_json::Value;

use super::fanout::{Load, measure};
use crate::RunArgs;
use crate::system::System;

/// Filler after each stamp, so that a telnet delivery (`[12:00:00][f950]: t=NANOS xx…`) is about
/// 80 bytes.
const PAD: usize = 50;

/// `--senders` x `--burst-messages` `msgall` lines to `--clients` clients.
pub async fn run(args: &RunArgs) -> Result<Value> {
    let load = Load {
        messages: args.burst_messages,
        pad: PAD,
        ..Load::of(args)
    };
    let system = System::multi(3, 1)?;
    let addrs = system.addrs();
    let figures = measure(&system, &addrs, load, false, None).await?;
    system.stop();
    Ok(figures)
}
