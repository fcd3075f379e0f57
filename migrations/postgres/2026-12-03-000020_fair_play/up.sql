-- Fair play (docs/operating.md, "Fair play"): identity is (uid, hotkey), the registry keeps its
-- history, and a response records when its manifest was frozen (the submission deadline).

-- When the current hotkey was registered at the uid (a URL or token change keeps it).
ALTER TABLE miners ADD COLUMN registered_at TIMESTAMP;
UPDATE miners SET registered_at = updated_at;
ALTER TABLE miners ALTER COLUMN registered_at SET NOT NULL;

-- The registry's lifecycle: added, hotkey_changed, removed. Kept for reports and `status`.
CREATE TABLE miner_registry_events (
    id              BIGSERIAL PRIMARY KEY,
    uid             INTEGER NOT NULL CHECK (uid BETWEEN 0 AND 255),
    event           TEXT NOT NULL,
    hotkey          TEXT NOT NULL,
    previous_hotkey TEXT,
    at              TIMESTAMP NOT NULL
);
CREATE INDEX ix_registry_events_uid ON miner_registry_events (uid, id);

-- Lifetime aggregates belong to a (uid, hotkey): a new hotkey at a uid starts without history.
ALTER TABLE miner_stats DROP CONSTRAINT miner_stats_pkey;
ALTER TABLE miner_stats ADD CONSTRAINT miner_stats_pkey PRIMARY KEY (uid, hotkey);

-- When the manifest was frozen (fetched, hashed and its signature checked); a store frozen
-- after the run's submission window is refused as late.
ALTER TABLE weather_miner_responses ADD COLUMN manifest_frozen_at TIMESTAMP;

-- Retention deletes a run's rows by run id, and snapshots by time (ix_snapshots_taken_at).
CREATE INDEX ix_runs_status_init ON weather_forecast_runs (run_initiation_time, status);
