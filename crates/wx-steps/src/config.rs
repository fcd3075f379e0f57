//! The validator's configuration: database, cache, pipeline timing, scoring and data sources.
//!
//! Read from a TOML file with `WX_*` environment overrides (`WX_DATABASE_URL`,
//! `WX_PIPELINE__TEST_MODE=true`, `WX_DATA__ERA5=/mirror/era5.zarr`, … — `__` separates
//! sections). Every key has a default, so an empty file (or none) is valid.

use documented::DocumentedFields;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use wx_model::config::PipelineConfig;
use wx_model::{Level, VarLevel};
use wx_scoring::ScoringConfig;

/// Everything a validator process needs to know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DocumentedFields)]
#[serde(default, deny_unknown_fields)]
pub struct ValidatorConfig {
    /// `postgres://…` or `sqlite://path` (default: `wx.sqlite3` in the working directory).
    pub database_url: String,
    /// Directory of the disk cache of truth, reference and climatology slices.
    pub cache_dir: PathBuf,
    /// When runs start, leases, retries, concurrency, test mode.
    pub pipeline: PipelineConfig,
    /// What is scored and how (variables, leads, every weight).
    pub scoring: ScoringConfig,
    /// Where the data comes from and how miner stores are fetched.
    pub data: DataConfig,
    /// Address of the operator endpoints `/metrics` (Prometheus), `/healthz` (liveness) and
    /// `/readyz` (readiness), e.g. `127.0.0.1:9184`; none when unset.
    pub metrics_addr: Option<String>,
}

/// Data sources and the miner-store fetch policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DocumentedFields)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// GFS: `s3://noaa-gfs-bdp-pds` (NOAA Open Data) or a local directory with the same layout.
    pub gfs: String,
    /// ERA5 truth in the ARCO layout: `gs://…`, `s3://…`, `https://…` or a local path.
    pub era5: String,
    /// WeatherBench2 hourly climatology: same forms.
    pub climatology: String,
    /// Hours after a cycle's init at which its GFS analysis is published.
    pub gfs_publication_delay_hours: u32,
    /// Allow miner stores on loopback addresses (demo and tests only).
    pub allow_loopback_miners: bool,
    /// Allow `http://` miner stores (demo and tests only).
    pub allow_plain_http_miners: bool,
    /// Accept self-signed TLS certificates of miner stores.
    pub accept_invalid_certs: bool,
    /// Require `manifest.sig` (recommended: the signature by the miner's hotkey is what
    /// authenticates the manifest the validator freezes).
    pub require_signature: bool,
    /// Memory budget of the in-process cache of decoded truth and climatology fields, MiB.
    pub memory_cache_mib: usize,
    /// Disk cache entries older than this are deleted, days.
    pub cache_retention_days: u32,
    /// Largest metadata document accepted from the (trusted) ERA5 and climatology stores, MiB.
    pub truth_metadata_limit_mib: u64,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            gfs: "s3://noaa-gfs-bdp-pds".into(),
            era5: "gs://gcp-public-data-arco-era5/ar/full_37-1h-0p25deg-chunk-1.zarr-v3".into(),
            climatology:
                "gs://weatherbench2/datasets/era5-hourly-climatology/1990-2019_6h_1440x721.zarr"
                    .into(),
            gfs_publication_delay_hours: 5,
            allow_loopback_miners: false,
            allow_plain_http_miners: false,
            accept_invalid_certs: false,
            require_signature: true,
            memory_cache_mib: 2048,
            cache_retention_days: 7,
            truth_metadata_limit_mib: 64,
        }
    }
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        ValidatorConfig {
            database_url: "sqlite://wx.sqlite3".into(),
            cache_dir: PathBuf::from("wx-cache"),
            pipeline: PipelineConfig::default(),
            scoring: ScoringConfig::default(),
            data: DataConfig::default(),
            metrics_addr: None,
        }
    }
}

/// A configuration that cannot be loaded or cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment override does not parse.
    #[error("cannot read the configuration: {0}")]
    Load(String),
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The variables and leads to score, parsed from the scoring configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    /// Day1 (variable selection, its key in the scoring configuration).
    pub day1_variables: Vec<(VarLevel, String)>,
    /// Day1 leads.
    pub day1_leads: Vec<u32>,
    /// ERA5 (variable selection, key).
    pub era5_variables: Vec<(VarLevel, String)>,
    /// ERA5 leads.
    pub era5_leads: Vec<u32>,
}

impl Targets {
    /// The levels a selection covers (empty for surface variables).
    pub fn levels(v: &VarLevel) -> Vec<Level> {
        v.levels()
    }
}

/// The top-level keys of [`ValidatorConfig`]: only `WX_<KEY>` / `WX_<KEY>__…` variables are
/// configuration; other `WX_*` variables (e.g. `WX_TEST_PG_URL` of the test harness, `WX_LOG`)
/// belong to other tools and are ignored rather than refused.
fn config_sections() -> Vec<String> {
    match serde_json::to_value(ValidatorConfig::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

impl ValidatorConfig {
    /// Defaults, then the TOML file (if given), then `WX_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<ValidatorConfig, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(ValidatorConfig::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::Load(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        let sections = config_sections();
        figment = figment.merge(
            Env::prefixed("WX_")
                .filter(move |key| {
                    let first = key.as_str().split("__").next().unwrap_or_default();
                    sections.iter().any(|s| s.eq_ignore_ascii_case(first))
                })
                .split("__"),
        );
        let config: ValidatorConfig = figment
            .extract()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every section and their consistency.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.pipeline
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.scoring
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let t = self.targets()?;
        if t.day1_variables.is_empty()
            || t.day1_leads.is_empty()
            || t.era5_variables.is_empty()
            || t.era5_leads.is_empty()
        {
            return Err(ConfigError::Invalid(
                "scoring.day1 and scoring.era5 need variables and leads".into(),
            ));
        }
        if t.day1_leads
            .iter()
            .chain(&t.era5_leads)
            .any(|l| *l == 0 || l % 6 != 0)
        {
            return Err(ConfigError::Invalid(
                "leads must be positive multiples of 6 hours".into(),
            ));
        }
        if self.data.memory_cache_mib == 0 {
            return Err(ConfigError::Invalid(
                "data.memory_cache_mib must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The variables and leads of the scoring configuration, parsed.
    pub fn targets(&self) -> Result<Targets, ConfigError> {
        let parse = |names: &[String]| -> Result<Vec<(VarLevel, String)>, ConfigError> {
            names
                .iter()
                .map(|n| {
                    VarLevel::parse(n)
                        .map(|v| (v, n.clone()))
                        .map_err(|e| ConfigError::Invalid(e.to_string()))
                })
                .collect()
        };
        Ok(Targets {
            day1_variables: parse(&self.scoring.day1.variables)?,
            day1_leads: self.scoring.day1.leads.clone(),
            era5_variables: parse(&self.scoring.era5.variables)?,
            era5_leads: self.scoring.era5.leads.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_files_override_them() {
        ValidatorConfig::default().validate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wx.toml");
        std::fs::write(
            &path,
            "database_url = \"postgres://wx@db/wx\"\n[pipeline]\ntest_mode = true\n[scoring.era5]\nleads = [24, 48]\n[data]\nallow_loopback_miners = true\n",
        )
        .unwrap();
        let c = ValidatorConfig::load(Some(&path)).unwrap();
        assert_eq!(c.database_url, "postgres://wx@db/wx");
        assert!(c.pipeline.test_mode);
        assert_eq!(c.targets().unwrap().era5_leads, vec![24, 48]);
        assert_eq!(
            c.targets().unwrap().era5_variables.len(),
            9,
            "unnamed keys keep their defaults"
        );
        assert!(c.data.allow_loopback_miners);
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wx.toml");
        std::fs::write(&path, "[scoring.day1]\nvariables = [\"2t\", \"sp\"]\n").unwrap();
        let e = ValidatorConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("sp"), "{e}");
        std::fs::write(&path, "[pipline]\ntest_mode = true\n").unwrap();
        assert!(
            ValidatorConfig::load(Some(&path)).is_err(),
            "unknown sections are refused"
        );
        assert!(ValidatorConfig::load(Some(&dir.path().join("missing.toml"))).is_err());
    }

    #[test]
    fn only_config_keys_are_read_from_the_environment() {
        let sections = config_sections();
        for key in [
            "database_url",
            "cache_dir",
            "pipeline",
            "scoring",
            "data",
            "metrics_addr",
        ] {
            assert!(
                sections.iter().any(|s| s == key),
                "{key} missing from {sections:?}"
            );
        }
        assert!(
            !sections
                .iter()
                .any(|s| s.eq_ignore_ascii_case("test_pg_url"))
        );
    }
}
