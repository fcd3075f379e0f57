//! The Diesel schema, one definition for both backends.
//!
//! Must match `migrations/postgres` and `migrations/sqlite`; the store's tests open both and
//! exercise every column. JSON columns are `Text` holding JSON (portable across backends).
#![allow(missing_docs)]

diesel::table! {
    /// Registered miners: where their store is and the token to read it.
    miners (uid) {
        uid -> Integer,
        hotkey -> Text,
        store_url -> Text,
        /// Secret: never copied into another table, a log or an error.
        access_token -> Text,
        updated_at -> Timestamp,
        /// When the current hotkey was registered at the uid (kept across URL/token changes).
        registered_at -> Timestamp,
    }
}

diesel::table! {
    /// The registry's lifecycle per uid: `added`, `hotkey_changed`, `removed`.
    miner_registry_events (id) {
        id -> BigInt,
        uid -> Integer,
        event -> Text,
        hotkey -> Text,
        previous_hotkey -> Nullable<Text>,
        at -> Timestamp,
    }
}

diesel::table! {
    /// One row per validator-initiated run.
    weather_forecast_runs (id) {
        id -> BigInt,
        gfs_init_time_utc -> Timestamp,
        test_mode -> Bool,
        run_initiation_time -> Timestamp,
        status -> Text,
        config_json -> Text,
        completed_at -> Nullable<Timestamp>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    /// One row per miner per run.
    weather_forecast_stats (id) {
        id -> BigInt,
        run_id -> BigInt,
        miner_uid -> Integer,
        miner_hotkey -> Text,
        forecast_status -> Text,
        forecast_score_initial -> Nullable<Double>,
        era5_score_24h -> Nullable<Double>,
        era5_score_48h -> Nullable<Double>,
        era5_score_72h -> Nullable<Double>,
        era5_score_96h -> Nullable<Double>,
        era5_score_120h -> Nullable<Double>,
        era5_score_144h -> Nullable<Double>,
        era5_score_168h -> Nullable<Double>,
        era5_score_192h -> Nullable<Double>,
        era5_score_216h -> Nullable<Double>,
        era5_score_240h -> Nullable<Double>,
        era5_combined_score -> Nullable<Double>,
        era5_completeness -> Nullable<Double>,
        overall_forecast_score -> Nullable<Double>,
        avg_rmse -> Nullable<Double>,
        avg_acc -> Nullable<Double>,
        avg_skill_score -> Nullable<Double>,
        hosting_status -> Nullable<Text>,
        hosting_latency_ms -> Nullable<BigInt>,
        forecast_error_msg -> Nullable<Text>,
        miner_rank -> Nullable<Integer>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// A miner's store for a run: URL, frozen manifest, verification outcome.
    weather_miner_responses (id) {
        id -> BigInt,
        run_id -> BigInt,
        miner_uid -> Integer,
        miner_hotkey -> Text,
        store_url -> Text,
        manifest_hash -> Nullable<Text>,
        frozen_manifest -> Nullable<Text>,
        verification_passed -> Bool,
        verified_at -> Nullable<Timestamp>,
        hosting_status -> Nullable<Text>,
        hosting_latency_ms -> Nullable<BigInt>,
        updated_at -> Timestamp,
        /// When the manifest was frozen (the submission deadline applies to this time).
        manifest_frozen_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// The step log and the work queue.
    weather_forecast_steps (id) {
        id -> BigInt,
        run_id -> BigInt,
        miner_uid -> Integer,
        miner_hotkey -> Text,
        step_name -> Text,
        substep -> Text,
        lead_hours -> Integer,
        status -> Text,
        attempt -> Integer,
        max_retries -> Integer,
        next_run_at -> Timestamp,
        lease_expires_at -> Nullable<Timestamp>,
        claim_token -> Nullable<Text>,
        claimed_by -> Nullable<Text>,
        started_at -> Nullable<Timestamp>,
        completed_at -> Nullable<Timestamp>,
        latency_ms -> Nullable<BigInt>,
        error_json -> Nullable<Text>,
        context -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        /// Leases that ran out while the step was claimed (not counted in `attempt`).
        lease_losses -> Integer,
        /// A wake arrived while the step was in progress: its next wait ends at once.
        wake_requested -> Bool,
    }
}

diesel::table! {
    /// Per (run, miner, score_type, variable, level, lead) score records (docs/scoring.md §8).
    weather_miner_scores (id) {
        id -> BigInt,
        run_id -> BigInt,
        miner_uid -> Integer,
        miner_hotkey -> Text,
        score_type -> Text,
        variable -> Text,
        level -> Integer,
        lead_hours -> Integer,
        score -> Nullable<Double>,
        valid_time_utc -> Nullable<Timestamp>,
        error_message -> Nullable<Text>,
        metrics -> Nullable<Text>,
        calculated_at -> Timestamp,
    }
}

diesel::table! {
    /// Lifetime aggregates per miner identity (uid, hotkey).
    miner_stats (uid, hotkey) {
        uid -> Integer,
        hotkey -> Text,
        runs_total -> Integer,
        runs_scored -> Integer,
        avg_overall_score -> Nullable<Double>,
        best_overall_score -> Nullable<Double>,
        worst_overall_score -> Nullable<Double>,
        std_overall_score -> Nullable<Double>,
        day1_pass_rate -> Nullable<Double>,
        avg_era5_completeness -> Nullable<Double>,
        hosting_successes -> Integer,
        hosting_failures -> Integer,
        avg_hosting_latency_ms -> Nullable<Double>,
        current_success_streak -> Integer,
        longest_success_streak -> Integer,
        current_failure_streak -> Integer,
        error_counts -> Text,
        first_seen -> Timestamp,
        last_active -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Periodic subnet snapshots with ranking weights.
    subnet_snapshots (id) {
        id -> BigInt,
        taken_at -> Timestamp,
        lookback_days -> Integer,
        runs_covered -> Text,
        scores -> Text,
        weights -> Text,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    /// Leads of a run whose truth was given up on (unpublished `era5_give_up` after due).
    weather_unavailable_leads (run_id, source, lead_hours) {
        run_id -> BigInt,
        source -> Text,
        lead_hours -> Integer,
        valid_time_utc -> Timestamp,
        published_until -> Nullable<Timestamp>,
        reason -> Text,
        recorded_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    miners,
    miner_registry_events,
    weather_forecast_runs,
    weather_forecast_stats,
    weather_miner_responses,
    weather_forecast_steps,
    weather_miner_scores,
    miner_stats,
    subnet_snapshots,
    weather_unavailable_leads,
);
