//! The database size of one run at 255 miners, on a real SQLite file and a real PostgreSQL
//! database (docs/operating.md, "Retention"): the rows a run writes — 255 stats rows and
//! responses (each with a 20 KB frozen manifest), 667 score rows per miner (≈170,000, as a
//! full run writes), 16 step rows per miner — are inserted in bulk, and the growth of the
//! database is asserted under the bound documented in docs/operating.md. Print the figures
//! with `cargo test -p wx-store --all-features --test db_size -- --nocapture`.

use wx_store::backend_tests;
use wx_store::testing::TestDb;

const MINERS: i64 = 255;
const SCORES_PER_MINER: i64 = 667;
const STEPS_PER_MINER: i64 = 16;
/// The bound of docs/operating.md: one run at 255 miners stays under this many MiB.
const BOUND_MIB: f64 = 64.0;

/// `WITH RECURSIVE n(i)` counting 0..count (both dialects).
fn series(count: i64) -> String {
    format!("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {count} - 1)")
}

async fn size(t: &TestDb, sqlite: bool) -> i64 {
    let mut raw = t.raw().await;
    if sqlite {
        raw.batch("PRAGMA wal_checkpoint(TRUNCATE)").await.unwrap();
        raw.number(
            "SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()",
        )
        .await
        .unwrap()
    } else {
        raw.batch("VACUUM ANALYZE").await.unwrap();
        raw.number(
            "SELECT CAST(SUM(pg_total_relation_size(c.oid)) AS BIGINT) AS n FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind = 'r'",
        )
        .await
        .unwrap()
    }
}

async fn one_run_at_255_miners_stays_under_the_documented_bound(t: TestDb) {
    let sqlite = t.url().starts_with("sqlite");
    let (ts, tru, fls) = if sqlite {
        ("'2025-01-10 12:00:00'", "1", "0")
    } else {
        ("TIMESTAMP '2025-01-10 12:00:00'", "TRUE", "FALSE")
    };
    let before = size(&t, sqlite).await;
    let mut raw = t.raw().await;
    raw.batch(&format!(
        "INSERT INTO weather_forecast_runs (gfs_init_time_utc, test_mode, run_initiation_time, \
         status, config_json) VALUES ({ts}, {fls}, {ts}, 'completed', '{}')",
        "{\"pipeline\":{}}".repeat(100)
    ))
    .await
    .unwrap();
    let run = raw
        .number("SELECT MAX(id) AS n FROM weather_forecast_runs")
        .await
        .unwrap();
    let hotkey = "'5' || substr('ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz123456789ABCDEFGHJKLMNP', 1, 47)";
    raw.batch(&format!(
        "INSERT INTO weather_forecast_stats (run_id, miner_uid, miner_hotkey, forecast_status, \
         forecast_score_initial, era5_score_24h, era5_score_48h, era5_score_72h, era5_score_96h, \
         era5_score_120h, era5_score_144h, era5_score_168h, era5_score_192h, era5_score_216h, \
         era5_score_240h, era5_combined_score, era5_completeness, overall_forecast_score, \
         avg_rmse, avg_acc, avg_skill_score, hosting_status, hosting_latency_ms, miner_rank, \
         updated_at) {} SELECT {run}, i, {hotkey}, 'completed', 0.9, 0.8, 0.8, 0.7, 0.7, 0.6, \
         0.6, 0.5, 0.5, 0.4, 0.4, 0.6, 1.0, 0.65, 1.5, 0.9, 0.3, 'available', 120, i + 1, {ts} \
         FROM n",
        series(MINERS)
    ))
    .await
    .unwrap();
    // a frozen manifest lists every file of the store with its size and sha256 (≈100 B each)
    let manifest_entry = "{\"path\":\"2t/0.0.0.0\",\"size\":1048576,\"sha256\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"},";
    raw.batch(&format!(
        "INSERT INTO weather_miner_responses (run_id, miner_uid, miner_hotkey, store_url, \
         manifest_hash, frozen_manifest, verification_passed, verified_at, hosting_status, \
         hosting_latency_ms, updated_at, manifest_frozen_at) {} SELECT {run}, i, {hotkey}, \
         'https://miner.example/forecasts/2025011000.zarr', \
         '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', '{}', {tru}, {ts}, \
         'available', 120, {ts}, {ts} FROM n",
        series(MINERS),
        manifest_entry.repeat(200)
    ))
    .await
    .unwrap();
    // scores: 13 types × 52 (variable, level, lead) per miner; one row in 13 carries metrics
    let metrics = "{\"rmse\":1.2345678,\"mse\":1.5241,\"mae\":0.98765,\"bias\":-0.0123,\"acc\":0.91234,\"skill\":0.345,\"n\":1038240}";
    raw.batch(&format!(
        "INSERT INTO weather_miner_scores (run_id, miner_uid, miner_hotkey, score_type, variable, \
         level, lead_hours, score, valid_time_utc, error_message, metrics, calculated_at) {} \
         SELECT {run}, i / {SCORES_PER_MINER}, {hotkey}, \
         CASE (i % {SCORES_PER_MINER}) % 13 WHEN 0 THEN 'era5_lead_score' WHEN 1 THEN 'era5_rmse' \
         WHEN 2 THEN 'era5_mse' WHEN 3 THEN 'era5_mae' WHEN 4 THEN 'era5_bias' WHEN 5 THEN \
         'era5_acc' WHEN 6 THEN 'era5_skill_clim' WHEN 7 THEN 'era5_rmse_clim' WHEN 8 THEN \
         'day1_skill' WHEN 9 THEN 'day1_acc' WHEN 10 THEN 'day1_clone_distance' WHEN 11 THEN \
         'day1_qc_score' ELSE 'era5_error' END, \
         CASE ((i % {SCORES_PER_MINER}) / 13) % 6 WHEN 0 THEN '2t' WHEN 1 THEN 'msl' WHEN 2 \
         THEN '10u' WHEN 3 THEN 'z' WHEN 4 THEN 't' ELSE 'q' END, \
         CASE ((i % {SCORES_PER_MINER}) / 13) % 6 WHEN 3 THEN 500 WHEN 4 THEN 850 WHEN 5 THEN 700 \
         ELSE 0 END, 24 * ((i % {SCORES_PER_MINER}) / 78 + 1), 0.123456789 + i, {ts}, NULL, \
         CASE WHEN (i % {SCORES_PER_MINER}) % 13 = 0 THEN '{metrics}' ELSE NULL END, {ts} \
         FROM n",
        series(MINERS * SCORES_PER_MINER)
    ))
    .await
    .unwrap();
    let context = "{\"leads\":[24,48,72,96,120,144,168,192,216,240],\"latency_ms\":1234}";
    raw.batch(&format!(
        "INSERT INTO weather_forecast_steps (run_id, miner_uid, miner_hotkey, step_name, substep, \
         lead_hours, status, attempt, max_retries, next_run_at, claimed_by, started_at, \
         completed_at, latency_ms, context, created_at, updated_at) {} \
         SELECT {run}, i / {STEPS_PER_MINER}, {hotkey}, 'era5', 'lead', \
         24 * (i % {STEPS_PER_MINER}), 'succeeded', 1, 3, {ts}, 'wx-validator@host:1234', {ts}, \
         {ts}, 1234, '{context}', {ts}, {ts} FROM n",
        series(MINERS * STEPS_PER_MINER)
    ))
    .await
    .unwrap();
    let scores = raw
        .number("SELECT COUNT(*) AS n FROM weather_miner_scores")
        .await
        .unwrap();
    assert_eq!(scores, MINERS * SCORES_PER_MINER);
    drop(raw);
    let after = size(&t, sqlite).await;
    let mib = (after - before) as f64 / f64::from(1 << 20);
    println!(
        "{}: one run at {MINERS} miners ({scores} score rows): {mib:.1} MiB; a year of daily runs: {:.1} GiB",
        if sqlite { "SQLite" } else { "PostgreSQL" },
        mib * 365.0 / 1024.0
    );
    assert!(mib > 1.0, "the run's rows were measured ({mib} MiB)");
    assert!(
        mib < BOUND_MIB,
        "one run takes {mib:.1} MiB, over the {BOUND_MIB} MiB of docs/operating.md: update the \
         figures there"
    );
}

backend_tests!(one_run_at_255_miners_stays_under_the_documented_bound);
