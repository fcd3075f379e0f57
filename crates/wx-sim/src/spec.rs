//! What world to generate: [`WorldSpec`], the miners ([`MinerSpec`]) and their
//! [`Behaviour`]s.

use crate::SimError;
use crate::rng::{Rng, key};
use chrono::{DateTime, NaiveDate, Timelike, Utc};
use serde::{Deserialize, Serialize};
use wx_model::Variable;

/// Which latitude rows the miners' stores have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MinerGridKind {
    /// The 720-style grid: 90 … −90 + resolution, no −90 row (36 rows at 5°).
    NoSouthPole,
    /// The 721-style grid with both poles, identical to the truth grid (37 rows at 5°).
    BothPoles,
    /// Odd uids without the −90 row, even uids with it (both layouts exercised).
    #[default]
    Alternating,
}

/// Which pressure levels the ERA5 store has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Era5Levels {
    /// The 13 scored levels only (smaller and faster).
    #[default]
    Scored,
    /// The 37 ERA5 levels, like ARCO-ERA5 (the reader selects the 13).
    Arco37,
}

/// How the world's ERA5 store is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Era5Publication {
    /// Every valid time's chunks from the start, no publication attributes (the time axis is
    /// the extent).
    #[default]
    AllAtOnce,
    /// As the public ARCO-ERA5 store: the time axis padded `padding_days` beyond the world's
    /// last valid time; root attributes `valid_time_start` (the init's day),
    /// `valid_time_stop_era5t` (initially `published_through`) and `valid_time_stop`
    /// ([`crate::publication::FINAL_LAG_DAYS`] before it); no chunk after the ERA5T stop. An
    /// [`crate::Era5Publisher`] publishes the rest, day by day.
    Progressive {
        /// The last ERA5T day published when the world is generated.
        published_through: NaiveDate,
        /// Days of axis entries after the last valid time (never any chunk there).
        padding_days: u32,
    },
}

/// The 37 ERA5 pressure levels (hPa), ascending as in ARCO-ERA5.
pub const ERA5_LEVELS_37: [u16; 37] = [
    1, 2, 3, 5, 7, 10, 20, 30, 50, 70, 100, 125, 150, 175, 200, 225, 250, 300, 350, 400, 450, 500,
    550, 600, 650, 700, 750, 775, 800, 825, 850, 875, 900, 925, 950, 975, 1000,
];

/// How a simulated miner behaves.
///
/// Stores of the faulty behaviours hold a skilled forecast of a fixed error scale (given in
/// parentheses), so that only the fault decides their fate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Behaviour {
    /// Truth + smooth error growing with lead, a constant bias and damping of the anomalies
    /// towards climatology; `error_scale` 1.0 ≈ GFS-like skill at long leads, 0.25 excellent,
    /// 2.0 poor.
    Skilled {
        /// Multiplies the error (> 0).
        error_scale: f64,
    },
    /// Serves the GFS forecast: at the Day1 leads exactly the values the GFS source decodes
    /// (triggers the Day1 clone clamp), elsewhere the GFS model forecast. Always on the
    /// truth grid (both poles), like GFS itself.
    GfsClone,
    /// No store; the server accepts connections and closes them at once.
    Offline,
    /// The first `failures` verify attempts fail (`manifest.json` answered 503), then the
    /// store is served (error scale 0.6).
    FlakyThenOk {
        /// Failed verify attempts before the store is served.
        failures: u32,
    },
    /// Every chunk of `2t` is served with one byte flipped, so it differs from the manifest
    /// (error scale 0.35: it would rank high if not caught).
    Tampered,
    /// A fraction of the points of every field is NaN (coverage failure; error scale 0.5).
    NanInjection {
        /// Fraction of points set to NaN, in (0, 1].
        fraction: f64,
    },
    /// The store lacks these variables (error scale 0.45).
    MissingVariables {
        /// The missing variables (not all of them).
        variables: Vec<Variable>,
    },
    /// Forecast = a climatology: the world's climatology plus a small fixed pattern (its own
    /// climatology from another period), so anomaly correlations are near 0 but defined — a
    /// weak but valid miner.
    Climatology,
}

impl Behaviour {
    /// Short name: `skilled`, `gfs_clone`, `offline`, …
    pub fn name(&self) -> &'static str {
        match self {
            Behaviour::Skilled { .. } => "skilled",
            Behaviour::GfsClone => "gfs_clone",
            Behaviour::Offline => "offline",
            Behaviour::FlakyThenOk { .. } => "flaky_then_ok",
            Behaviour::Tampered => "tampered",
            Behaviour::NanInjection { .. } => "nan_injection",
            Behaviour::MissingVariables { .. } => "missing_variables",
            Behaviour::Climatology => "climatology",
        }
    }

    /// The error scale of the skilled forecast the store holds, if it holds one.
    pub fn error_scale(&self) -> Option<f64> {
        match self {
            Behaviour::Skilled { error_scale } => Some(*error_scale),
            Behaviour::FlakyThenOk { .. } => Some(0.6),
            Behaviour::Tampered => Some(0.35),
            Behaviour::NanInjection { .. } => Some(0.5),
            Behaviour::MissingVariables { .. } => Some(0.45),
            Behaviour::GfsClone | Behaviour::Offline | Behaviour::Climatology => None,
        }
    }

    /// Whether the miner has a store on disk (every behaviour but [`Behaviour::Offline`]).
    pub fn has_store(&self) -> bool {
        !matches!(self, Behaviour::Offline)
    }
}

/// One simulated miner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinerSpec {
    /// Uid 0..=255.
    pub uid: u16,
    /// What it does.
    pub behaviour: Behaviour,
}

/// Everything that defines a world. `Default` is the demo world: 5°, init 2025-01-01T00Z,
/// 40 steps (leads 6 … 240 h), Day1 lead 12 h, ERA5 leads 24 … 240 h, 24 miners of the
/// standard mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorldSpec {
    /// Grid spacing in degrees; 180 must be a whole multiple (5 → 37 × 72 truth grid).
    pub resolution_deg: f64,
    /// Latitude rows of the miners' stores.
    pub miner_grid: MinerGridKind,
    /// The run's GFS init time (00, 06, 12 or 18 UTC on the hour).
    pub gfs_init: DateTime<Utc>,
    /// 6-hourly steps in every miner store: leads 6, 12, …, 6 · steps hours.
    pub steps: u32,
    /// Leads (hours) scored against GFS; the GFS tree holds these forecasts and the analyses
    /// at their valid times.
    pub day1_leads: Vec<u32>,
    /// Leads (hours) scored against ERA5 (informational: the ERA5 store covers every 6 h from
    /// the init to the last lead).
    pub era5_leads: Vec<u32>,
    /// Pressure levels of the ERA5 store.
    pub era5_levels: Era5Levels,
    /// How the ERA5 store is published (all at once, or day by day as the public store).
    pub era5_publication: Era5Publication,
    /// Seed of everything random (weather, errors, keys, tokens).
    pub seed: u64,
    /// The miners.
    pub miners: Vec<MinerSpec>,
}

impl Default for WorldSpec {
    fn default() -> Self {
        WorldSpec {
            resolution_deg: 5.0,
            miner_grid: MinerGridKind::Alternating,
            gfs_init: DateTime::<Utc>::from_timestamp(1_735_689_600, 0)
                .expect("2025-01-01T00:00:00Z"),
            steps: 40,
            day1_leads: vec![12],
            era5_leads: (1..=10).map(|d| d * 24).collect(),
            era5_levels: Era5Levels::Scored,
            era5_publication: Era5Publication::AllAtOnce,
            seed: 42,
            miners: standard_mix(24, 42),
        }
    }
}

impl WorldSpec {
    /// A small world for tests: 10° grid, 8 steps (48 h), Day1 lead 12 h, ERA5 leads 24 and
    /// 48 h, `miners` miners of the standard mix.
    pub fn small(miners: usize) -> WorldSpec {
        WorldSpec {
            resolution_deg: 10.0,
            steps: 8,
            era5_leads: vec![24, 48],
            miners: standard_mix(miners, 42),
            ..WorldSpec::default()
        }
    }

    /// The last lead, hours.
    pub fn max_lead(&self) -> u32 {
        6 * self.steps
    }

    /// Replaces the miners by the standard mix of `n` with this spec's seed.
    pub fn with_standard_miners(mut self, n: usize) -> WorldSpec {
        self.miners = standard_mix(n, self.seed);
        self
    }

    /// Checks the spec; the error says what is wrong.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::InvalidSpec(m));
        let r = self.resolution_deg;
        let rows = 180.0 / r;
        if !(r.is_finite() && r > 0.0 && r <= 30.0) || (rows - rows.round()).abs() > 1e-9 {
            return bad(format!(
                "resolution_deg {r} must be in (0, 30] and divide 180 exactly"
            ));
        }
        let init = self.gfs_init;
        if !init.hour().is_multiple_of(6)
            || init.minute() != 0
            || init.second() != 0
            || init.nanosecond() != 0
        {
            return bad(format!(
                "gfs_init {init} is not a GFS cycle (00/06/12/18 UTC)"
            ));
        }
        if self.steps == 0 || self.steps > 64 {
            return bad(format!("steps {} must be in 1..=64", self.steps));
        }
        for (what, leads) in [
            ("day1_leads", &self.day1_leads),
            ("era5_leads", &self.era5_leads),
        ] {
            for lead in leads {
                if *lead == 0 || lead % 6 != 0 || *lead > self.max_lead() {
                    return bad(format!(
                        "{what}: lead {lead} h must be a positive multiple of 6 up to {} h",
                        self.max_lead()
                    ));
                }
            }
        }
        if let Era5Publication::Progressive { padding_days, .. } = self.era5_publication
            && padding_days > 366
        {
            return bad(format!(
                "era5 padding_days {padding_days} must be at most 366"
            ));
        }
        if self.miners.is_empty() {
            return bad("no miners".to_owned());
        }
        let mut uids: Vec<u16> = self.miners.iter().map(|m| m.uid).collect();
        uids.sort_unstable();
        if let Some(w) = uids.windows(2).find(|w| w[0] == w[1]) {
            return bad(format!("uid {} appears twice", w[0]));
        }
        if let Some(uid) = uids.iter().find(|u| **u > 255) {
            return bad(format!("uid {uid} is outside 0..=255"));
        }
        for miner in &self.miners {
            let uid = miner.uid;
            match &miner.behaviour {
                Behaviour::Skilled { error_scale }
                    if !(error_scale.is_finite() && *error_scale > 0.0) =>
                {
                    return bad(format!(
                        "miner {uid}: error_scale {error_scale} must be > 0"
                    ));
                }
                Behaviour::NanInjection { fraction } if !(*fraction > 0.0 && *fraction <= 1.0) => {
                    return bad(format!(
                        "miner {uid}: NaN fraction {fraction} must be in (0, 1]"
                    ));
                }
                Behaviour::MissingVariables { variables }
                    if variables.is_empty()
                        || Variable::ALL.iter().all(|v| variables.contains(v)) =>
                {
                    return bad(format!(
                        "miner {uid}: missing variables must name some but not all variables"
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The special behaviours of the standard mix, in the order they are included.
fn specials() -> Vec<Behaviour> {
    vec![
        Behaviour::GfsClone,
        Behaviour::Tampered,
        Behaviour::Offline,
        Behaviour::FlakyThenOk { failures: 1 },
        Behaviour::NanInjection { fraction: 0.02 },
        Behaviour::MissingVariables {
            variables: vec![Variable::Q, Variable::V10],
        },
        Behaviour::Climatology,
    ]
}

/// The standard mix of `n` miners (uids 1..=n): the special behaviours — GFS clone, tampered,
/// offline, flaky (one failed attempt), NaN injection (2 %), missing q and 10v, climatology —
/// as many as fit while leaving at least 3 skilled miners (all 7 from n = 10), and skilled
/// miners with error scales spread geometrically from 0.25 to 2.0. Behaviours are assigned to
/// uids in a seeded random order.
pub fn standard_mix(n: usize, seed: u64) -> Vec<MinerSpec> {
    let n = n.min(256);
    let special_count = n.saturating_sub(3).min(specials().len());
    let skilled = n - special_count;
    let mut behaviours: Vec<Behaviour> = specials().into_iter().take(special_count).collect();
    for k in 0..skilled {
        let error_scale = if skilled == 1 {
            0.5
        } else {
            0.25 * 8f64.powf(k as f64 / (skilled - 1) as f64)
        };
        // two decimals keep the spec readable
        let error_scale = (error_scale * 100.0).round() / 100.0;
        behaviours.push(Behaviour::Skilled { error_scale });
    }
    let mut rng = Rng::new(key(&[seed, 0x006d_6978]));
    for i in (1..behaviours.len()).rev() {
        let j = rng.int(0, i as u64) as usize;
        behaviours.swap(i, j);
    }
    behaviours
        .into_iter()
        .enumerate()
        .map(|(i, behaviour)| MinerSpec {
            uid: (i + 1) as u16,
            behaviour,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_is_valid_and_round_trips() {
        let spec = WorldSpec::default();
        spec.validate().unwrap();
        assert_eq!(spec.miners.len(), 24);
        let json = serde_json::to_string(&spec).unwrap();
        let back: WorldSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
        // partial specs take defaults
        let partial: WorldSpec = serde_json::from_str(r#"{"resolution_deg": 10.0}"#).unwrap();
        assert_eq!(partial.steps, 40);
        assert!(serde_json::from_str::<WorldSpec>(r#"{"resolution": 10.0}"#).is_err());
    }

    #[test]
    fn standard_mix_has_every_special_from_ten_miners() {
        let mix = standard_mix(10, 1);
        let names: Vec<&str> = mix.iter().map(|m| m.behaviour.name()).collect();
        for special in specials() {
            assert!(names.contains(&special.name()), "{names:?}");
        }
        assert_eq!(names.iter().filter(|n| **n == "skilled").count(), 3);
        let small = standard_mix(4, 1);
        assert_eq!(small.len(), 4);
        assert_eq!(
            small
                .iter()
                .filter(|m| m.behaviour.name() == "skilled")
                .count(),
            3
        );
        let uids: Vec<u16> = mix.iter().map(|m| m.uid).collect();
        assert_eq!(uids, (1..=10).collect::<Vec<u16>>());
        assert_eq!(standard_mix(10, 1), mix, "deterministic");
    }

    #[test]
    fn invalid_specs_are_refused_with_a_reason() {
        let cases: Vec<(WorldSpec, &str)> = vec![
            (
                WorldSpec {
                    resolution_deg: 7.0,
                    ..WorldSpec::small(4)
                },
                "divide 180",
            ),
            (
                WorldSpec {
                    gfs_init: "2025-01-01T03:00:00Z".parse().unwrap(),
                    ..WorldSpec::small(4)
                },
                "GFS cycle",
            ),
            (
                WorldSpec {
                    era5_leads: vec![72],
                    ..WorldSpec::small(4)
                },
                "up to 48 h",
            ),
            (
                WorldSpec {
                    miners: vec![
                        MinerSpec {
                            uid: 3,
                            behaviour: Behaviour::Offline,
                        },
                        MinerSpec {
                            uid: 3,
                            behaviour: Behaviour::GfsClone,
                        },
                    ],
                    ..WorldSpec::small(4)
                },
                "twice",
            ),
            (
                WorldSpec {
                    miners: vec![MinerSpec {
                        uid: 1,
                        behaviour: Behaviour::NanInjection { fraction: 0.0 },
                    }],
                    ..WorldSpec::small(4)
                },
                "fraction",
            ),
        ];
        for (spec, needle) in cases {
            let err = spec.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }
}
