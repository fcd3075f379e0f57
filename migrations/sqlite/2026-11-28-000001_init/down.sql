DROP TABLE subnet_snapshots;
DROP TABLE miner_stats;
DROP TABLE weather_miner_scores;
DROP TABLE weather_forecast_steps;
DROP TABLE weather_miner_responses;
DROP TABLE weather_forecast_stats;
DROP TABLE weather_forecast_runs;
DROP TABLE miners;
