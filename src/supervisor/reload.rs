//! Applying an edit of servers.toml by its [`plan`]: bind the new addresses (a failure changes
//! nothing), stop what changed or went (a changed server hands its clients over to its successor),
//! start what changed or came.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Arc;

use super::child::{Handle, Role};
use super::custody::Custody;
use super::plan::{self, Plan};
use super::{Supervisor, bind};
use crate::config::{self, Server};

impl Supervisor {
    /// Reads the config again and applies it by its [`plan`]. An invalid file, or an address
    /// that cannot be bound, changes nothing (and `status` says so until the file is fixed).
    pub(super) async fn reload(&mut self) -> Result<String, String> {
        let new = match config::load(&self.config.path) {
            Ok(new) => new,
            Err(e) => return self.refuse("is invalid", format!("{e:#}\nnothing changed")),
        };
        let plan = plan::diff(&self.config, &new);
        if plan.is_empty() {
            return Ok(self.nothing_new());
        }
        if plan.supervisor_changed {
            tracing::warn!("changes to [supervisor] or [cluster] take effect at the next `up`");
        }
        let fresh = match bind_all(plan.to_bind()) {
            Ok(fresh) => fresh,
            Err(e) => return self.refuse("cannot be applied", format!("{e:#}; nothing changed")),
        };
        let handed = self.stop_changed(&plan).await;
        for name in &plan.removed {
            self.listeners.remove(name);
            tracing::info!(name, "removed");
        }
        self.listeners.extend(fresh);
        self.start_changed(&plan, handed);
        *self.expect.lock() = new.servers.iter().map(|s| s.settings.name.clone()).collect();
        self.config = new;
        self.applied = (chrono::Local::now(), plan.changes());
        self.refused = None;
        let summary = format!("reloaded: {}", plan.summary());
        tracing::info!("{summary}");
        Ok(summary)
    }

    /// A reload that changes nothing: says when the running config was applied.
    fn nothing_new(&mut self) -> String {
        self.refused = None;
        let (at, what) = &self.applied;
        let message = format!(
            "nothing new: {} was applied at {} ({what})",
            self.config.path.display(),
            at.format("%H:%M:%S")
        );
        tracing::info!("{message}");
        message
    }

    /// Refuses a reload: the file `why` (`is invalid`, `cannot be applied`), kept for `status`.
    fn refuse(&mut self, why: &str, message: String) -> Result<String, String> {
        // One log line per refusal, for grep.
        let line = message.replace("\n  ", " ").replace('\n', "; ");
        tracing::error!("reload refused: {line}");
        self.refused = Some(format!("{why}: {}", line.trim_end_matches("; nothing changed")));
        Err(message)
    }

    /// Stops the servers removed or changed, all at once. A server changed in a way its next
    /// process can take over (not its kind or address) hands its clients over, as `restart NAME`
    /// does: returns the custody of their clients by name. The others stop.
    async fn stop_changed(&mut self, plan: &Plan) -> BTreeMap<String, Custody> {
        let taken_over = |handle: &Handle| {
            plan.restarted.iter().any(|s| match &handle.spec.role {
                Role::Frontend { server, .. } => {
                    server.settings.name == s.settings.name && server.settings.kind == s.settings.kind
                }
                Role::Kernel { .. } => false,
            })
        };
        let stopping: Vec<Handle> = plan.to_stop().filter_map(|name| self.servers.remove(name)).collect();
        let (handing, ending): (Vec<Handle>, Vec<Handle>) = stopping.into_iter().partition(|h| taken_over(h));
        let handed = futures_util::future::join_all(handing.into_iter().map(|h| async move {
            let name = h.spec.name.clone();
            (name, h.hand_over_and_end().await)
        }));
        let (handed, _) = futures_util::future::join(
            handed,
            futures_util::future::join_all(ending.into_iter().map(Handle::stop_and_end)),
        )
        .await;
        handed.into_iter().collect()
    }

    /// Starts the servers changed or added, each changed one with the custody of its clients if
    /// its predecessor handed them over.
    fn start_changed(&mut self, plan: &Plan, mut handed: BTreeMap<String, Custody>) {
        for server in plan.to_start() {
            if plan.added.contains(server) {
                tracing::info!(name = %server.settings.name, "added");
            } else if handed.contains_key(&server.settings.name) {
                tracing::info!(name = %server.settings.name, "changed: its next process takes its clients over");
            } else {
                tracing::info!(name = %server.settings.name, "changed: restarting");
            }
            let custody = handed.remove(&server.settings.name);
            self.start_server_with(server, custody);
        }
    }
}

/// Binds each server's address; the first that cannot be bound is the error (and those bound
/// before it are closed).
fn bind_all<'a>(servers: impl Iterator<Item = &'a Server>) -> anyhow::Result<BTreeMap<String, Arc<TcpListener>>> {
    let mut fresh = BTreeMap::new();
    for server in servers {
        fresh.insert(server.settings.name.clone(), Arc::new(bind(server)?));
    }
    Ok(fresh)
}
