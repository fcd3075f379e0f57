DROP INDEX ix_runs_status_init;
ALTER TABLE weather_miner_responses DROP COLUMN manifest_frozen_at;
CREATE TABLE miner_stats_old AS SELECT * FROM miner_stats;
DROP TABLE miner_stats;
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
INSERT INTO miner_stats SELECT * FROM miner_stats_old o
    WHERE o.updated_at = (SELECT MAX(updated_at) FROM miner_stats_old p WHERE p.uid = o.uid)
    GROUP BY o.uid;
DROP TABLE miner_stats_old;
DROP TABLE miner_registry_events;
ALTER TABLE miners DROP COLUMN registered_at;
