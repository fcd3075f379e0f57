-- Leads whose truth was given up on (pipeline.md §3, docs/pipeline.md "ERA5 publication"): a
-- run-level fact, one row per (run, truth source, lead), written once by whichever worker first
-- sees the lead still unpublished `era5_give_up` after it was due. Every miner's ERA5
-- aggregates of the run leave these leads out alike.
CREATE TABLE weather_unavailable_leads (
    run_id          BIGINT NOT NULL REFERENCES weather_forecast_runs (id) ON DELETE CASCADE,
    source          TEXT NOT NULL,
    lead_hours      INTEGER NOT NULL CHECK (lead_hours > 0),
    valid_time_utc  TIMESTAMP NOT NULL,
    published_until TIMESTAMP,
    reason          TEXT NOT NULL,
    recorded_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, source, lead_hours)
);
