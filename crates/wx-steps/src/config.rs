//! The validator's configuration: database, cache, pipeline timing, scoring and data sources.
//!
//! Read from a TOML file with `WX_*` environment overrides (`WX_DATABASE_URL`,
//! `WX_PIPELINE__TEST_MODE=true`, `WX_DATA__ERA5=/mirror/era5.zarr`, … — `__` separates
//! sections). Every key but `database_url` has a default, so an empty file (or none) is valid
//! for commands that need no database. Mistakes are errors, never silent defaults: unknown keys
//! in any section, unknown `WX_*` variables (see [`crate::env_check`]), database strings
//! without a scheme.

use documented::DocumentedFields;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use wx_data::transport::SourceAccess;
use wx_model::config::PipelineConfig;
use wx_model::{Level, VarLevel};
use wx_scoring::ScoringConfig;

/// Everything a validator process needs to know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DocumentedFields)]
#[serde(default, deny_unknown_fields)]
pub struct ValidatorConfig {
    /// `postgres://…` (with `?sslmode=…&sslrootcert=…` for TLS) or `sqlite://path`. No
    /// default (empty): a command that needs a database refuses to guess one, and
    /// only the demo has an embedded database.
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

/// Read limits of a trusted Zarr source (ERA5, climatology), MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, DocumentedFields)]
#[serde(default, deny_unknown_fields)]
pub struct TrustedLimits {
    /// Largest metadata document (e.g. the consolidated `.zmetadata`).
    pub metadata_mib: u64,
    /// Largest decoded chunk (chunk shape × element size); one public ARCO-ERA5 chunk (1 hour
    /// × 37 levels × 721 × 1440 float32) is 146.5 MiB.
    pub chunk_mib: u64,
    /// Largest result of one read.
    pub read_mib: u64,
}

impl Default for TrustedLimits {
    fn default() -> Self {
        TrustedLimits {
            metadata_mib: wx_zarr::TRUSTED_MAX_METADATA_BYTES >> 20,
            chunk_mib: wx_zarr::TRUSTED_MAX_CHUNK_BYTES >> 20,
            read_mib: wx_zarr::TRUSTED_MAX_READ_BYTES >> 20,
        }
    }
}

impl TrustedLimits {
    /// The reader options of a trusted source called `name` with these limits.
    pub fn read_options(&self, name: &str) -> wx_zarr::ReadOptions {
        let mut o = wx_zarr::ReadOptions::trusted(name);
        o.max_metadata_bytes = self.metadata_mib.saturating_mul(1 << 20);
        o.max_chunk_bytes = self.chunk_mib.saturating_mul(1 << 20);
        o.max_read_bytes = self.read_mib.saturating_mul(1 << 20);
        o
    }

    fn validate(&self, section: &str) -> Result<(), ConfigError> {
        if self.metadata_mib == 0 || self.chunk_mib == 0 || self.read_mib == 0 {
            return Err(ConfigError::Invalid(format!(
                "data.{section}: metadata_mib, chunk_mib and read_mib must be positive"
            )));
        }
        Ok(())
    }
}

/// The minimum throughput of every read from a miner's store (docs/data.md §1.3): a body
/// slower than `min_kib_per_second` over a whole window, after the grace, is aborted as "too
/// slow" — the miner's failure, retried as other miner transport errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, DocumentedFields)]
#[serde(default, deny_unknown_fields)]
pub struct MinerThroughput {
    /// Slowest acceptable body, KiB/s per read (0: no minimum). At 256 KiB/s the largest
    /// 0.25° chunk (13 levels, ≤ 60 MB) arrives within 4 min, and 16 steps × 4 chunks read
    /// at once at the minimum need 134 Mbit/s of the validator's downlink.
    pub min_kib_per_second: u64,
    /// Length of one measuring window, seconds.
    pub window_seconds: u32,
    /// Seconds after the headers during which nothing is measured (slow start).
    pub grace_seconds: u32,
}

impl Default for MinerThroughput {
    fn default() -> Self {
        let rule = wx_data::transport::ThroughputRule::default();
        MinerThroughput {
            min_kib_per_second: rule.min_bytes_per_second / 1024,
            window_seconds: rule.window.as_secs() as u32,
            grace_seconds: rule.grace.as_secs() as u32,
        }
    }
}

impl MinerThroughput {
    /// The transport's rule.
    pub fn rule(&self) -> wx_data::transport::ThroughputRule {
        wx_data::transport::ThroughputRule {
            min_bytes_per_second: self.min_kib_per_second.saturating_mul(1024),
            window: std::time::Duration::from_secs(u64::from(self.window_seconds)),
            grace: std::time::Duration::from_secs(u64::from(self.grace_seconds)),
        }
    }
}

/// Data sources and the miner-store fetch policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DocumentedFields)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// GFS: `s3://noaa-gfs-bdp-pds` (NOAA Open Data), `s3://bucket/prefix` of a mirror, or a
    /// local directory with the same layout.
    pub gfs: String,
    /// ERA5 truth in the ARCO layout: `gs://…`, `s3://…`, `https://…` or a local path.
    pub era5: String,
    /// WeatherBench2 hourly climatology: same forms.
    pub climatology: String,
    /// Score against final ERA5 only: a valid time counts as published up to the store's
    /// `valid_time_stop` (months behind) instead of `valid_time_stop_era5t` (days behind).
    pub era5_final_only: bool,
    /// Hours after a cycle's init at which its GFS analysis is published.
    pub gfs_publication_delay_hours: u32,
    /// Allow miner stores on loopback addresses (demo and tests only).
    pub allow_loopback_miners: bool,
    /// Allow `http://` miner stores (demo and tests only).
    pub allow_plain_http_miners: bool,
    /// Accept self-signed TLS certificates of miner stores.
    pub accept_invalid_certs: bool,
    /// Minimum throughput of reads from miner stores.
    pub miner_throughput: MinerThroughput,
    /// Require `manifest.sig` (recommended: the signature by the miner's hotkey is what
    /// authenticates the manifest the validator freezes).
    pub require_signature: bool,
    /// Memory budget of the in-process cache of decoded truth and climatology fields, MiB.
    pub memory_cache_mib: usize,
    /// Disk cache entries older than this are deleted, days.
    pub cache_retention_days: u32,
    /// Read limits of the ERA5 store.
    pub era5_limits: TrustedLimits,
    /// Read limits of the climatology store.
    pub climatology_limits: TrustedLimits,
    /// Largest GRIB message read from the GFS source, MiB (a 0.25° field packs to ~1 MB).
    pub gfs_max_message_mib: u64,
    /// How the ERA5 store is reached when it is `s3://` or `gs://` (anonymous by default).
    pub era5_access: SourceAccess,
    /// How the climatology store is reached.
    pub climatology_access: SourceAccess,
    /// How an `s3://` GFS source is reached (a mirror's endpoint, region, credentials).
    pub gfs_access: SourceAccess,
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
            miner_throughput: MinerThroughput::default(),
            require_signature: true,
            memory_cache_mib: 2048,
            cache_retention_days: 7,
            era5_final_only: false,
            era5_limits: TrustedLimits::default(),
            climatology_limits: TrustedLimits::default(),
            gfs_max_message_mib: wx_data::gfs::MAX_MESSAGE_BYTES >> 20,
            era5_access: SourceAccess::default(),
            climatology_access: SourceAccess::default(),
            gfs_access: SourceAccess::default(),
        }
    }
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        ValidatorConfig {
            database_url: String::new(),
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
/// configuration (the others, e.g. `WX_CONFIG`, are checked by [`crate::env_check`] and read by
/// the programs themselves).
fn config_sections() -> Vec<String> {
    match serde_json::to_value(ValidatorConfig::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Checks that `path` is a readable file, saying what it is otherwise.
fn check_config_file(path: &Path) -> Result<(), ConfigError> {
    let shown = path.display();
    let metadata = std::fs::metadata(path).map_err(|e| {
        ConfigError::Load(match e.kind() {
            std::io::ErrorKind::NotFound => format!("config file {shown} does not exist"),
            _ => format!("cannot read config file {shown}: {e}"),
        })
    })?;
    if metadata.is_dir() {
        return Err(ConfigError::Load(format!(
            "{shown} is a directory, not a config file; give the TOML file itself (e.g. {})",
            path.join("wx.toml").display()
        )));
    }
    std::fs::File::open(path)
        .map(|_| ())
        .map_err(|e| ConfigError::Load(format!("cannot read config file {shown}: {e}")))
}

impl ValidatorConfig {
    /// Defaults, then the TOML file (if given), then `WX_*` environment variables. An unknown
    /// `WX_*` variable is an error naming the closest known one.
    pub fn load(file: Option<&Path>) -> Result<ValidatorConfig, ConfigError> {
        let unknown = crate::env_check::unknown_variables(
            std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()),
        );
        if !unknown.is_empty() {
            let list: Vec<String> = unknown.iter().map(ToString::to_string).collect();
            return Err(ConfigError::Load(format!(
                "{}; WX_* variables are configuration keys (WX_DATABASE_URL, WX_PIPELINE__LEASE_SECONDS, …): fix or unset them",
                list.join("; ")
            )));
        }
        let mut figment = Figment::from(Serialized::defaults(ValidatorConfig::default()));
        if let Some(path) = file {
            check_config_file(path)?;
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

    /// The configuration as stored with a run (`weather_forecast_runs.config_json`) or shown to
    /// an operator: the database password removed.
    pub fn redacted(&self) -> ValidatorConfig {
        ValidatorConfig {
            database_url: wx_store::redact_url(&self.database_url),
            ..self.clone()
        }
    }

    /// The database URL, or an error saying how to give one.
    pub fn require_database_url(&self) -> Result<&str, ConfigError> {
        if self.database_url.trim().is_empty() {
            return Err(ConfigError::Invalid(
                "no database configured: set database_url in the config file, WX_DATABASE_URL, or --database-url (postgres://user@host/db or sqlite:///var/lib/wx/wx.sqlite3)".into(),
            ));
        }
        Ok(&self.database_url)
    }

    /// Checks every section and their consistency.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.database_url.trim().is_empty() {
            wx_store::DbTarget::parse(&self.database_url)
                .map_err(|e| ConfigError::Invalid(format!("database_url: {e}")))?;
        }
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
        self.data.validate()
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

impl DataConfig {
    /// Checks the sources' access settings and limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (section, location, access) in [
            ("era5_access", &self.era5, &self.era5_access),
            (
                "climatology_access",
                &self.climatology,
                &self.climatology_access,
            ),
            ("gfs_access", &self.gfs, &self.gfs_access),
        ] {
            access
                .validate_for(location)
                .map_err(|e| ConfigError::Invalid(format!("data.{section}: {e}")))?;
        }
        self.era5_limits.validate("era5_limits")?;
        self.climatology_limits.validate("climatology_limits")?;
        let t = &self.miner_throughput;
        if t.min_kib_per_second > 0 && t.window_seconds == 0 {
            return Err(ConfigError::Invalid(
                "data.miner_throughput.window_seconds must be at least 1 while \
                 min_kib_per_second is set (set min_kib_per_second = 0 to turn the rule off)"
                    .into(),
            ));
        }
        if self.gfs_max_message_mib == 0 {
            return Err(ConfigError::Invalid(
                "data.gfs_max_message_mib must be positive".into(),
            ));
        }
        Ok(())
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
    fn unknown_keys_in_every_section_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wx.toml");
        for text in [
            "[scoring.day1]\nalpfa = 0.5\n",
            "[scoring.weights]\nlookback = 3\n",
            "[pipeline.retry.\"verify/open_store\"]\nmax_retry = 9\n",
            "[pipeline.concurrency]\nnetwrok = 3\n",
            "[data]\nera_5 = \"x\"\n",
        ] {
            std::fs::write(&path, text).unwrap();
            let e = ValidatorConfig::load(Some(&path)).unwrap_err().to_string();
            assert!(e.contains("unknown field"), "{text}: {e}");
        }
    }

    #[test]
    fn a_directory_is_not_a_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = ValidatorConfig::load(Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a directory, not a config file"), "{e}");
    }

    #[test]
    fn the_database_has_no_default_and_needs_a_scheme() {
        let c = ValidatorConfig::default();
        let e = c.require_database_url().unwrap_err().to_string();
        assert!(e.contains("no database configured"), "{e}");
        let bare = ValidatorConfig {
            database_url: "/var/lib/wx/wx.sqlite3".into(),
            ..ValidatorConfig::default()
        };
        let e = bare.validate().unwrap_err().to_string();
        assert!(e.contains("sqlite://"), "{e}");
        let ok = ValidatorConfig {
            database_url: "postgres://wx:pw@db/wx".into(),
            ..ValidatorConfig::default()
        };
        ok.validate().unwrap();
        assert_eq!(ok.require_database_url().unwrap(), "postgres://wx:pw@db/wx");
        assert_eq!(ok.redacted().database_url, "postgres://wx@db/wx");
    }

    #[test]
    fn source_limits_and_access_are_configurable_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wx.toml");
        std::fs::write(
            &path,
            "[data]\nera5 = \"s3://mirror/era5.zarr\"\nera5_final_only = true\n\
             gfs = \"s3://gfs-mirror/noaa\"\n\
             [data.era5_limits]\nchunk_mib = 300\n\
             [data.era5_access]\ncredentials = \"environment\"\nendpoint = \"https://s3.example.net\"\n\
             [data.era5_access.options]\naws_virtual_hosted_style_request = \"false\"\n\
             [data.gfs_access]\nendpoint = \"http://127.0.0.1:9000\"\n",
        )
        .unwrap();
        let c = ValidatorConfig::load(Some(&path)).unwrap();
        assert!(c.data.era5_final_only);
        assert_eq!(c.data.era5_limits.chunk_mib, 300);
        assert_eq!(
            c.data.era5_limits.metadata_mib, 64,
            "unnamed limits keep their defaults"
        );
        assert_eq!(
            c.data.era5_limits.read_options("era5").max_chunk_bytes,
            300 << 20
        );
        assert_eq!(
            c.data.era5_access.credentials,
            wx_data::transport::Credentials::Environment
        );
        assert_eq!(
            ValidatorConfig::default()
                .data
                .era5_limits
                .read_options("era5")
                .max_chunk_bytes,
            256 << 20,
            "the default fits a 146.5 MiB ARCO-ERA5 chunk"
        );
        // a secret in the file is refused: the configuration is stored with every run
        std::fs::write(
            &path,
            "[data]\nera5 = \"s3://mirror/era5.zarr\"\n\
             [data.era5_access.options]\naws_secret_access_key = \"hunter2\"\n",
        )
        .unwrap();
        let e = ValidatorConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("environment") && !e.contains("hunter2"), "{e}");
        // access settings for a local path make no sense
        std::fs::write(
            &path,
            "[data]\nera5 = \"/data/era5.zarr\"\n[data.era5_access]\nregion = \"eu-west-1\"\n",
        )
        .unwrap();
        assert!(ValidatorConfig::load(Some(&path)).is_err());
    }

    #[test]
    fn the_run_snapshot_holds_no_database_password() {
        let c = ValidatorConfig {
            database_url: "postgres://wx:s3cret@db:5432/wx".into(),
            ..ValidatorConfig::default()
        };
        let json = serde_json::to_string(&c.redacted()).unwrap();
        assert!(!json.contains("s3cret"), "{json}");
        assert!(json.contains("postgres://wx@db:5432/wx"), "{json}");
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
