//! Watching the config file, so that a saved edit is applied without a `reload`.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::mpsc;

/// Quiet time after a change before the file is read: editors write in several steps.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watches the file's folder (editors replace files rather than write them) and signals
/// `changed` for events on the file itself; watching ends when the watcher is dropped.
pub fn watch(path: &Path, changed: mpsc::Sender<()>) -> Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let name = path.file_name().map(|n| n.to_os_string());
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        if event
            .paths
            .iter()
            .any(|p| p.file_name().map(|n| n.to_os_string()) == name)
        {
            let _ = changed.try_send(());
        }
    })?;
    watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// After a change: waits until the changes stop for [`DEBOUNCE`].
pub async fn debounce(changed: &mut mpsc::Receiver<()>) {
    while tokio::time::timeout(DEBOUNCE, changed.recv())
        .await
        .is_ok_and(|m| m.is_some())
    {}
}
