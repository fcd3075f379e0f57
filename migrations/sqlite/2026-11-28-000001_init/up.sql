-- wx schema, SQLite. Keep in step with migrations/postgres and crates/wx-model/src/schema.rs.
-- Timestamps are UTC (TIMESTAMP columns holding UTC without a zone, written by wx).

CREATE TABLE miners (
    uid          INTEGER PRIMARY KEY CHECK (uid BETWEEN 0 AND 255),
    hotkey       TEXT NOT NULL,
    store_url    TEXT NOT NULL,
    access_token TEXT NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);

CREATE TABLE weather_forecast_runs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    gfs_init_time_utc   TIMESTAMP NOT NULL,
    test_mode           BOOLEAN NOT NULL,
    run_initiation_time TIMESTAMP NOT NULL,
    status              TEXT NOT NULL,
    config_json         TEXT NOT NULL,
    completed_at        TIMESTAMP,
    error               TEXT,
    CONSTRAINT uq_runs_init UNIQUE (gfs_init_time_utc, test_mode)
);

CREATE TABLE weather_forecast_stats (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    run_id                 BIGINT NOT NULL REFERENCES weather_forecast_runs (id) ON DELETE CASCADE,
    miner_uid              INTEGER NOT NULL CHECK (miner_uid BETWEEN 0 AND 255),
    miner_hotkey           TEXT NOT NULL,
    forecast_status        TEXT NOT NULL,
    forecast_score_initial DOUBLE,
    era5_score_24h         DOUBLE,
    era5_score_48h         DOUBLE,
    era5_score_72h         DOUBLE,
    era5_score_96h         DOUBLE,
    era5_score_120h        DOUBLE,
    era5_score_144h        DOUBLE,
    era5_score_168h        DOUBLE,
    era5_score_192h        DOUBLE,
    era5_score_216h        DOUBLE,
    era5_score_240h        DOUBLE,
    era5_combined_score    DOUBLE,
    era5_completeness      DOUBLE,
    overall_forecast_score DOUBLE,
    avg_rmse               DOUBLE,
    avg_acc                DOUBLE,
    avg_skill_score        DOUBLE,
    hosting_status         TEXT,
    hosting_latency_ms     BIGINT,
    forecast_error_msg     TEXT,
    miner_rank             INTEGER,
    updated_at             TIMESTAMP NOT NULL,
    CONSTRAINT uq_stats_run_miner UNIQUE (run_id, miner_uid)
);

CREATE TABLE weather_miner_responses (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    run_id              BIGINT NOT NULL,
    miner_uid           INTEGER NOT NULL,
    miner_hotkey        TEXT NOT NULL,
    store_url           TEXT NOT NULL,
    manifest_hash       TEXT,
    frozen_manifest     TEXT,
    verification_passed BOOLEAN NOT NULL DEFAULT FALSE,
    verified_at         TIMESTAMP,
    hosting_status      TEXT,
    hosting_latency_ms  BIGINT,
    updated_at          TIMESTAMP NOT NULL,
    CONSTRAINT uq_responses_run_miner UNIQUE (run_id, miner_uid),
    CONSTRAINT fk_responses_stats FOREIGN KEY (run_id, miner_uid)
        REFERENCES weather_forecast_stats (run_id, miner_uid) ON DELETE CASCADE
);

CREATE TABLE weather_forecast_steps (
    id               INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    run_id           BIGINT NOT NULL REFERENCES weather_forecast_runs (id) ON DELETE CASCADE,
    miner_uid        INTEGER NOT NULL CHECK (miner_uid BETWEEN 0 AND 255),
    miner_hotkey     TEXT NOT NULL,
    step_name        TEXT NOT NULL,
    substep          TEXT NOT NULL,
    lead_hours       INTEGER NOT NULL CHECK (lead_hours >= 0),
    status           TEXT NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_retries      INTEGER NOT NULL,
    next_run_at      TIMESTAMP NOT NULL,
    lease_expires_at TIMESTAMP,
    claim_token      TEXT,
    claimed_by       TEXT,
    started_at       TIMESTAMP,
    completed_at     TIMESTAMP,
    latency_ms       BIGINT,
    error_json       TEXT,
    context          TEXT,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    CONSTRAINT uq_steps_key UNIQUE (run_id, miner_uid, step_name, substep, lead_hours),
    -- a claim token exists only while a unit of work is claimed (log rows run without one)
    CONSTRAINT ck_steps_lease CHECK (claim_token IS NULL OR status = 'in_progress')
);
-- The claim query: due rows by time. Partial, so terminal rows (the bulk) are not indexed.
CREATE INDEX ix_steps_due ON weather_forecast_steps (next_run_at, id)
    WHERE status IN ('pending', 'retry_scheduled', 'waiting');
-- Retries are claimed before other due rows.
CREATE INDEX ix_steps_retry ON weather_forecast_steps (next_run_at, id)
    WHERE status = 'retry_scheduled';
-- Rescue of expired leases.
CREATE INDEX ix_steps_leases ON weather_forecast_steps (lease_expires_at)
    WHERE status = 'in_progress';

CREATE TABLE weather_miner_scores (
    id             INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    run_id         BIGINT NOT NULL,
    miner_uid      INTEGER NOT NULL,
    miner_hotkey   TEXT NOT NULL,
    score_type     TEXT NOT NULL,
    variable       TEXT NOT NULL DEFAULT '',
    level          INTEGER NOT NULL DEFAULT 0,
    lead_hours     INTEGER NOT NULL DEFAULT 0,
    score          DOUBLE,
    valid_time_utc TIMESTAMP,
    error_message  TEXT,
    metrics        TEXT,
    calculated_at  TIMESTAMP NOT NULL,
    CONSTRAINT uq_scores_key UNIQUE (run_id, miner_uid, score_type, variable, level, lead_hours),
    CONSTRAINT fk_scores_stats FOREIGN KEY (run_id, miner_uid)
        REFERENCES weather_forecast_stats (run_id, miner_uid) ON DELETE CASCADE,
    -- NaN and infinities never reach the database; a missing score carries its reason.
    CONSTRAINT ck_scores_finite CHECK (score IS NULL OR score BETWEEN -1e300 AND 1e300),
    CONSTRAINT ck_scores_reason CHECK (score IS NOT NULL OR error_message IS NOT NULL)
);

CREATE TABLE miner_stats (
    uid                    INTEGER PRIMARY KEY CHECK (uid BETWEEN 0 AND 255),
    hotkey                 TEXT NOT NULL,
    runs_total             INTEGER NOT NULL,
    runs_scored            INTEGER NOT NULL,
    avg_overall_score      DOUBLE,
    best_overall_score     DOUBLE,
    worst_overall_score    DOUBLE,
    std_overall_score      DOUBLE,
    day1_pass_rate         DOUBLE,
    avg_era5_completeness  DOUBLE,
    hosting_successes      INTEGER NOT NULL,
    hosting_failures       INTEGER NOT NULL,
    avg_hosting_latency_ms DOUBLE,
    current_success_streak INTEGER NOT NULL,
    longest_success_streak INTEGER NOT NULL,
    current_failure_streak INTEGER NOT NULL,
    error_counts           TEXT NOT NULL,
    first_seen             TIMESTAMP NOT NULL,
    last_active            TIMESTAMP,
    updated_at             TIMESTAMP NOT NULL
);

CREATE TABLE subnet_snapshots (
    id            INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    taken_at      TIMESTAMP NOT NULL,
    lookback_days INTEGER NOT NULL,
    runs_covered  TEXT NOT NULL,
    scores        TEXT NOT NULL,
    weights       TEXT NOT NULL,
    note          TEXT
);
CREATE INDEX ix_snapshots_taken_at ON subnet_snapshots (taken_at);
