//! Splitting measured run costs into what each part of the workload costs.
//!
//! One run scoring `n` miners at `l` ERA5 leads costs, in wall time or in CPU time,
//!
//! ```text
//! y(n, l) = run + n · miner + l · lead + n · l · miner_lead
//! ```
//!
//! - `run`: once per run (seeding, the GFS download of the Day1 truth, the Day1 climatology
//!   slice, the run's bookkeeping);
//! - `miner`: once per miner whatever the leads (verification, Day1, opening the store for
//!   the ERA5 step, the miner's aggregates);
//! - `lead`: once per lead whatever the miners (the ERA5 truth and the climatology of the lead,
//!   decoded once and then shared through the caches);
//! - `miner_lead`: the marginal cost the issue targets (the miner's chunks fetched over HTTP
//!   and verified, decoded, regridded, scored and written).
//!
//! Four runs on a 2 × 2 design (`n₁ < n₂` miners × `l₁ < l₂` leads) determine the four
//! coefficients exactly ([`Costs::from_corners`]). An exact fit passes each run's noise straight
//! into the coefficients (on a shared machine one slow run made a per-miner cost negative), so
//! each corner is measured several times and the fit takes the corner's median ([`median`]):
//! one disturbed run per corner then moves nothing.

/// One measured figure at each corner of the 2 × 2 design.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Corners {
    /// Fewer miners, fewer leads.
    pub few_short: f64,
    /// Fewer miners, more leads.
    pub few_long: f64,
    /// More miners, fewer leads.
    pub many_short: f64,
    /// More miners, more leads.
    pub many_long: f64,
}

/// The design's two miner counts and two lead counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Design {
    /// The smaller and the larger number of miners.
    pub miners: (u32, u32),
    /// The smaller and the larger number of ERA5 leads.
    pub leads: (u32, u32),
}

/// The cost of each part of the workload (seconds), see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Costs {
    /// Once per run.
    pub run: f64,
    /// Once per miner.
    pub miner: f64,
    /// Once per ERA5 lead.
    pub lead: f64,
    /// Once per miner and lead (the marginal cost).
    pub miner_lead: f64,
}

impl Costs {
    /// The coefficients that reproduce the four corners exactly. `None` when the design has
    /// two equal miner counts or two equal lead counts.
    pub fn from_corners(design: Design, y: Corners) -> Option<Costs> {
        let (n1, n2) = (f64::from(design.miners.0), f64::from(design.miners.1));
        let (l1, l2) = (f64::from(design.leads.0), f64::from(design.leads.1));
        if n2 <= n1 || l2 <= l1 {
            return None;
        }
        let miner_lead =
            (y.many_long - y.many_short - y.few_long + y.few_short) / ((n2 - n1) * (l2 - l1));
        let lead = (y.few_long - y.few_short) / (l2 - l1) - miner_lead * n1;
        let miner = (y.many_short - y.few_short) / (n2 - n1) - miner_lead * l1;
        let run = y.few_short - miner * n1 - lead * l1 - miner_lead * n1 * l1;
        Some(Costs {
            run,
            miner,
            lead,
            miner_lead,
        })
    }

    /// The predicted cost of a run of `miners` miners at `leads` leads.
    pub fn predict(&self, miners: u32, leads: u32) -> f64 {
        let (n, l) = (f64::from(miners), f64::from(leads));
        self.run + n * self.miner + l * self.lead + n * l * self.miner_lead
    }
}

/// The median of `values` (the mean of the two middle values of an even count); `None` when
/// empty or when a value is not a number.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_ignores_one_outlier() {
        assert_eq!(median(&[1.0, 50.0, 1.2]), Some(1.2));
        assert_eq!(median(&[3.0, 1.0, 2.0, 100.0]), Some(2.5));
        assert_eq!(median(&[4.0]), Some(4.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn corners_give_back_the_costs() {
        let truth = Costs {
            run: 7.5,
            miner: 0.3,
            lead: 1.25,
            miner_lead: 0.9,
        };
        let design = Design {
            miners: (2, 6),
            leads: (1, 2),
        };
        let y = Corners {
            few_short: truth.predict(2, 1),
            few_long: truth.predict(2, 2),
            many_short: truth.predict(6, 1),
            many_long: truth.predict(6, 2),
        };
        let fitted = Costs::from_corners(design, y).unwrap();
        for (a, b) in [
            (fitted.run, truth.run),
            (fitted.miner, truth.miner),
            (fitted.lead, truth.lead),
            (fitted.miner_lead, truth.miner_lead),
        ] {
            assert!((a - b).abs() < 1e-9, "{fitted:?} vs {truth:?}");
        }
        assert!((fitted.predict(255, 10) - truth.predict(255, 10)).abs() < 1e-6);
    }

    #[test]
    fn a_degenerate_design_is_refused() {
        let y = Corners {
            few_short: 1.0,
            few_long: 2.0,
            many_short: 3.0,
            many_long: 4.0,
        };
        let flat = Design {
            miners: (3, 3),
            leads: (1, 2),
        };
        assert_eq!(Costs::from_corners(flat, y), None);
    }
}
