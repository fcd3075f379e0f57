//! Shared helpers of the wx-store tests.
#![allow(dead_code)]

use chrono::{DateTime, Duration, Utc};
use wx_model::{MinerUid, RunId, StepKey, StepKind, StepStatus};
use wx_store::{Db, MinerRecord, StepSpec};

/// A fixed, injected "now".
pub fn t0() -> DateTime<Utc> {
    "2025-01-10T12:00:00Z".parse().unwrap()
}

pub fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

pub fn miner(uid: i64) -> MinerRecord {
    MinerRecord {
        uid,
        hotkey: format!("5Hotkey{uid:03}"),
        store_url: format!("https://miner{uid}.example/forecasts/{{run_id}}.zarr"),
        access_token: format!("token-secret-{uid}"),
    }
}

/// A run with `n` miners imported and seeded.
pub async fn seeded_run(db: &Db, n: i64) -> RunId {
    let miners: Vec<MinerRecord> = (1..=n).map(miner).collect();
    db.miners().import(&miners, t0()).await.unwrap();
    let run = db
        .runs()
        .create_or_get("2025-01-01T00:00:00Z".parse().unwrap(), true, "{}", t0())
        .await
        .unwrap();
    let id = RunId(run.run.id);
    let list: Vec<(MinerUid, String)> = miners
        .iter()
        .map(|m| (MinerUid::try_from(m.uid).unwrap(), m.hotkey.clone()))
        .collect();
    db.stats().seed(id, &list, t0()).await.unwrap();
    id
}

pub fn verify_spec(run: RunId, uid: u8, at: DateTime<Utc>) -> StepSpec {
    StepSpec {
        key: StepKey::miner(run, MinerUid::new(uid), StepKind::VerifyOpenStore),
        hotkey: format!("5Hotkey{uid:03}"),
        status: StepStatus::Pending,
        next_run_at: at,
        max_retries: 3,
        context: None,
    }
}
