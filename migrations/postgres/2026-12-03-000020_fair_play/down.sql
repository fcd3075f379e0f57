DROP INDEX ix_runs_status_init;
ALTER TABLE weather_miner_responses DROP COLUMN manifest_frozen_at;
DELETE FROM miner_stats a USING miner_stats b
    WHERE a.uid = b.uid AND a.updated_at < b.updated_at;
ALTER TABLE miner_stats DROP CONSTRAINT miner_stats_pkey;
ALTER TABLE miner_stats ADD CONSTRAINT miner_stats_pkey PRIMARY KEY (uid);
DROP TABLE miner_registry_events;
ALTER TABLE miners DROP COLUMN registered_at;
