//! A per-step harness: one simulated world (ERA5 published day by day), its miners served on
//! 127.0.0.1, a test database (SQLite or PostgreSQL) and a pipeline on an injected clock, so a
//! test can claim one step, run its function directly or through the pipeline, and record the
//! completion as the scheduler would.

use chrono::{Duration, NaiveDate};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use wx_model::rows::{ScoreRow, StatsRow};
use wx_model::{
    Clock, ForecastStatus, MinerUid, OffsetClock, RetryPolicy, RunId, StepKey, StepKind,
};
use wx_sim::{
    Behaviour, Era5Publication, Era5Publisher, MinerNetwork, MinerSpec, NetworkOptions, World,
    WorldSpec,
};
use wx_steps::context::StepContext;
use wx_steps::wrapper::{self, StepResult};
use wx_steps::{Pipeline, RunCreation, ValidatorConfig};
use wx_store::testing::TestDb;
use wx_store::{Claim, Completion, Fence, KeyClaim, MinerRecord, Outcome};

/// The lease of every claim.
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// Seconds a due lead may stay unpublished before it is given up (test mode).
pub const GIVE_UP_SECONDS: u32 = 3600;

/// The miner every test scores: skilled, reaches Day1 and ERA5.
pub const MINER: u16 = 1;

/// A calendar day.
pub fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// One test's world, database and pipeline.
pub struct Harness {
    /// The database (SQLite file or PostgreSQL database of its own).
    pub t: TestDb,
    /// The pipeline under test.
    pub pipeline: Pipeline,
    /// Its clock.
    pub clock: Arc<OffsetClock>,
    /// The generated world (init 2025-01-01T00Z; ERA5 leads 24 and 48 h, valid on 2025-01-02
    /// and 2025-01-03).
    pub world: World,
    /// The miners' servers.
    pub network: MinerNetwork,
    /// Publishes the world's ERA5 day by day.
    pub publisher: Era5Publisher,
    /// The run, seeded.
    pub run: RunId,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// A world with `miners` whose ERA5 is published through 2025-01-01 (no ERA5 lead yet),
    /// a test-mode pipeline over it whose scoring steps have `max_retries` retries, the
    /// miners imported and a run seeded.
    pub async fn start(t: TestDb, miners: Vec<MinerSpec>, max_retries: u32) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let spec = WorldSpec {
            era5_publication: Era5Publication::Progressive {
                published_through: day("2025-01-01"),
                padding_days: 2,
            },
            miners,
            ..WorldSpec::small(1)
        };
        let world = World::generate(spec, dir.path().join("world"))
            .await
            .unwrap();
        let network = MinerNetwork::start(&world, NetworkOptions::default())
            .await
            .unwrap();
        let publisher = world.era5_publisher().unwrap();
        let config = config_for(&world, dir.path(), max_retries);
        let clock = Arc::new(OffsetClock::new());
        let data = Arc::new(
            wx_steps::DataHub::new(&config.data, &config.cache_dir, config.pipeline.test_mode)
                .unwrap(),
        );
        let pipeline = Pipeline::new(t.db.clone(), config, clock.clone(), data).unwrap();
        let records: Vec<MinerRecord> = network
            .endpoints()
            .iter()
            .map(|m| MinerRecord {
                uid: i64::from(m.uid),
                hotkey: m.hotkey.clone(),
                store_url: m.store_url.clone(),
                access_token: m.access_token.clone(),
            })
            .collect();
        t.db.miners().import(&records, clock.now()).await.unwrap();
        let RunCreation::Created(run) = pipeline.ensure_run().await.unwrap() else {
            panic!("a new run");
        };
        let mut h = Harness {
            t,
            pipeline,
            clock,
            world,
            network,
            publisher,
            run,
            _dir: dir,
        };
        for kind in [StepKind::SeedStatsRows, StepKind::SeedStepsRows] {
            let outcome = h.run_step(StepKey::run_level(run, kind)).await;
            assert_eq!(outcome, Outcome::Succeeded, "{kind}");
        }
        h.run = run;
        h
    }

    /// The step context of the pipeline.
    pub fn ctx(&self) -> &StepContext {
        self.pipeline.context()
    }

    /// The key of a miner step of the run.
    pub fn key(&self, uid: u16, kind: StepKind) -> StepKey {
        StepKey::miner(self.run, MinerUid::new(uid as u8), kind)
    }

    /// Claims `key`; it must be due (no force: attempts are kept).
    pub async fn claim(&self, key: StepKey) -> Claim {
        self.claim_key(key, false).await
    }

    /// Claims `key` whether or not it is due (a waiting snapshot), attempts reset.
    pub async fn claim_forced(&self, key: StepKey) -> Claim {
        self.claim_key(key, true).await
    }

    /// Records `completion` of `claim`, fenced, as the scheduler does.
    pub async fn finish(&self, claim: &Claim, completion: &Completion) {
        let fence = self
            .t
            .db
            .queue()
            .finish(claim, completion, self.clock.now())
            .await
            .unwrap();
        assert_eq!(fence, Fence::Applied);
    }

    async fn claim_key(&self, key: StepKey, force: bool) -> Claim {
        match self
            .t
            .db
            .queue()
            .claim_key(&key, "test", LEASE, self.clock.now(), force)
            .await
            .unwrap()
        {
            KeyClaim::Claimed(claim) => claim,
            other => panic!("{key} cannot be claimed: {other:?}"),
        }
    }

    /// Turns the result of a step function run directly into its completion (the kind's retry
    /// policy, as the pipeline applies it, without the pipeline's bookkeeping) and records it.
    pub async fn record(&self, claim: &Claim, result: StepResult) -> Completion {
        let policy = self.pipeline.retry_policy(claim.key.kind);
        let mut rng = StdRng::seed_from_u64(7);
        let completion = wrapper::complete(claim, &policy, result, self.clock.now(), &mut rng);
        self.finish(claim, &completion).await;
        completion
    }

    /// Claims `key`, runs it through the pipeline (retry policy, bookkeeping) and records the
    /// completion; returns its outcome.
    pub async fn run_step(&self, key: StepKey) -> Outcome {
        let claim = self.claim(key).await;
        let completion = self
            .pipeline
            .run(claim.clone(), CancellationToken::new())
            .await;
        self.finish(&claim, &completion).await;
        completion.outcome
    }

    /// Runs the miner's verification and Day1 steps; both must succeed (the ERA5 step is then
    /// enqueued).
    pub async fn verify_and_day1(&self, uid: u16) {
        let verify = self
            .run_step(self.key(uid, StepKind::VerifyOpenStore))
            .await;
        assert_eq!(verify, Outcome::Succeeded, "verify");
        let day1 = self.run_step(self.key(uid, StepKind::Day1Score)).await;
        assert_eq!(day1, Outcome::Succeeded, "day1");
    }

    /// The miner's forecast status.
    pub async fn status(&self, uid: u16) -> ForecastStatus {
        self.stats(uid).await.status().unwrap()
    }

    /// The miner's stats row.
    pub async fn stats(&self, uid: u16) -> StatsRow {
        self.t
            .db
            .stats()
            .get(self.run, MinerUid::new(uid as u8))
            .await
            .unwrap()
            .unwrap()
    }

    /// The miner's stored scores.
    pub async fn scores(&self, uid: u16) -> Vec<ScoreRow> {
        self.t
            .db
            .scores()
            .list_miner(self.run, MinerUid::new(uid as u8))
            .await
            .unwrap()
    }

    /// The leads with a stored ERA5 lead score of the miner, with their bits.
    pub async fn lead_scores(&self, uid: u16) -> Vec<(i32, u64)> {
        let mut out: Vec<(i32, u64)> = self
            .scores(uid)
            .await
            .into_iter()
            .filter(|s| s.score_type == wx_model::score_type::ERA5_LEAD_SCORE)
            .filter_map(|s| Some((s.lead_hours, s.score?.to_bits())))
            .collect();
        out.sort();
        out
    }

    /// The leads of the run recorded unavailable for lack of ERA5, ascending, with their reasons.
    pub async fn unavailable_leads(&self) -> Vec<(i32, String)> {
        let mut out: Vec<(i32, String)> = self
            .t
            .db
            .unavailable_leads()
            .list(self.run, wx_store::ERA5_SOURCE)
            .await
            .unwrap()
            .into_iter()
            .map(|u| (u.lead_hours, u.reason))
            .collect();
        out.sort();
        out
    }

    /// Moves the clock past the give-up time of every due lead.
    pub fn pass_give_up(&self) {
        self.clock
            .advance(Duration::seconds(i64::from(GIVE_UP_SECONDS) + 60));
    }

    /// Publishes ERA5 through `day` (a day of 2025-01).
    pub fn publish_through(&self, day_text: &str) {
        assert!(self.publisher.publish_through(day(day_text)).unwrap());
    }

    /// Answers every chunk of `variable` (its directory in the store, e.g. `2t`) of miner
    /// `uid` with `status`; returns how many chunks.
    pub fn fail_chunks(&self, uid: u16, variable: &str, status: u16) -> usize {
        let miner = self.world.miner(uid).unwrap();
        let dir = miner.store_dir.clone().unwrap().join(variable);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.starts_with(|c: char| c.is_ascii_digit()) {
                let key = format!("{variable}/{name}");
                assert!(
                    self.network
                        .set_fault(uid, &key, wx_testkit::Fault::Status(status))
                );
                n += 1;
            }
        }
        assert!(n > 0, "no chunk of {variable} in {}", dir.display());
        n
    }
}

/// A skilled miner at `uid`.
pub fn skilled(uid: u16) -> MinerSpec {
    skilled_with(uid, 0.5)
}

/// A skilled miner at `uid` whose error is scaled by `error_scale` (0.25 excellent, 2 poor).
pub fn skilled_with(uid: u16, error_scale: f64) -> MinerSpec {
    MinerSpec {
        uid,
        behaviour: Behaviour::Skilled { error_scale },
    }
}

/// The test-mode configuration of a validator scoring `world` (as the simulation's, with a
/// give-up time the tests pass by moving the clock).
fn config_for(world: &World, dir: &std::path::Path, max_retries: u32) -> ValidatorConfig {
    let mut c = ValidatorConfig {
        cache_dir: dir.join("cache"),
        ..ValidatorConfig::default()
    };
    let p = &mut c.pipeline;
    p.test_mode = true;
    p.test_gfs_init = Some(world.spec.gfs_init);
    p.test_retry_base_delay_seconds = 1;
    p.test_era5_delay_hours = 0;
    p.test_era5_recheck_seconds = 1;
    p.test_era5_give_up_seconds = GIVE_UP_SECONDS;
    for kind in [StepKind::Day1Score, StepKind::Era5Score] {
        let policy = RetryPolicy {
            max_retries,
            retry_delay_seconds: 1,
            ..p.retry_policy(kind)
        };
        p.retry.insert(kind.path(), policy);
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
