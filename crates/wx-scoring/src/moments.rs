//! Weighted moments with deterministic pairwise (Chan et al.) merging.
//!
//! Centred second moments are never formed as `Σw x² − (Σw x)²/W` over a whole
//! field. Each row is accumulated relative to a shift (a data value of that
//! row), converted to a centred row moment, and rows are merged with Chan's
//! update in a fixed order. This keeps near-degenerate fields (tiny anomalies
//! on a large offset) exact enough for the relative ACC floor of the spec.

use serde::{Deserialize, Serialize};

/// Weighted mean and centred second moment of one quantity.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Moments {
    /// Total weight Σw.
    pub w: f64,
    /// Weighted mean Σw·x / Σw (0 when `w == 0`).
    pub mean: f64,
    /// Centred weighted sum of squares Σw·(x − mean)².
    pub m2: f64,
}

impl Moments {
    /// From unweighted row sums relative to `shift`: `count` points with
    /// `s1 = Σ(x − shift)`, `s2 = Σ(x − shift)²`, all carrying weight `w`.
    #[inline]
    pub(crate) fn from_shifted(w: f64, count: f64, shift: f64, s1: f64, s2: f64) -> Self {
        if count == 0.0 || w == 0.0 {
            return Self::default();
        }
        let d = s1 / count;
        Self {
            w: w * count,
            mean: shift + d,
            m2: w * (s2 - s1 * d).max(0.0),
        }
    }

    /// Merge `other` into `self` (Chan's parallel update). Deterministic for a
    /// fixed merge order.
    #[inline]
    pub(crate) fn merge(&mut self, other: &Self) {
        if other.w == 0.0 {
            return;
        }
        if self.w == 0.0 {
            *self = *other;
            return;
        }
        let w = self.w + other.w;
        let delta = other.mean - self.mean;
        let f = other.w / w;
        self.mean += delta * f;
        self.m2 += other.m2 + delta * delta * self.w * f;
        self.w = w;
    }

    /// Weighted population variance `m2 / w` (NaN when `w == 0`).
    pub fn variance(&self) -> f64 {
        if self.w > 0.0 {
            self.m2 / self.w
        } else {
            f64::NAN
        }
    }
}

/// Weighted means, centred second moments and co-moment of a pair (x, y).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CoMoments {
    /// Total weight Σw.
    pub w: f64,
    /// Weighted mean of x.
    pub mean_x: f64,
    /// Weighted mean of y.
    pub mean_y: f64,
    /// Σw·(x − x̄)².
    pub m2_x: f64,
    /// Σw·(y − ȳ)².
    pub m2_y: f64,
    /// Σw·(x − x̄)(y − ȳ).
    pub c_xy: f64,
}

impl CoMoments {
    /// From unweighted shifted row sums (see [`Moments::from_shifted`]).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn from_shifted(
        w: f64,
        count: f64,
        kx: f64,
        ky: f64,
        sx: f64,
        sy: f64,
        sxx: f64,
        syy: f64,
        sxy: f64,
    ) -> Self {
        if count == 0.0 || w == 0.0 {
            return Self::default();
        }
        let dx = sx / count;
        let dy = sy / count;
        Self {
            w: w * count,
            mean_x: kx + dx,
            mean_y: ky + dy,
            m2_x: w * (sxx - sx * dx).max(0.0),
            m2_y: w * (syy - sy * dy).max(0.0),
            c_xy: w * (sxy - sx * dy),
        }
    }

    /// Merge `other` into `self` (Chan's update for co-moments).
    #[inline]
    pub(crate) fn merge(&mut self, other: &Self) {
        if other.w == 0.0 {
            return;
        }
        if self.w == 0.0 {
            *self = *other;
            return;
        }
        let w = self.w + other.w;
        let dx = other.mean_x - self.mean_x;
        let dy = other.mean_y - self.mean_y;
        let f = other.w / w;
        let g = self.w * f;
        self.mean_x += dx * f;
        self.mean_y += dy * f;
        self.m2_x += other.m2_x + dx * dx * g;
        self.m2_y += other.m2_y + dy * dy * g;
        self.c_xy += other.c_xy + dx * dy * g;
        self.w = w;
    }

    /// Weighted centred Pearson correlation, clipped to [−1, 1]; `None` when
    /// either variance is 0 or the result is not finite.
    pub fn correlation(&self) -> Option<f64> {
        if !(self.m2_x > 0.0 && self.m2_y > 0.0) {
            return None;
        }
        let r = self.c_xy / (self.m2_x.sqrt() * self.m2_y.sqrt());
        r.is_finite().then(|| r.clamp(-1.0, 1.0))
    }
}
