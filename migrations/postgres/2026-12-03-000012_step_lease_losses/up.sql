-- Lost leases are counted apart from the attempts a step consumed: a validator that dies is not
-- the miner's failure (`attempt` counts failures the step reported; `lease_losses` counts the
-- times its worker stopped or stalled and the lease ran out).
ALTER TABLE weather_forecast_steps ADD COLUMN lease_losses INTEGER NOT NULL DEFAULT 0;
-- A wake that arrived while the step was in progress (e.g. its run completed while the
-- snapshot ran): the step's next wait ends at once instead of after its period.
ALTER TABLE weather_forecast_steps ADD COLUMN wake_requested BOOLEAN NOT NULL DEFAULT FALSE;
