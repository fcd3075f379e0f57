//! `wx-validator config show`: the effective configuration as commented TOML — every key with
//! its value (defaults included), each preceded by the doc comment of its field, secrets
//! redacted. `config show --defaults` prints the built-in defaults; `deploy/wx.example.toml` is
//! exactly that output (`cargo xtask deploy-config` regenerates it; a test keeps it current).

use anyhow::{Context, Result};
use clap::Subcommand;
use documented::DocumentedFields;
use std::fmt::Write;
use std::path::Path;
use toml::Value;
use wx_data::transport::SourceAccess;
use wx_model::config::{ConcurrencyConfig, PipelineConfig};
use wx_scoring::config::{
    Day1Config, Era5Config, FieldConfig, OverallConfig, ScoringConfig, WeightCurveConfig,
};
use wx_steps::ValidatorConfig;
use wx_steps::config::{DataConfig, MinerThroughput, TrustedLimits};

/// What replaces a secret in the output.
pub const REDACTED: &str = "REDACTED";

/// Configuration commands.
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, then the file, then `WX_*` variables) as
    /// commented TOML, with every default and with secrets redacted.
    Show {
        /// Print the built-in defaults, ignoring the file and the environment.
        #[arg(long)]
        defaults: bool,
    },
}

/// Runs a configuration command. `file` and `database_url` are the global options.
pub fn run(command: &ConfigCommand, file: Option<&Path>, database_url: Option<&str>) -> Result<()> {
    match command {
        ConfigCommand::Show { defaults: true } => {
            print!(
                "{}",
                render(&ValidatorConfig::default(), &Sources::Defaults)?
            );
        }
        ConfigCommand::Show { defaults: false } => {
            let config = wx_cli::config::load(file, database_url)?;
            let sources = Sources::Effective {
                file: file.map(|f| f.display().to_string()),
                environment: std::env::vars().any(|(k, _)| k.starts_with("WX_")),
                command_line: database_url.is_some(),
            };
            print!("{}", render(&config, &sources)?);
        }
    }
    Ok(())
}

/// Where the shown values come from (named in the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sources {
    /// The built-in defaults only.
    Defaults,
    /// What `wx-validator run` would use.
    Effective {
        /// The configuration file, if one was given.
        file: Option<String>,
        /// Whether any `WX_*` variable is set (they may override keys).
        environment: bool,
        /// Whether `--database-url` was given.
        command_line: bool,
    },
}

impl Sources {
    /// The layers in order, e.g. `built-in defaults < /etc/wx/wx.toml < WX_* environment`.
    fn describe(&self) -> String {
        let mut layers = vec!["built-in defaults".to_owned()];
        if let Sources::Effective {
            file,
            environment,
            command_line,
        } = self
        {
            layers.extend(file.clone());
            if *environment {
                layers.push("WX_* environment".into());
            }
            if *command_line {
                layers.push("--database-url".into());
            }
        }
        layers.join(" < ")
    }
}

/// Field names and doc comments of the struct behind each table of the configuration.
type FieldDocs = (&'static [&'static str], &'static [&'static str]);

/// The struct behind a table path (`""` is the top level); `None` for maps (e.g.
/// `pipeline.retry`), whose keys are data, not fields.
fn docs_of(path: &str) -> Option<FieldDocs> {
    macro_rules! docs {
        ($t:ty) => {
            Some((<$t>::FIELD_NAMES, <$t>::FIELD_DOCS))
        };
    }
    match path {
        "" => docs!(ValidatorConfig),
        "pipeline" => docs!(PipelineConfig),
        "pipeline.concurrency" => docs!(ConcurrencyConfig),
        "scoring" => docs!(ScoringConfig),
        "scoring.field" => docs!(FieldConfig),
        "scoring.day1" => docs!(Day1Config),
        "scoring.era5" => docs!(Era5Config),
        "scoring.overall" => docs!(OverallConfig),
        "scoring.weights" => docs!(WeightCurveConfig),
        "data" => docs!(DataConfig),
        "data.era5_limits" | "data.climatology_limits" => docs!(TrustedLimits),
        "data.miner_throughput" => docs!(MinerThroughput),
        "data.era5_access" | "data.climatology_access" | "data.gfs_access" => {
            docs!(SourceAccess)
        }
        _ => None,
    }
}

/// The doc comment of `field` in the table at `path`.
fn field_doc(path: &str, field: &str) -> Option<&'static str> {
    let (names, docs) = docs_of(path)?;
    names.iter().position(|n| *n == field).map(|i| docs[i])
}

/// Whether a key names a secret: passwords, tokens, secrets, credentials, keys.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "passwd", "token", "secret", "credential"]
        .iter()
        .any(|w| key.contains(w))
        || key.split(['_', '-', '.']).any(|part| part == "key")
}

/// A string with any URL password, and any query parameter that names a secret, replaced by
/// [`REDACTED`]. Strings that are not URLs are returned unchanged.
pub fn redact_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        return text.to_owned();
    };
    let mut changed = false;
    if url.password().is_some() {
        // only fails for URLs that cannot have credentials, which this one has
        let _ = url.set_password(Some(REDACTED));
        changed = true;
    }
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if pairs.iter().any(|(k, _)| is_secret_key(k)) {
        let mut query = url.query_pairs_mut();
        query.clear();
        for (k, v) in &pairs {
            query.append_pair(k, if is_secret_key(k) { REDACTED } else { v });
        }
        drop(query);
        changed = true;
    }
    if changed {
        url.to_string()
    } else {
        text.to_owned()
    }
}

/// Replaces secrets anywhere in the value tree: whole values of secret-named keys, passwords
/// and secret query parameters inside URLs.
pub fn redact(value: &mut Value) {
    match value {
        Value::Table(table) => {
            for (key, v) in table.iter_mut() {
                // `credentials` of a source's access table names a mode, not a secret
                let mode =
                    key == "credentials" && matches!(v.as_str(), Some("anonymous" | "environment"));
                if is_secret_key(key) && !v.is_table() && !mode {
                    *v = Value::String(REDACTED.into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) => *s = redact_url(s),
        _ => {}
    }
}

/// Appends `text` as `# ` comment lines.
fn comment(out: &mut String, text: &str) {
    for line in text.trim().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            let _ = writeln!(out, "# {line}");
        }
    }
}

/// A key as TOML writes it (bare when possible, quoted otherwise).
fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_owned()
    } else {
        Value::String(key.to_owned()).to_string()
    }
}

/// Writes the table at `path`: its plain keys (struct order, unset optional fields as a
/// comment), then its sub-tables.
fn write_table(out: &mut String, path: &str, table: &toml::Table) -> Result<()> {
    let fields: Vec<&str> = match docs_of(path) {
        Some((names, _)) => names.to_vec(),
        None => table.keys().map(String::as_str).collect(),
    };
    let mut subtables = Vec::new();
    for field in &fields {
        let doc = field_doc(path, field);
        match table.get(*field) {
            Some(Value::Table(t)) => subtables.push((*field, t)),
            Some(value) => {
                if let Some(doc) = doc {
                    comment(out, doc);
                }
                let _ = writeln!(out, "{} = {value}", toml_key(field));
            }
            None => {
                if let Some(doc) = doc {
                    comment(out, doc);
                }
                let _ = writeln!(out, "# {} is not set", toml_key(field));
            }
        }
    }
    for (field, sub) in subtables {
        let sub_path = if path.is_empty() {
            (*field).to_owned()
        } else {
            format!("{path}.{}", toml_key(field))
        };
        out.push('\n');
        if let Some(doc) = field_doc(path, field) {
            comment(out, doc);
        }
        let _ = writeln!(out, "[{sub_path}]");
        write_table(out, &sub_path, sub)?;
    }
    Ok(())
}

/// The configuration as commented TOML with secrets redacted; `sources` names where the
/// values come from in the header. Loading the output (without secrets) gives `config` back.
pub fn render(config: &ValidatorConfig, sources: &Sources) -> Result<String> {
    let mut value =
        Value::try_from(config).context("the configuration cannot be written as TOML")?;
    redact(&mut value);
    let Value::Table(table) = value else {
        anyhow::bail!("the configuration is not a TOML table");
    };
    let mut out = String::new();
    comment(
        &mut out,
        &format!(
            "wx-validator configuration: every key with its value, secrets shown as {REDACTED}.
Values from: {}.
Generated by `wx-validator config show`. Keys left out of a file keep their defaults;
`WX_*` variables override the file, with `__` between sections (`WX_DATABASE_URL`,
`WX_PIPELINE__TEST_MODE=true`).",
            sources.describe()
        ),
    );
    out.push('\n');
    write_table(&mut out, "", &table)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_urls_and_secret_keys_are_redacted() {
        assert_eq!(
            redact_url("postgres://wx:hunter2@db.example:5432/wx?sslmode=require"),
            "postgres://wx:REDACTED@db.example:5432/wx?sslmode=require"
        );
        assert_eq!(
            redact_url("https://store.example/f.zarr?token=abc&x=1"),
            "https://store.example/f.zarr?token=REDACTED&x=1"
        );
        assert_eq!(redact_url("sqlite://wx.sqlite3"), "sqlite://wx.sqlite3");
        assert_eq!(redact_url("postgres://wx@db/wx"), "postgres://wx@db/wx");
        assert_eq!(redact_url("not a url"), "not a url");
        let mut v: Value = toml::from_str(
            "[data]\naws_secret_access_key = \"s3cr3t\"\naccess_key_id = \"AKIA\"\nbearer_token = \"t\"\nclone_delta = 1\n[data.credentials]\npassword = \"p\"\n",
        )
        .unwrap();
        redact(&mut v);
        let text = v.to_string();
        for secret in ["s3cr3t", "AKIA", "\"t\"", "\"p\""] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("clone_delta = 1"), "{text}");
    }

    #[test]
    fn every_table_and_field_is_documented() {
        let text = render(&ValidatorConfig::default(), &Sources::Defaults).unwrap();
        let mut previous = "";
        for line in text.lines() {
            let is_setting = !line.starts_with('#') && !line.trim().is_empty();
            // entries of the maps (e.g. scoring.day1.clone_delta) share their table's comment
            let in_map = text[..text.find(line).unwrap()]
                .lines()
                .rev()
                .find(|l| l.starts_with('['))
                .is_some_and(|h| docs_of(h.trim_matches(['[', ']'])).is_none());
            if is_setting && !in_map {
                assert!(
                    previous.starts_with('#'),
                    "`{line}` has no comment above it in:\n{text}"
                );
            }
            if !line.trim().is_empty() {
                previous = line;
            }
        }
    }
}
