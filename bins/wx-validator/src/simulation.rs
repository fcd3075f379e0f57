//! A simulated deployment: a generated world (ERA5, climatology, GFS) and a network of
//! simulated miners on 127.0.0.1, wired to a validator configuration in test mode. The demo,
//! `wx-validator simulate` ([`crate::simulate`]), the end-to-end tests and the multi-process
//! tests run the real daemon against it; [`Simulation::write_files`] writes the `miners.json`
//! and `wx.toml` that `wx-validator` processes take.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;
use wx_model::RunId;
use wx_sim::{MinerNetwork, NetworkOptions, World, WorldSpec};
use wx_steps::ValidatorConfig;
use wx_store::{Db, MinerRecord};

/// A running simulated world.
pub struct Simulation {
    /// The generated world.
    pub world: World,
    /// The miners' servers.
    pub network: MinerNetwork,
    /// A validator configuration pointing at the world (test mode, the world's init).
    pub config: ValidatorConfig,
}

impl Simulation {
    /// Generates the world under `dir/world` (or reloads it when `dir/world` already holds the
    /// world of `spec`), starts the miners and builds the configuration (database
    /// `database_url`, possibly empty; cache under `dir/cache`).
    pub async fn start(spec: WorldSpec, dir: &Path, database_url: &str) -> Result<Simulation> {
        let world = World::load_or_generate(spec, dir.join("world"))
            .await
            .context("generating the simulated world")?;
        let network = MinerNetwork::start(&world, NetworkOptions::default())
            .await
            .context("starting the simulated miners")?;
        let config = config_for(&world, dir.join("cache"), database_url);
        Ok(Simulation {
            world,
            network,
            config,
        })
    }

    /// The miners as registry records.
    pub fn miner_records(&self) -> Vec<MinerRecord> {
        registry_records(&self.network)
    }

    /// Imports the miners into the registry.
    pub async fn import_miners(&self, db: &Db) -> Result<()> {
        db.miners()
            .import(&self.miner_records(), chrono::Utc::now())
            .await?;
        Ok(())
    }

    /// The registry import file: a JSON list of `{uid, hotkey, store_url, access_token}`, as
    /// `wx-validator miners import` reads it.
    pub fn miners_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(&self.miner_records())?)
    }

    /// The configuration as a `wx.toml` (test mode, the world's init, its truth sources as
    /// local paths, loopback miners allowed). An empty `database_url` is left out, for the
    /// operator (`--database-url` or `WX_DATABASE_URL`).
    pub fn config_toml(&self) -> Result<String> {
        let body = toml::to_string(&self.config).context("serialising the configuration")?;
        let body: String = body
            .lines()
            .filter(|l| *l != "database_url = \"\"")
            .map(|l| format!("{l}\n"))
            .collect();
        Ok(format!(
            "# Written by wx-validator simulate for the simulated world of seed {} ({} miners, {}°).\n\
             # Test mode: the run scores the world's GFS init; ERA5, climatology and GFS are the\n\
             # world's local files. The miners' ports change with every start of the simulation:\n\
             # import miners.json again after a restart.\n{body}",
            self.world.spec.seed,
            self.world.spec.miners.len(),
            self.world.spec.resolution_deg,
        ))
    }

    /// Writes [`Self::miners_json`] to `dir/miners.json` and [`Self::config_toml`] to
    /// `dir/wx.toml` (each written to a temporary name and renamed); returns both paths.
    pub fn write_files(&self, dir: &Path) -> Result<(PathBuf, PathBuf)> {
        let write = |name: &str, text: String| -> Result<PathBuf> {
            let path = dir.join(name);
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
            // miners.json holds the miners' tokens
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("restricting {}", tmp.display()))?;
            }
            std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        };
        Ok((
            write("miners.json", self.miners_json()?)?,
            write("wx.toml", self.config_toml()?)?,
        ))
    }

    /// Stops the miners' servers.
    pub async fn shutdown(self) {
        self.network.shutdown().await;
    }
}

/// The registry records of a simulated network's miners (what `miners import` would read).
pub fn registry_records(network: &MinerNetwork) -> Vec<MinerRecord> {
    network
        .endpoints()
        .iter()
        .map(|m| MinerRecord {
            uid: i64::from(m.uid),
            hotkey: m.hotkey.clone(),
            store_url: m.store_url.clone(),
            access_token: m.access_token.clone(),
        })
        .collect()
}

/// The test-mode configuration of a validator scoring `world`.
pub fn config_for(world: &World, cache_dir: PathBuf, database_url: &str) -> ValidatorConfig {
    let mut c = ValidatorConfig {
        database_url: database_url.to_owned(),
        cache_dir,
        ..ValidatorConfig::default()
    };
    let p = &mut c.pipeline;
    p.test_mode = true;
    p.test_gfs_init = Some(world.spec.gfs_init);
    p.test_retry_base_delay_seconds = 1;
    p.test_run_interval_minutes = 1;
    p.test_era5_delay_hours = 0;
    // a lead due but not published yet is looked at again every second
    p.test_era5_recheck_seconds = 1;
    p.lease_seconds = 20;
    p.heartbeat_seconds = 4;
    p.snapshot_interval_minutes = 1;
    // few retries keep a dead miner's failure quick; the flaky one needs at least one
    for kind in ["verify/open_store", "day1/score", "era5/score"] {
        let mut policy = p.retry_policy(
            wx_model::StepKind::from_names(
                kind.split('/').next().unwrap_or(""),
                kind.split('/').nth(1).unwrap_or(""),
            )
            .expect("known kind"),
        );
        policy.max_retries = 2;
        policy.retry_delay_seconds = 1;
        p.retry.insert(kind.to_owned(), policy);
    }
    c.scoring.day1.leads = world.spec.day1_leads.clone();
    c.scoring.era5.leads = world.spec.era5_leads.clone();
    c.data.gfs = world.paths.gfs.display().to_string();
    c.data.era5 = world.paths.era5.display().to_string();
    c.data.climatology = world.paths.climatology.display().to_string();
    c.data.allow_loopback_miners = true;
    c.data.allow_plain_http_miners = true;
    c
}

/// Waits until `run` (or, with `None`, the first run) is completed; returns its id.
pub async fn wait_for_completion(db: &Db, run: Option<RunId>, timeout: Duration) -> Result<RunId> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let row = match run {
            Some(r) => db.runs().get(r).await?,
            None => db.runs().latest().await?,
        };
        if let Some(row) = &row
            && matches!(
                row.status(),
                Ok(wx_model::RunStatus::Completed | wx_model::RunStatus::Failed)
            )
        {
            return Ok(RunId(row.id));
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the run did not complete within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until a subnet snapshot taken at or after `run` completed exists (the completion wakes
/// the run's snapshot step, or re-arms it if it was running); returns it. A snapshot's
/// `taken_at` is its claim's start and the run's `completed_at` is stamped once the completing
/// transaction holds the snapshot's row, so such a snapshot read the run's final scores; one
/// claimed earlier (stale) has an earlier `taken_at` and is not trusted.
pub async fn wait_for_final_snapshot(
    db: &Db,
    run: RunId,
    timeout: Duration,
) -> Result<wx_model::rows::SnapshotRow> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let completed = db.runs().get(run).await?.and_then(|r| r.completed_at);
        if let (Some(done), Some(snap)) = (completed, db.snapshots().latest().await?)
            && snap.taken_at >= done
        {
            return Ok(snap);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no snapshot followed the completion of run {run} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
