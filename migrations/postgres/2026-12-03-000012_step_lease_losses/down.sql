ALTER TABLE weather_forecast_steps DROP COLUMN wake_requested;
ALTER TABLE weather_forecast_steps DROP COLUMN lease_losses;
