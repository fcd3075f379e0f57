//! NOAA's key layout of a GFS archive: where the GRIB2 file and the `.idx` of a cycle and lead
//! live (docs/data.md §3.1). Part of the format: a mirror, a local tree and the writer use the
//! same names.

use chrono::{DateTime, Timelike, Utc};

/// The 0.25° pressure-level product.
pub const PRODUCT_0P25: &str = "pgrb2.0p25";

/// Key layout of a GFS archive: `gfs.YYYYMMDD/HH/atmos/gfs.tHHz.<product>.fFFF` (+ `.idx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GfsLayout {
    /// Product name in the file name, `pgrb2.0p25` on NOAA's bucket.
    pub product: String,
}

impl Default for GfsLayout {
    fn default() -> Self {
        GfsLayout {
            product: PRODUCT_0P25.to_owned(),
        }
    }
}

impl GfsLayout {
    /// A layout with another product name (e.g. a coarse local tree).
    pub fn with_product(product: impl Into<String>) -> Self {
        GfsLayout {
            product: product.into(),
        }
    }

    /// The GRIB2 object key of cycle `init`, lead `lead_hours`. The cycle must be on the hour;
    /// wx-data's GFS sources check 00/06/12/18 before calling this.
    pub fn key(&self, init: DateTime<Utc>, lead_hours: u32) -> String {
        format!(
            "gfs.{}/{:02}/atmos/gfs.t{:02}z.{}.f{:03}",
            init.format("%Y%m%d"),
            init.hour(),
            init.hour(),
            self.product,
            lead_hours
        )
    }

    /// The `.idx` key beside [`GfsLayout::key`].
    pub fn idx_key(&self, init: DateTime<Utc>, lead_hours: u32) -> String {
        format!("{}.idx", self.key(init, lead_hours))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_noaas_layout() {
        let init: DateTime<Utc> = "2025-01-01T06:00:00Z".parse().unwrap();
        assert_eq!(
            GfsLayout::default().key(init, 12),
            "gfs.20250101/06/atmos/gfs.t06z.pgrb2.0p25.f012"
        );
        assert_eq!(
            GfsLayout::with_product("pgrb2.5p00").idx_key(init, 384),
            "gfs.20250101/06/atmos/gfs.t06z.pgrb2.5p00.f384.idx"
        );
    }
}
