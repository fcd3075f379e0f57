//! Real `wx-validator run` processes against a simulated network served by the same code as
//! `wx-validator simulate` (`Simulation` + `write_files`: `miners.json`, `wx.toml`), on
//! PostgreSQL only — it is about several processes sharing one database, and one database
//! going away:
//!
//! 1. a fault-free reference run: one daemon, to completion and the final snapshot;
//! 2. three daemons on a fresh database, one of them SIGKILLed at random (seeded; the seed is
//!    printed, `PROCESSES_TEST_SEED` replays it) every 1–3 s and restarted, until the run is
//!    complete and its final snapshot taken (at most [`MAX_KILLS`] kills, the first once the
//!    flaky miner's first verify attempt has failed, see `flaky_failed_once`);
//! 3. one daemon on a private PostgreSQL cluster that is stopped mid-run for longer than a lease
//!    (once something is scored and the flaky miner's first attempt has failed), then started
//!    again.
//!
//! Runs 2 and 3 must end with the five result sets of run 1 (scores, stats, the subnet
//! snapshot, miner_stats, responses; ids, timestamps and latencies normalised away), no
//! duplicate step key, no claim left, attempts within the retry policies, lost leases recorded
//! where kills hit in-flight work, no deadlock, and a daemon that survived the outage with a
//! bounded log. The figures (kills, reclaim times, deadlocks, outage warnings) are printed.
//! One test function: the phases share the world and the reference run, and run one after
//! the other so that the CI machine's two cores are not shared between them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wx_model::RunId;
use wx_model::rows::{SnapshotRow, StepRow};
use wx_sim::WorldSpec;
use wx_store::Db;
use wx_store::testing::TestDb;
use wx_store::testing::cluster::{ClusterSetup, PrivateCluster};
use wx_validator::simulation::Simulation;

const BIN: &str = env!("CARGO_BIN_EXE_wx-validator");
/// Lease of the daemons under test: short, so that killed work is reclaimed quickly.
const LEASE_SECONDS: u32 = 6;
/// Daemons in the kill phase.
const DAEMONS: usize = 3;
/// Most kills of one kill phase: each kill of a step holder costs about a lease before the
/// step runs again, so unbounded kills on a loaded machine (a slow run, many kills) could take
/// the phase to minutes; after this many the run finishes undisturbed.
const MAX_KILLS: usize = 20;
/// Lost leases a step may suffer before it fails for good: high enough that the random kills,
/// not the budget, are what the test exercises (the budget has tests of its own in wx-store).
const MAX_LEASE_LOSSES: u32 = 25;

/// splitmix64: a seeded RNG for the kill schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// One `wx-validator run` process.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn spawn(config: &Path, url: &str, log: &Path) -> Daemon {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(BIN)
            .arg("--config")
            .arg(config)
            .arg("--database-url")
            .arg(url)
            .arg("run")
            .env_remove("PROCESSES_TEST_SEED")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start wx-validator run");
        Daemon {
            child,
            log: log.to_owned(),
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `claimed_by` of its claims ends with this (`host:pid`).
    fn worker_suffix(&self) -> String {
        format!(":{}", self.child.id())
    }

    /// Panics with its log if it has exited.
    fn assert_alive(&mut self, what: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "{what}: wx-validator run exited ({status}):\n{}",
                self.log_text()
            );
        }
    }

    fn sigkill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for a clean exit.
    async fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "a stopped daemon exits 0 ({status}):\n{}",
                    self.log_text()
                );
                return;
            }
            if Instant::now() > deadline {
                self.sigkill();
                panic!("the daemon did not stop within 90 s:\n{}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Runs a `wx-validator` command to success.
fn cli(config: &Path, url: &str, args: &[&str]) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("--database-url")
        .arg(url)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "wx-validator {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The five result sets of a run, normalised: ids, timestamps, latencies and claim columns
/// left out, keyed by their natural keys.
#[derive(Debug, PartialEq)]
struct ResultSets {
    scores: BTreeMap<String, Value>,
    stats: BTreeMap<i32, Value>,
    snapshot: Value,
    miner_stats: BTreeMap<i32, Value>,
    responses: BTreeMap<i32, Value>,
}

fn normalised(row: &impl Serialize, drop: &[&str]) -> Value {
    let mut v = serde_json::to_value(row).unwrap();
    let map = v.as_object_mut().expect("a row is an object");
    for key in drop {
        assert!(map.remove(*key).is_some(), "no column {key}");
    }
    v
}

async fn result_sets(db: &Db, run: RunId, snapshot: &SnapshotRow) -> ResultSets {
    let scores = db
        .scores()
        .list_run(run)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                format!(
                    "{}/{}/{}/{}/{}",
                    s.miner_uid, s.score_type, s.variable, s.level, s.lead_hours
                ),
                normalised(&s, &["id", "run_id", "calculated_at"]),
            )
        })
        .collect();
    let stats = db
        .stats()
        .list(run)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.miner_uid,
                normalised(&s, &["id", "run_id", "updated_at", "hosting_latency_ms"]),
            )
        })
        .collect();
    let miner_stats = db
        .miner_stats()
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.uid,
                normalised(
                    &s,
                    &[
                        "updated_at",
                        "first_seen",
                        "last_active",
                        "avg_hosting_latency_ms",
                    ],
                ),
            )
        })
        .collect();
    let responses = db
        .responses()
        .list(run)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.miner_uid,
                normalised(
                    &r,
                    &[
                        "id",
                        "run_id",
                        "verified_at",
                        "manifest_frozen_at",
                        "updated_at",
                        "hosting_latency_ms",
                    ],
                ),
            )
        })
        .collect();
    ResultSets {
        scores,
        stats,
        snapshot: normalised(snapshot, &["id", "taken_at"]),
        miner_stats,
        responses,
    }
}

/// The differences between two result sets, one line each (at most 20).
fn differences(expected: &ResultSets, got: &ResultSets) -> Vec<String> {
    fn maps<K: Ord + std::fmt::Debug>(
        set: &str,
        a: &BTreeMap<K, Value>,
        b: &BTreeMap<K, Value>,
        out: &mut Vec<String>,
    ) {
        let keys: BTreeSet<&K> = a.keys().chain(b.keys()).collect();
        for k in keys {
            if a.get(k) != b.get(k) {
                out.push(format!(
                    "{set} {k:?}: expected {:?}, got {:?}",
                    a.get(k),
                    b.get(k)
                ));
            }
        }
    }
    let mut out = Vec::new();
    maps("scores", &expected.scores, &got.scores, &mut out);
    maps("stats", &expected.stats, &got.stats, &mut out);
    maps(
        "miner_stats",
        &expected.miner_stats,
        &got.miner_stats,
        &mut out,
    );
    maps("responses", &expected.responses, &got.responses, &mut out);
    if expected.snapshot != got.snapshot {
        out.push(format!(
            "snapshot: expected {}, got {}",
            expected.snapshot, got.snapshot
        ));
    }
    out.truncate(20);
    out
}

/// The run, once it is completed and a snapshot taken at or after its completion exists (the
/// rule of `simulation::wait_for_final_snapshot`: a snapshot claimed before the completion is
/// stale and not trusted).
async fn final_snapshot(db: &Db) -> Option<(RunId, SnapshotRow)> {
    let run = db.runs().latest().await.ok()??;
    let done = run.completed_at?;
    let snap = db.snapshots().latest().await.ok()??;
    (snap.taken_at >= done).then_some((RunId(run.id), snap))
}

/// Waits for [`final_snapshot`] while `daemons` stay alive.
async fn wait_final(db: &Db, daemons: &mut [Daemon], timeout: Duration) -> (RunId, SnapshotRow) {
    let deadline = Instant::now() + timeout;
    loop {
        for d in daemons.iter_mut() {
            d.assert_alive("before the run completed");
        }
        if let Some(done) = final_snapshot(db).await {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "the run and its final snapshot did not complete within {timeout:?}:\n{}",
            daemons[0].log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The checks on a finished run's step rows that hold whatever happened to its processes.
fn check_steps(steps: &[StepRow], what: &str) {
    let keys: BTreeSet<_> = steps
        .iter()
        .map(|s| {
            (
                s.miner_uid,
                s.step_name.clone(),
                s.substep.clone(),
                s.lead_hours,
            )
        })
        .collect();
    assert_eq!(keys.len(), steps.len(), "{what}: a step key is duplicated");
    for s in steps {
        assert!(
            s.status != "in_progress" && s.claim_token.is_none() && s.lease_expires_at.is_none(),
            "{what}: a claim is left behind: {s:?}"
        );
        assert!(
            s.attempt <= s.max_retries + 1,
            "{what}: more attempts than the retry policy allows: {s:?}"
        );
        assert!(
            s.lease_losses >= 0 && s.lease_losses as u32 <= MAX_LEASE_LOSSES,
            "{what}: lease losses out of bounds: {s:?}"
        );
    }
}

/// `pg_stat_database.deadlocks` of the database of `t`.
async fn deadlocks(t: &TestDb) -> i64 {
    t.raw()
        .await
        .number(
            "SELECT COALESCE(SUM(deadlocks), 0)::BIGINT AS n FROM pg_stat_database \
             WHERE datname = current_database()",
        )
        .await
        .unwrap()
}

/// A step in flight when its process was killed, as it was then.
struct InFlight {
    id: i64,
    attempt: i32,
    lease_losses: i32,
}

/// A kill: when, whose claims, and what it had in flight.
struct Kill {
    at: DateTime<Utc>,
    worker: String,
    in_flight: Vec<InFlight>,
}

/// What became of a step in flight at a kill.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    /// Its lost lease was recorded (the rescuer took it over); seconds from the kill to the
    /// takeover (the rescue, or the next claim when that is what the poll saw first).
    Reclaimed(f64),
    /// The killed process's last transaction had reached the server and committed: the step
    /// finished, or its failure consumed an attempt.
    Landed,
}

/// The fate of `f` (killed with `kill`) as its row `row` shows it, if settled.
fn fate(kill: &Kill, f: &InFlight, row: &StepRow) -> Option<Fate> {
    if row.lease_losses > f.lease_losses {
        let at = if row.claimed_by.as_deref() == Some(kill.worker.as_str()) {
            row.updated_at
        } else {
            row.started_at.unwrap_or(row.updated_at)
        };
        return Some(Fate::Reclaimed(
            (at.and_utc() - kill.at).as_seconds_f64().max(0.0),
        ));
    }
    let moved = row.attempt > f.attempt || row.status != "in_progress";
    let by_killed = row.claimed_by.as_deref() == Some(kill.worker.as_str());
    (moved && (by_killed || row.attempt > f.attempt)).then_some(Fate::Landed)
}

async fn run_steps(db: &Db) -> Vec<StepRow> {
    match db.runs().latest().await.unwrap() {
        Some(r) => db.steps().list_run(RunId(r.id)).await.unwrap(),
        None => Vec::new(),
    }
}

/// Phase 1: one daemon, no fault; the reference result sets.
async fn reference_run(dir: &Path, config: &Path, miners: &Path) -> ResultSets {
    let t = TestDb::postgres().await;
    cli(
        config,
        t.url(),
        &["miners", "import", miners.to_str().unwrap()],
    );
    let started = Instant::now();
    let mut daemons = vec![Daemon::spawn(config, t.url(), &dir.join("reference.log"))];
    let (run, snap) = wait_final(&t.db, &mut daemons, Duration::from_secs(300)).await;
    let sets = result_sets(&t.db, run, &snap).await;
    for d in daemons {
        d.stop().await;
    }
    check_steps(&t.db.steps().list_run(run).await.unwrap(), "reference");
    eprintln!(
        "processes: reference run {:.1} s, {} scores",
        started.elapsed().as_secs_f64(),
        sets.scores.len()
    );
    sets
}

/// Whether each flaky miner's first verify attempt has ended and been recorded. Until then a
/// fault (a kill, a database outage) can lose that attempt's completion: the redone attempt
/// then finds the miner's 503s used up and passes at once, so the run records no failure for
/// it — the network answering differently, not the validator deciding differently.
fn flaky_failed_once(steps: &[StepRow], flaky: &[i32]) -> bool {
    flaky.iter().all(|uid| {
        steps.iter().any(|s| {
            s.miner_uid == *uid
                && s.step_name == "verify"
                && s.substep == "open_store"
                && (s.attempt >= 1 || s.status == "succeeded" || s.status == "failed")
        })
    })
}

/// Phase 2: three daemons, SIGKILLed at random and restarted.
///
/// The flaky miner's fault counts requests (its first `requests_per_attempt` are answered 503):
/// a kill during its first verify attempt would use some of them up, and the next attempt
/// would pass at once — the network answering differently, not the validator deciding
/// differently. So the first kill waits until that first attempt's failure is recorded.
async fn killed_daemons(
    dir: &Path,
    config: &Path,
    miners: &Path,
    flaky: &[i32],
    reference: &ResultSets,
) {
    let seed = std::env::var("PROCESSES_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("processes: kill schedule seed {seed} (replay with PROCESSES_TEST_SEED={seed})");
    let mut rng = Rng(seed);
    let t = TestDb::postgres().await;
    cli(
        config,
        t.url(),
        &["miners", "import", miners.to_str().unwrap()],
    );
    let deadlocks_before = deadlocks(&t).await;
    let started = Instant::now();
    let log = |i: usize| dir.join(format!("daemon-{i}.log"));
    let mut daemons: Vec<Daemon> = (0..DAEMONS)
        .map(|i| Daemon::spawn(config, t.url(), &log(i)))
        .collect();
    let mut kills: Vec<Kill> = Vec::new();
    // (kill index, step id) → what became of it
    let mut fates: BTreeMap<(usize, i64), Fate> = BTreeMap::new();
    let mut next_kill = Instant::now() + Duration::from_millis(rng.range(1000, 3000));
    let deadline = Instant::now() + Duration::from_secs(400);
    let (run, snap) = loop {
        for d in daemons.iter_mut() {
            d.assert_alive("during the kill phase");
        }
        let steps = run_steps(&t.db).await;
        for (k, kill) in kills.iter().enumerate() {
            for f in &kill.in_flight {
                if fates.contains_key(&(k, f.id)) {
                    continue;
                }
                if let Some(row) = steps.iter().find(|s| s.id == f.id)
                    && let Some(fate) = fate(kill, f, row)
                {
                    fates.insert((k, f.id), fate);
                }
            }
        }
        if let Some(done) = final_snapshot(&t.db).await {
            break done;
        }
        if flaky_failed_once(&steps, flaky)
            && kills.len() < MAX_KILLS
            && Instant::now() >= next_kill
        {
            let i = rng.range(0, DAEMONS as u64) as usize;
            let suffix = daemons[i].worker_suffix();
            daemons[i].sigkill();
            let at = Utc::now();
            let in_flight: Vec<StepRow> = run_steps(&t.db)
                .await
                .into_iter()
                .filter(|s| {
                    s.status == "in_progress"
                        && s.claimed_by
                            .as_deref()
                            .is_some_and(|w| w.ends_with(&suffix))
                })
                .collect();
            let worker = in_flight
                .first()
                .and_then(|s| s.claimed_by.clone())
                .unwrap_or_default();
            eprintln!(
                "processes: {:>5.1} s: SIGKILL daemon {i} ({worker}{}) with {} steps in flight: {:?}",
                started.elapsed().as_secs_f64(),
                if worker.is_empty() {
                    suffix.as_str()
                } else {
                    ""
                },
                in_flight.len(),
                in_flight
                    .iter()
                    .map(|s| format!(
                        "{}/{}/{}/{}",
                        s.miner_uid, s.step_name, s.substep, s.lead_hours
                    ))
                    .collect::<Vec<_>>()
            );
            kills.push(Kill {
                at,
                worker,
                in_flight: in_flight
                    .iter()
                    .map(|s| InFlight {
                        id: s.id,
                        attempt: s.attempt,
                        lease_losses: s.lease_losses,
                    })
                    .collect(),
            });
            daemons[i] = Daemon::spawn(config, t.url(), &log(i));
            next_kill = Instant::now() + Duration::from_millis(rng.range(1000, 3000));
        }
        assert!(
            Instant::now() < deadline,
            "the run did not complete within 400 s despite restarts ({} kills)",
            kills.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let run_secs = started.elapsed().as_secs_f64();
    let sets = result_sets(&t.db, run, &snap).await;
    let diff = differences(reference, &sets);
    assert!(
        diff.is_empty(),
        "the killed run's results differ from the fault-free run (seed {seed}):\n{}",
        diff.join("\n")
    );

    // the survivors take over what the last kills left (the periodic snapshot), then stop
    let killed: usize = kills.iter().map(|k| k.in_flight.len()).sum();
    let settle = Instant::now() + Duration::from_secs(60);
    loop {
        let steps = t.db.steps().list_run(run).await.unwrap();
        let dead_claims = steps.iter().any(|s| {
            s.status == "in_progress"
                && kills
                    .iter()
                    .any(|k| !k.worker.is_empty() && s.claimed_by.as_deref() == Some(&k.worker))
        });
        if !dead_claims {
            break;
        }
        assert!(
            Instant::now() < settle,
            "a killed daemon's claim was not taken over within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for d in daemons {
        d.stop().await;
    }
    let steps = t.db.steps().list_run(run).await.unwrap();
    check_steps(&steps, "killed run");
    for (k, kill) in kills.iter().enumerate() {
        for f in &kill.in_flight {
            let row = steps.iter().find(|s| s.id == f.id).unwrap();
            if !fates.contains_key(&(k, f.id))
                && let Some(fate) = fate(kill, f, row)
            {
                fates.insert((k, f.id), fate);
            }
            assert!(
                fates.contains_key(&(k, f.id)),
                "a step in flight at a kill has neither a lost lease recorded nor the killed \
                 process's last write: {row:?}"
            );
        }
    }
    let losses: i64 = steps.iter().map(|s| i64::from(s.lease_losses)).sum();
    // PostgreSQL reports a backend's counters when it ends; the daemons have stopped
    tokio::time::sleep(Duration::from_secs(2)).await;
    let deadlocks_after = deadlocks(&t).await;
    let mut times: Vec<f64> = fates
        .values()
        .filter_map(|f| match f {
            Fate::Reclaimed(secs) => Some(*secs),
            Fate::Landed => None,
        })
        .collect();
    let landed = fates.len() - times.len();
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    eprintln!(
        "processes: kill phase {run_secs:.1} s: {} kills (at most {MAX_KILLS}) of {DAEMONS} daemons (seed {seed}), {} \
         steps in flight at a kill: {} reclaimed after a lost lease (min {:.1} s, median {:.1} s, \
         max {:.1} s from the kill; lease {LEASE_SECONDS} s), {landed} finished by the killed \
         process's last transaction; lease losses recorded {losses}; deadlocks \
         {deadlocks_before} → {deadlocks_after}",
        kills.len(),
        killed,
        times.len(),
        pct(0.0),
        pct(0.5),
        pct(1.0),
    );
    assert!(!kills.is_empty(), "the run ended before the first kill");
    assert!(
        losses >= times.len() as i64,
        "lost leases ({losses}) account for the reclaimed steps ({})",
        times.len()
    );
    assert_eq!(
        deadlocks_after, deadlocks_before,
        "deadlocks on the test database"
    );
}

/// Phase 3: one daemon on a private cluster that is stopped for longer than a lease mid-run.
async fn database_outage(
    dir: &Path,
    config: &Path,
    miners: &Path,
    flaky: &[i32],
    reference: &ResultSets,
) {
    let cluster = PrivateCluster::start(&ClusterSetup::default()).unwrap();
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port());
    cli(config, &url, &["migrate"]);
    cli(
        config,
        &url,
        &["miners", "import", miners.to_str().unwrap()],
    );
    let started = Instant::now();
    let mut daemon = Daemon::spawn(config, &url, &dir.join("outage.log"));
    {
        let db = Db::open_existing(&url).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            daemon.assert_alive("before the outage");
            // something scored, and the flaky miner's failure recorded (see `flaky_failed_once`)
            let ready = match db.runs().latest().await.unwrap() {
                Some(r) => {
                    let run = RunId(r.id);
                    !db.scores().list_run(run).await.unwrap().is_empty()
                        && flaky_failed_once(&db.steps().list_run(run).await.unwrap(), flaky)
                }
                None => false,
            };
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "nothing scored, or the flaky miner's first failure not recorded, within 240 s:\n{}",
                daemon.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            final_snapshot(&db).await.is_none(),
            "the outage must come before the end of the run"
        );
    }
    let before = daemon.log_text().len();
    let outage = Duration::from_secs(u64::from(LEASE_SECONDS) * 2 + 3);
    let stopped_at = Instant::now();
    cluster.stop().unwrap();
    while stopped_at.elapsed() < outage {
        daemon.assert_alive("during the outage");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    cluster.start_again().unwrap();
    let down = stopped_at.elapsed();
    let log = daemon.log_text();
    let during = log.get(before..).unwrap_or_default();
    let warning_lines: Vec<&str> = during
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    let warnings = warning_lines.len();
    for l in &warning_lines {
        eprintln!("processes: during the outage: {}", &l[..l.len().min(240)]);
    }
    let db = Db::open_existing(&url).await.unwrap();
    let mut daemons = vec![daemon];
    let (run, snap) = wait_final(&db, &mut daemons, Duration::from_secs(300)).await;
    let sets = result_sets(&db, run, &snap).await;
    let diff = differences(reference, &sets);
    assert!(
        diff.is_empty(),
        "the results after the outage differ from the fault-free run:\n{}",
        diff.join("\n")
    );
    let recovered = daemons.pop().unwrap();
    recovered.stop().await;
    check_steps(
        &db.steps().list_run(run).await.unwrap(),
        "run with an outage",
    );
    // the claim loop polls every 0.5 s: a warning per failed round would be ~2 a second; its
    // backoff warns at most every 10 s. The other warnings are per in-flight step (the
    // completer's retries) or per heartbeat/rescue round, so they are few as well.
    let claim_rounds = down.as_secs_f64() / 0.5;
    let claim_warnings = warning_lines
        .iter()
        .filter(|l| l.contains("claiming steps failed"))
        .count();
    eprintln!(
        "processes: outage phase {:.1} s: PostgreSQL down {:.1} s (lease {LEASE_SECONDS} s), \
         {warnings} warning/error lines meanwhile, {claim_warnings} of them from the claim loop \
         (~{claim_rounds:.0} claim intervals)",
        started.elapsed().as_secs_f64(),
        down.as_secs_f64()
    );
    assert!(
        (claim_warnings as f64) <= down.as_secs_f64() / 10.0 + 2.0,
        "the claim loop's warnings during the outage are not rate-limited: {claim_warnings} in \
         {down:?}:\n{during}"
    );
    assert!(
        (warnings as f64) < claim_rounds,
        "the daemon's log during the outage is not bounded: {warnings} warning lines in \
         {down:?}:\n{during}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_daemons_and_a_database_outage_change_no_result() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    // 5°, 12 miners (every behaviour), ERA5 leads 24 to 96 h
    let spec = WorldSpec {
        resolution_deg: 5.0,
        steps: 16,
        era5_leads: vec![24, 48, 72, 96],
        ..WorldSpec::small(12)
    };
    let mut sim = Simulation::start(spec, dir.path(), "").await.unwrap();
    let p = &mut sim.config.pipeline;
    p.lease_seconds = LEASE_SECONDS;
    p.heartbeat_seconds = 2;
    p.max_lease_losses = MAX_LEASE_LOSSES;
    p.shutdown_grace_seconds = 10;
    // the reference and each phase see the flaky miner fail the same way
    let (miners, config) = sim.write_files(dir.path()).unwrap();

    let reference = reference_run(dir.path(), &config, &miners).await;
    assert!(
        reference.scores.len() > 12 * 4 && reference.stats.len() == 12,
        "a real run: {} scores",
        reference.scores.len()
    );
    sim.network.rearm_faults();
    let flaky: Vec<i32> = sim
        .network
        .endpoints()
        .iter()
        .filter(|m| matches!(m.behaviour, wx_sim::Behaviour::FlakyThenOk { .. }))
        .map(|m| i32::from(m.uid))
        .collect();
    assert_eq!(flaky.len(), 1, "the world has a flaky miner");
    killed_daemons(dir.path(), &config, &miners, &flaky, &reference).await;
    sim.network.rearm_faults();
    database_outage(dir.path(), &config, &miners, &flaky, &reference).await;
    sim.shutdown().await;
    drop(dir);
    eprintln!(
        "processes: all phases {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
