-- Fair play (docs/operating.md, "Fair play"): identity is (uid, hotkey), the registry keeps its
-- history, and a response records when its manifest was frozen (the submission deadline).

-- When the current hotkey was registered at the uid (a URL or token change keeps it).
ALTER TABLE miners ADD COLUMN registered_at TIMESTAMP NOT NULL DEFAULT '1970-01-01 00:00:00';
UPDATE miners SET registered_at = updated_at;

-- The registry's lifecycle: added, hotkey_changed, removed. Kept for reports and `status`.
CREATE TABLE miner_registry_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    uid             INTEGER NOT NULL CHECK (uid BETWEEN 0 AND 255),
    event           TEXT NOT NULL,
    hotkey          TEXT NOT NULL,
    previous_hotkey TEXT,
    at              TIMESTAMP NOT NULL
);
CREATE INDEX ix_registry_events_uid ON miner_registry_events (uid, id);

-- Lifetime aggregates belong to a (uid, hotkey): a new hotkey at a uid starts without history.
-- SQLite cannot change a primary key in place: the table is rebuilt.
CREATE TABLE miner_stats_new (
    uid                    INTEGER NOT NULL CHECK (uid BETWEEN 0 AND 255),
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
    updated_at             TIMESTAMP NOT NULL,
    PRIMARY KEY (uid, hotkey)
);
INSERT INTO miner_stats_new SELECT * FROM miner_stats;
DROP TABLE miner_stats;
ALTER TABLE miner_stats_new RENAME TO miner_stats;

-- When the manifest was frozen (fetched, hashed and its signature checked); a store frozen
-- after the run's submission window is refused as late.
ALTER TABLE weather_miner_responses ADD COLUMN manifest_frozen_at TIMESTAMP;

-- Retention deletes a run's rows by run id, and snapshots by time (ix_snapshots_taken_at).
CREATE INDEX ix_runs_status_init ON weather_forecast_runs (run_initiation_time, status);
