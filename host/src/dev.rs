//! `hoard dev`: a game designer's loop. Builds the plugin crates it is
//! given, serves them offline, and watches their sources: on a change it
//! rebuilds the crate and deploys the new component into the running host,
//! as `hoard plugin deploy` would, so sessions carry on (they move to the
//! new version at their next call, if it upgrades their state). A build or
//! load failure is printed and the version before keeps serving.
//!
//! Sources are watched by polling (`src/`, `wit/`, `Cargo.toml`,
//! `build.rs` of each crate, every `WATCH_INTERVAL_MS`): no platform
//! notification API, and a crate's sources are few.

use crate::app::App;
use crate::config::{Config, PluginConfig};
use crate::plugin_crate::{self, Built};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often sources are looked at.
const WATCH_INTERVAL_MS: u64 = 400;
/// Most rounds a change may go on settling before it is built anyway.
const SETTLE_ROUNDS_MAX: usize = 10;
/// Most files looked at in one crate: a crate with more is watched in part.
const WATCHED_FILES_MAX: usize = 10_000;

/// Why `hoard dev` could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error(transparent)]
    Crate(#[from] plugin_crate::CrateError),
    #[error(transparent)]
    Start(#[from] crate::app::StartError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// One crate being developed: where it is and what it builds.
struct Watched {
    dir: PathBuf,
    /// The plugins it builds (one per package with a component).
    plugins: Vec<String>,
    /// The sources as last seen.
    seen: Fingerprint,
}

/// Builds `dirs`, serves their plugins with `config` (its `plugins`
/// replaced by them) until `shutdown`, and reloads each on change.
pub async fn run(
    dirs: &[PathBuf],
    mut config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DevError> {
    let mut watched = Vec::new();
    config.plugins.clear();
    for dir in dirs {
        // Sources as they are before the build: an edit during it counts.
        let seen = Fingerprint::of(dir);
        let built = build(dir).await?;
        for component in &built {
            eprintln!(
                "hoard dev: built {} ({})",
                component.package,
                component.path.display()
            );
            config.plugins.push(PluginConfig {
                name: component.package.clone(),
                path: component.path.clone(),
            });
        }
        watched.push(Watched {
            dir: dir.clone(),
            plugins: built.into_iter().map(|b| b.package).collect(),
            seen,
        });
    }
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|source| DevError::Listen {
            address: config.server.listen,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| DevError::Listen {
        address: config.server.listen,
        source,
    })?;
    let app = Arc::new(App::start(config).await?);
    eprintln!(
        "hoard dev: serving {} on http://{address}; watching {} for changes (Ctrl-C ends)",
        watched
            .iter()
            .flat_map(|w| w.plugins.iter().cloned())
            .collect::<Vec<_>>()
            .join(", "),
        watched
            .iter()
            .map(|w| w.dir.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let server = tokio::spawn(crate::api::serve(app.clone(), listener, shutdown));
    while !server.is_finished() {
        tokio::time::sleep(Duration::from_millis(WATCH_INTERVAL_MS)).await;
        for crate_dir in &mut watched {
            let mut now = Fingerprint::of(&crate_dir.dir);
            if now == crate_dir.seen {
                continue;
            }
            // An editor saving several files, or one in several writes:
            // build once they have settled.
            for _ in 0..SETTLE_ROUNDS_MAX {
                tokio::time::sleep(Duration::from_millis(WATCH_INTERVAL_MS)).await;
                let later = Fingerprint::of(&crate_dir.dir);
                if later == now {
                    break;
                }
                now = later;
            }
            crate_dir.seen = now;
            reload(&app, crate_dir).await;
        }
    }
    let _ = server.await;
    Ok(())
}

/// Builds a crate off the async threads (cargo takes a while).
async fn build(dir: &Path) -> Result<Vec<Built>, plugin_crate::CrateError> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || plugin_crate::build(&dir))
        .await
        .unwrap_or(Err(plugin_crate::CrateError::NoComponent))
}

/// Rebuilds a changed crate and deploys what it built; a failure is
/// printed and the running version stays.
async fn reload(app: &App, watched: &Watched) {
    let dir = watched.dir.display();
    eprintln!("hoard dev: {dir} changed: rebuilding");
    let built = match build(&watched.dir).await {
        Ok(built) => built,
        Err(error) => {
            eprintln!("hoard dev: {error}; the running version keeps serving");
            return;
        }
    };
    for component in built {
        if !watched.plugins.contains(&component.package) {
            eprintln!(
                "hoard dev: {} is new in {dir}: restart `hoard dev` to serve it",
                component.package
            );
            continue;
        }
        let bytes = match std::fs::read(&component.path) {
            Ok(bytes) => bytes,
            Err(error) => {
                eprintln!(
                    "hoard dev: cannot read {}: {error}",
                    component.path.display()
                );
                continue;
            }
        };
        match app.deploy(&component.package, &bytes).await {
            Ok(deployed) if deployed.previous.is_none() => {
                eprintln!("hoard dev: {} is unchanged", component.package);
            }
            Ok(deployed) => eprintln!(
                "hoard dev: reloaded {} {}: new sessions use it, running ones move at their next call",
                component.package, deployed.version
            ),
            Err(error) => eprintln!(
                "hoard dev: {} not reloaded: {error}; the running version keeps serving",
                component.package
            ),
        }
    }
}

/// What a crate's sources look like: each file's path, size and time of
/// change.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint(Vec<(PathBuf, u64, Option<SystemTime>)>);

impl Fingerprint {
    fn of(dir: &Path) -> Fingerprint {
        let mut files = Vec::new();
        for name in ["Cargo.toml", "build.rs"] {
            files.push(dir.join(name));
        }
        let mut folders = vec![dir.join("src"), dir.join("wit")];
        while let Some(folder) = folders.pop() {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.flatten() {
                if files.len() >= WATCHED_FILES_MAX {
                    break;
                }
                let path = entry.path();
                match entry.file_type() {
                    Ok(kind) if kind.is_dir() => folders.push(path),
                    Ok(_) => files.push(path),
                    Err(_) => {}
                }
            }
        }
        files.sort();
        Fingerprint(
            files
                .into_iter()
                .map(|path| {
                    let meta = std::fs::metadata(&path).ok();
                    let size = meta.as_ref().map_or(0, |m| m.len());
                    let changed = meta.and_then(|m| m.modified().ok());
                    (path, size, changed)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An edit, a new file and a removed one each change the fingerprint;
    /// files outside the watched places do not.
    #[test]
    fn the_fingerprint_follows_the_sources() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/deep")).unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[package]").unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "fn a() {}").unwrap();
        let first = Fingerprint::of(dir.path());
        assert_eq!(first, Fingerprint::of(dir.path()));
        std::fs::write(dir.path().join("README.md"), "not a source").unwrap();
        std::fs::create_dir_all(dir.path().join("target")).unwrap();
        std::fs::write(dir.path().join("target/x"), "built").unwrap();
        assert_eq!(first, Fingerprint::of(dir.path()));
        std::fs::write(dir.path().join("src/deep/more.rs"), "fn b() {}").unwrap();
        let second = Fingerprint::of(dir.path());
        assert_ne!(first, second);
        std::fs::write(dir.path().join("src/lib.rs"), "fn a() { }").unwrap();
        let third = Fingerprint::of(dir.path());
        assert_ne!(
            second, third,
            "a size change shows even within the same second"
        );
        std::fs::remove_file(dir.path().join("src/deep/more.rs")).unwrap();
        assert_ne!(third, Fingerprint::of(dir.path()));
    }
}
