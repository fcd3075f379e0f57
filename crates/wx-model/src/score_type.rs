//! The score types of `weather_miner_scores.score_type` (docs/scoring.md §8): what the steps
//! write, what the store accepts and what reports read.

/// Day1 skill against GFS (penalised) per variable.
pub const DAY1_SKILL: &str = "day1_skill";
/// Day1 ACC per variable.
pub const DAY1_ACC: &str = "day1_acc";
/// Day1 clone distance (MSE against GFS) per variable.
pub const DAY1_CLONE_DISTANCE: &str = "day1_clone_distance";
/// The Day1 QC score (variable '', lead 0).
pub const DAY1_QC_SCORE: &str = "day1_qc_score";
/// ERA5 RMSE.
pub const ERA5_RMSE: &str = "era5_rmse";
/// ERA5 MSE.
pub const ERA5_MSE: &str = "era5_mse";
/// ERA5 MAE.
pub const ERA5_MAE: &str = "era5_mae";
/// ERA5 bias.
pub const ERA5_BIAS: &str = "era5_bias";
/// ERA5 ACC.
pub const ERA5_ACC: &str = "era5_acc";
/// ERA5 skill against climatology.
pub const ERA5_SKILL_CLIM: &str = "era5_skill_clim";
/// The climatology's own RMSE against ERA5.
pub const ERA5_RMSE_CLIM: &str = "era5_rmse_clim";
/// The per-lead ERA5 score (variable '').
pub const ERA5_LEAD_SCORE: &str = "era5_lead_score";
/// A failed ERA5 variable/lead, with its message.
pub const ERA5_ERROR: &str = "era5_error";
/// Every type, for validation.
pub const ALL: [&str; 13] = [
    DAY1_SKILL,
    DAY1_ACC,
    DAY1_CLONE_DISTANCE,
    DAY1_QC_SCORE,
    ERA5_RMSE,
    ERA5_MSE,
    ERA5_MAE,
    ERA5_BIAS,
    ERA5_ACC,
    ERA5_SKILL_CLIM,
    ERA5_RMSE_CLIM,
    ERA5_LEAD_SCORE,
    ERA5_ERROR,
];
