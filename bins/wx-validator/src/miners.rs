//! `wx-validator miners …`: import the registry from a TOML or JSON file, list it.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::path::PathBuf;
use wx_store::{Db, MinerRecord};

/// Registry commands.
#[derive(Subcommand)]
pub enum MinersCommand {
    /// Import (upsert by uid) miners from FILE: JSON `[{uid, hotkey, store_url, access_token}]`
    /// or TOML `[[miners]]` tables with the same keys.
    Import {
        /// The file.
        file: PathBuf,
    },
    /// List the registered miners (tokens are never printed).
    List,
}

#[derive(serde::Deserialize)]
struct TomlFile {
    miners: Vec<MinerRecord>,
}

/// Parses an import file by its extension (`.json` or `.toml`).
pub fn parse_file(path: &std::path::Path) -> Result<Vec<MinerRecord>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JSON list of miners", path.display())),
        Some("toml") => Ok(toml::from_str::<TomlFile>(&text)
            .with_context(|| format!("{} is not a TOML file of [[miners]]", path.display()))?
            .miners),
        _ => bail!("{}: use a .json or .toml file", path.display()),
    }
}

/// Runs a registry command.
pub async fn run(command: MinersCommand, config: &wx_steps::ValidatorConfig) -> Result<()> {
    let db = Db::open(&config.database_url).await?;
    match command {
        MinersCommand::Import { file } => {
            let records = parse_file(&file)?;
            let summary = db.miners().import(&records, chrono::Utc::now()).await?;
            println!(
                "imported {} miners into {}",
                summary.upserted,
                db.display_url()
            );
        }
        MinersCommand::List => {
            println!("{:>4}  {:<50}  store_url", "uid", "hotkey");
            for m in db.miners().list().await? {
                println!(
                    "{:>4}  {:<50}  {}",
                    m.uid,
                    m.hotkey,
                    wx_model::sanitize_message(&m.store_url, &[&m.access_token])
                );
            }
        }
    }
    Ok(())
}
