//! `hoard data export | import | verify`.

use super::{ImportOptions, OnConflict};
use crate::cli::DataCommand;
use crate::config::Config;
use crate::storage::{Namespace, Storage};
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

/// Runs one `hoard data` command; the error is a sentence for the user.
pub async fn run(command: DataCommand) -> Result<(), String> {
    match command {
        DataCommand::Export {
            config,
            namespaces,
            include_host,
            output,
        } => {
            let config = load(config.as_deref())?;
            let mut chosen = match namespaces.is_empty() {
                true => config.plugins.iter().map(|p| p.name.clone()).collect(),
                false => namespaces,
            };
            if include_host {
                chosen.push(Namespace::host().to_string());
            }
            let namespaces = chosen
                .iter()
                .map(|name| match name == Namespace::host().as_str() {
                    true => Ok(Namespace::host()),
                    false => Namespace::plugin(name).map_err(|e| e.to_string()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let storage = open(&config).await?;
            let exported = match &output {
                Some(path) => {
                    let partial = path.with_extension("partial");
                    let file = std::fs::File::create(&partial)
                        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
                    let exported = super::export(&storage, &namespaces, BufWriter::new(&file))
                        .await
                        .map_err(|e| e.to_string())?;
                    file.sync_all()
                        .and_then(|()| std::fs::rename(&partial, path))
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    exported
                }
                None => {
                    let mut out = BufWriter::new(std::io::stdout());
                    let exported = super::export(&storage, &namespaces, &mut out)
                        .await
                        .map_err(|e| e.to_string())?;
                    out.flush()
                        .map_err(|e| format!("cannot write the dump: {e}"))?;
                    exported
                }
            };
            for (namespace, items) in &exported.per_namespace {
                eprintln!("exported {items} item(s) of {namespace}");
            }
            for view in exported.views.iter().filter(|view| !view.snapshot) {
                eprintln!(
                    "note: {} storage of {} was not read as one snapshot: {}",
                    view.capability, view.namespace, view.how
                );
            }
            Ok(())
        }
        DataCommand::Import {
            config,
            namespace_map,
            on_conflict,
            include_host,
            input,
        } => {
            let config = load(config.as_deref())?;
            let mut allowed = config
                .plugins
                .iter()
                .map(|plugin| Namespace::plugin(&plugin.name).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            if include_host {
                allowed.push(Namespace::host());
            }
            let options = ImportOptions {
                on_conflict,
                namespace_map: super::namespace_map(&namespace_map).map_err(|e| e.to_string())?,
                allowed: Some(allowed),
                keep_ttl: true,
            };
            let storage = open(&config).await?;
            let imported = match &input {
                Some(path) => {
                    let file = std::fs::File::open(path)
                        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                    super::import(&storage, BufReader::new(file), &options).await
                }
                None => super::import(&storage, std::io::stdin().lock(), &options).await,
            }
            .map_err(|e| e.to_string())?;
            if imported.left_out > 0 {
                eprintln!(
                    "left out {} item(s) of the host's own data (_hoard: accounts, sessions): add --include-host to import them",
                    imported.left_out
                );
            }
            eprintln!(
                "imported: {} written, {} already there as in the dump, {} kept as they were (--on-conflict {})",
                imported.written,
                imported.unchanged,
                imported.skipped,
                match on_conflict {
                    OnConflict::Skip => "skip",
                    OnConflict::Overwrite => "overwrite",
                    OnConflict::Fail => "fail",
                }
            );
            Ok(())
        }
        DataCommand::Verify { file } => {
            let open = || std::fs::File::open(&file).map(BufReader::new);
            let verified = super::verify(open).await.map_err(|e| e.to_string())?;
            println!(
                "{}: sound: {} item(s) of {} written by hoard {} (contract {}), restored into an empty offline store and read back",
                file.display(),
                verified.items,
                verified.header.namespaces.join(", "),
                verified.header.hoard,
                verified.header.contract,
            );
            Ok(())
        }
    }
}

fn load(config: Option<&Path>) -> Result<Config, String> {
    crate::cli::serve_config(config, None).map_err(|e| e.to_string())
}

/// The configured storage, without the outage layer: a data command
/// talks to the backends themselves, and fails if one is down.
async fn open(config: &Config) -> Result<Storage, String> {
    let mut config = config.clone();
    config.storage.resilience.enabled = false;
    let metrics = Arc::new(crate::metrics::Metrics::new());
    match crate::app::open_storage(&config, metrics).await {
        Ok((storage, _)) => Ok(storage),
        Err(error) => {
            let text = error.to_string();
            if text.contains("lock") {
                Err(format!(
                    "{text}: is a host running on this database? Stop it first (sled lets one process at a time open it)"
                ))
            } else {
                Err(text)
            }
        }
    }
}
