//! `wx-validator miners …`: import the registry from a TOML or JSON file (all rows checked
//! first, see [`validate`]; all or nothing), list it, remove a miner.
//!
//! Identity is (uid, hotkey) (docs/operating.md, "Fair play"): an import that gives a uid
//! another hotkey registers a new miner there, without the previous hotkey's history; it is
//! printed, logged and recorded as a registry event, which `miners list` and `status` show.

pub mod validate;

use anyhow::{Context, Result};
use clap::Subcommand;
use std::io::Write;
use std::path::PathBuf;
use wx_cli::{ExitStatus, Failure};
use wx_store::{Db, MinerRecord};

/// Registry commands.
#[derive(Subcommand)]
pub enum MinersCommand {
    /// Import (upsert by uid) miners from FILE: JSON `[{uid, hotkey, store_url, access_token}]`
    /// or TOML `[[miners]]` tables with the same keys. Every row is checked first (SS58 hotkey,
    /// https store URL on a public address, printable token, no uid or hotkey twice); one bad
    /// row and nothing is imported (exit code 65).
    Import {
        /// The file.
        file: PathBuf,
    },
    /// List the registered miners (tokens are never printed): when each hotkey was registered
    /// and the hotkey it replaced at the uid, if any.
    List,
    /// Deregister a miner: no new run seeds it and its runs in progress stop scoring it; its
    /// history (stats, scores, lifetime statistics) is kept for reports. Re-importing the uid
    /// registers it again (a different hotkey is a new miner).
    Remove {
        /// The uid.
        uid: u8,
    },
}

#[derive(serde::Deserialize)]
struct TomlFile {
    miners: Vec<MinerRecord>,
}

/// Parses an import file by its extension (`.json` or `.toml`); content that does not parse
/// is refused input (exit code 65).
pub fn parse_file(path: &std::path::Path) -> Result<Vec<MinerRecord>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let refused = |what: &str, e: &dyn std::fmt::Display| {
        Failure::new(
            ExitStatus::DataRefused,
            format!("{} is not {what}: {e}", path.display()),
        )
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => {
            serde_json::from_str(&text).map_err(|e| refused("a JSON list of miners", &e).into())
        }
        Some("toml") => Ok(toml::from_str::<TomlFile>(&text)
            .map_err(|e| refused("a TOML file of [[miners]]", &e))?
            .miners),
        _ => Err(Failure::new(
            ExitStatus::Usage,
            format!("{}: use a .json or .toml file", path.display()),
        )
        .into()),
    }
}

/// Runs a registry command. The database must exist with the current schema (create it with
/// `wx-validator migrate`).
pub async fn run(command: MinersCommand, config: &wx_steps::ValidatorConfig) -> Result<()> {
    let db = Db::open_existing(config.require_database_url()?).await?;
    match command {
        MinersCommand::Import { file } => {
            let records = parse_file(&file)?;
            let registered: Vec<(i32, String)> = db
                .miners()
                .list()
                .await?
                .into_iter()
                .map(|m| (m.uid, m.hotkey))
                .collect();
            let problems = validate::check_import(&records, &registered, &config.data);
            if !problems.is_empty() {
                let mut err = std::io::stderr().lock();
                for p in &problems {
                    writeln!(err, "{}: {p}", file.display())?;
                }
                return Err(Failure::new(
                    ExitStatus::DataRefused,
                    format!(
                        "{} of {} rows of {} are refused (listed above); nothing was imported",
                        problems.len(),
                        records.len(),
                        file.display()
                    ),
                )
                .into());
            }
            let summary = db.miners().import(&records, chrono::Utc::now()).await?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "imported {} miners into {} ({} new)",
                summary.upserted,
                db.display_url(),
                summary.added.len()
            )?;
            for c in &summary.hotkey_changed {
                writeln!(
                    out,
                    "uid {}: hotkey changed from {} to {}: a new miner, without the previous \
                     hotkey's history; it joins the next run",
                    c.uid, c.previous, c.hotkey
                )?;
            }
        }
        MinersCommand::List => {
            let miners = db.miners().list().await?;
            let events = db.miners().events(None, 10_000).await?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:>4}  {:<50}  {:<20}  {:<50}  store_url",
                "uid", "hotkey", "registered_at", "previous_hotkey"
            )?;
            for m in miners {
                // the hotkey this one replaced at the uid (events are newest first)
                let previous = events
                    .iter()
                    .find(|e| {
                        e.uid == m.uid
                            && e.hotkey == m.hotkey
                            && e.event == wx_store::registry_event::HOTKEY_CHANGED
                    })
                    .and_then(|e| e.previous_hotkey.clone())
                    .unwrap_or_else(|| "-".into());
                writeln!(
                    out,
                    "{:>4}  {:<50}  {:<20}  {:<50}  {}",
                    m.uid,
                    m.hotkey,
                    m.registered_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    previous,
                    wx_model::sanitize_message(&m.store_url, &[&m.access_token])
                )?;
            }
        }
        MinersCommand::Remove { uid } => {
            let removed = db
                .miners()
                .remove(i32::from(uid), chrono::Utc::now())
                .await?;
            if !removed {
                return Err(Failure::new(
                    ExitStatus::DataRefused,
                    format!(
                        "uid {uid} is not registered in {}; `wx-validator miners list` shows \
                         the registered uids",
                        db.display_url()
                    ),
                )
                .into());
            }
            tracing::info!(uid, "miner removed from the registry");
            writeln!(
                std::io::stdout(),
                "removed uid {uid}: no new run seeds it; its history is kept"
            )?;
        }
    }
    Ok(())
}
