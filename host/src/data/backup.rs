//! Scheduled backups: every `backup.interval_ms`, a dump of every
//! configured plugin's data (and the host's own, with
//! `backup.include_host`) into `backup.folder`, written beside its name
//! and renamed, so a dump there is whole; the newest `backup.keep` are
//! kept. A backup that fails is logged and counted, and the next one comes
//! at its time.

use crate::config::BackupConfig;
use crate::metrics::Metrics;
use crate::storage::{Namespace, Storage};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What a dump in the folder is called: `hoard-<Unix time in ms>.dump`.
fn dump_name(at_ms: u64) -> String {
    format!("hoard-{at_ms:013}.dump")
}

/// Starts the schedule; the task ends when the handle is aborted.
pub fn start(
    storage: Storage,
    namespaces: Vec<Namespace>,
    config: BackupConfig,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_millis(config.interval_ms.max(1));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match back_up(&storage, &namespaces, &config).await {
                Ok((path, items)) => {
                    tracing::info!(path = %path.display(), items, "backup written");
                    metrics.backup(Some(crate::storage::sled::now_ms() / 1000));
                }
                Err(error) => {
                    tracing::error!(%error, folder = %config.folder.display(), "backup failed");
                    metrics.backup(None);
                }
            }
        }
    })
}

/// Writes one backup and prunes the folder; the dump's path and items.
pub async fn back_up(
    storage: &Storage,
    namespaces: &[Namespace],
    config: &BackupConfig,
) -> Result<(PathBuf, u64), String> {
    let folder = &config.folder;
    std::fs::create_dir_all(folder)
        .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    let path = folder.join(dump_name(crate::storage::sled::now_ms()));
    let partial = path.with_extension("partial");
    let file = std::fs::File::create(&partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let exported = super::export(storage, namespaces, std::io::BufWriter::new(&file)).await;
    let exported = match exported {
        Ok(exported) => exported,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error.to_string());
        }
    };
    let (synced, renamed) = (partial.clone(), path.clone());
    tokio::task::spawn_blocking(move || {
        file.sync_all()?;
        std::fs::rename(&synced, &renamed)?;
        // The rename itself is durable once the folder is.
        std::fs::File::open(renamed.parent().unwrap_or(Path::new(".")))?.sync_all()
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    prune(folder, config.keep)?;
    Ok((path, exported.items))
}

/// Deletes all but the newest `keep` dumps. A `.partial` file a crash
/// left is not a dump and stays, for the operator to look at.
fn prune(folder: &Path, keep: usize) -> Result<(), String> {
    let mut dumps: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|e| format!("cannot list {}: {e}", folder.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|name| name.starts_with("hoard-") && name.ends_with(".dump"))
        })
        .collect();
    // Names carry zero-padded times: sorting them sorts by age.
    dumps.sort();
    let excess = dumps.len().saturating_sub(keep.max(1));
    for old in &dumps[..excess] {
        std::fs::remove_file(old).map_err(|e| format!("cannot delete {}: {e}", old.display()))?;
    }
    Ok(())
}
