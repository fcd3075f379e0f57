//! The variable, level and lead catalogue of docs/scoring.md §1.
//!
//! Canonical variable keys, the names accepted in forecast, truth and climatology stores, their
//! canonical units, the pressure levels and the default Day1/ERA5 selections.

use crate::text_enum;
use serde::{Deserialize, Serialize};
use std::fmt;

text_enum! {
    /// A forecast variable by its canonical key.
    pub enum Variable ("variable") {
        /// 2 m temperature, K.
        T2m => "2t",
        /// 10 m u wind, m s-1.
        U10 => "10u",
        /// 10 m v wind, m s-1.
        V10 => "10v",
        /// Mean sea level pressure, Pa.
        Msl => "msl",
        /// Temperature on pressure levels, K.
        T => "t",
        /// u wind on pressure levels, m s-1.
        U => "u",
        /// v wind on pressure levels, m s-1.
        V => "v",
        /// Specific humidity on pressure levels, kg kg-1.
        Q => "q",
        /// Geopotential on pressure levels, m2 s-2.
        Z => "z",
    }
}

impl Variable {
    /// Whether the variable is a single-level (surface) field.
    pub const fn is_surface(self) -> bool {
        matches!(
            self,
            Variable::T2m | Variable::U10 | Variable::V10 | Variable::Msl
        )
    }

    /// The canonical unit, in the normalised spelling of [`normalise_units`].
    pub const fn canonical_units(self) -> &'static str {
        match self {
            Variable::T2m | Variable::T => "K",
            Variable::U10 | Variable::V10 | Variable::U | Variable::V => "m s-1",
            Variable::Msl => "Pa",
            Variable::Q => "kg kg-1",
            Variable::Z => "m2 s-2",
        }
    }

    /// Every name under which the variable is accepted, canonical key first. `sp` (surface
    /// pressure) is deliberately not an alias of `msl`.
    pub const fn accepted_names(self) -> &'static [&'static str] {
        match self {
            Variable::T2m => &["2t", "t2m", "2m_temperature", "temperature_2m"],
            Variable::U10 => &["10u", "u10", "10m_u_component_of_wind"],
            Variable::V10 => &["10v", "v10", "10m_v_component_of_wind"],
            Variable::Msl => &["msl", "mean_sea_level_pressure"],
            Variable::T => &["t", "temperature"],
            Variable::U => &["u", "u_component_of_wind"],
            Variable::V => &["v", "v_component_of_wind"],
            Variable::Q => &["q", "specific_humidity"],
            Variable::Z => &["z", "geopotential"],
        }
    }

    /// The long name used by ARCO-ERA5 and WeatherBench2 stores.
    pub const fn long_name(self) -> &'static str {
        match self {
            Variable::T2m => "2m_temperature",
            Variable::U10 => "10m_u_component_of_wind",
            Variable::V10 => "10m_v_component_of_wind",
            Variable::Msl => "mean_sea_level_pressure",
            Variable::T => "temperature",
            Variable::U => "u_component_of_wind",
            Variable::V => "v_component_of_wind",
            Variable::Q => "specific_humidity",
            Variable::Z => "geopotential",
        }
    }

    /// The variable a store name denotes, if any (exact match on [`Variable::accepted_names`]).
    pub fn from_store_name(name: &str) -> Option<Variable> {
        Variable::ALL
            .iter()
            .copied()
            .find(|v| v.accepted_names().contains(&name))
    }
}

/// Names accepted for the pressure-level dimension.
pub const LEVEL_DIMENSION_NAMES: &[&str] = &["pressure_level", "level", "plev", "lev"];
/// Names accepted for the latitude dimension.
pub const LATITUDE_DIMENSION_NAMES: &[&str] = &["latitude", "lat"];
/// Names accepted for the longitude dimension.
pub const LONGITUDE_DIMENSION_NAMES: &[&str] = &["longitude", "lon"];
/// Names accepted for the time dimension.
pub const TIME_DIMENSION_NAMES: &[&str] = &["time", "valid_time"];

/// Standard gravity, m s-2 (geopotential = g · geopotential height).
pub const STANDARD_GRAVITY: f64 = 9.80665;

/// A pressure level in hPa.
pub type Level = u16;

/// The 13 pressure levels scored (hPa), ascending.
pub const PRESSURE_LEVELS_HPA: [Level; 13] = [
    50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000,
];

/// Level coordinate values above this are taken to be in Pa and divided by 100.
pub const PA_LEVEL_THRESHOLD: f64 = 2000.0;

/// Converts a level coordinate value to hPa (Pa is detected by magnitude, docs/scoring.md §1.2).
/// Returns `None` for values that are not a positive whole number of hPa.
pub fn level_to_hpa(value: f64) -> Option<Level> {
    if !value.is_finite() || value <= 0.0 {
        return None;
    }
    let hpa = if value > PA_LEVEL_THRESHOLD {
        value / 100.0
    } else {
        value
    };
    let rounded = hpa.round();
    if (hpa - rounded).abs() > 1e-6 || rounded > f64::from(Level::MAX) {
        return None;
    }
    Some(rounded as Level)
}

/// A variable, optionally at one pressure level (`z500`), or all levels of a multi-level variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarLevel {
    /// The variable.
    pub variable: Variable,
    /// `Some(p)` selects one level; `None` means the surface field or all levels.
    pub level: Option<Level>,
}

impl VarLevel {
    /// A surface variable, or all levels of a multi-level variable.
    pub const fn all(variable: Variable) -> Self {
        VarLevel {
            variable,
            level: None,
        }
    }

    /// One level of a multi-level variable.
    pub const fn at(variable: Variable, level: Level) -> Self {
        VarLevel {
            variable,
            level: Some(level),
        }
    }

    /// The key used in scores and configuration: `2t`, `z`, `z500`.
    pub fn key(&self) -> String {
        match self.level {
            Some(l) => format!("{}{}", self.variable.as_str(), l),
            None => self.variable.as_str().to_owned(),
        }
    }

    /// Parses `2t`, `z` or `z500` (a level only on multi-level variables).
    pub fn parse(s: &str) -> Result<VarLevel, crate::ParseEnumError> {
        if let Ok(v) = s.parse::<Variable>() {
            return Ok(VarLevel::all(v));
        }
        let split = s.find(|c: char| c.is_ascii_digit()).unwrap_or(s.len());
        let (name, digits) = s.split_at(split);
        match (name.parse::<Variable>(), digits.parse::<Level>()) {
            (Ok(v), Ok(l)) if !v.is_surface() && PRESSURE_LEVELS_HPA.contains(&l) => {
                Ok(VarLevel::at(v, l))
            }
            _ => Err(crate::ParseEnumError {
                what: "variable selection",
                value: s.to_owned(),
                expected: "a variable key (2t, 10u, 10v, msl, t, u, v, q, z) or a level of \
                           t/u/v/q/z in hPa (e.g. z500)"
                    .to_owned(),
            }),
        }
    }

    /// The levels this selection scores: none for a surface variable, one for `z500`, all 13 for
    /// a bare multi-level variable.
    pub fn levels(&self) -> Vec<Level> {
        match (self.variable.is_surface(), self.level) {
            (true, _) => Vec::new(),
            (false, Some(l)) => vec![l],
            (false, None) => PRESSURE_LEVELS_HPA.to_vec(),
        }
    }
}

impl fmt::Display for VarLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl Serialize for VarLevel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.key())
    }
}

impl<'de> Deserialize<'de> for VarLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        VarLevel::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Day1 variables (docs/scoring.md §1.4): 2t, msl, 10u, 10v, z500.
pub fn default_day1_variables() -> Vec<VarLevel> {
    vec![
        VarLevel::all(Variable::T2m),
        VarLevel::all(Variable::Msl),
        VarLevel::all(Variable::U10),
        VarLevel::all(Variable::V10),
        VarLevel::at(Variable::Z, 500),
    ]
}

/// Day1 leads in hours: `[12]`.
pub fn default_day1_leads() -> Vec<u32> {
    vec![12]
}

/// ERA5 variables: the four surface variables and t, u, v, q, z on all 13 levels.
pub fn default_era5_variables() -> Vec<VarLevel> {
    Variable::ALL.iter().map(|v| VarLevel::all(*v)).collect()
}

/// ERA5 leads in hours: 24, 48, …, 240.
pub fn default_era5_leads() -> Vec<u32> {
    (1..=10).map(|d| d * 24).collect()
}

/// The ERA5 leads that have a fixed `era5_score_<lead>h` column in `weather_forecast_stats`.
pub const STATS_LEAD_COLUMNS: [u32; 10] = [24, 48, 72, 96, 120, 144, 168, 192, 216, 240];

/// Normalises a `units` attribute to the spelling of [`Variable::canonical_units`].
///
/// Spelling variants are unified (`m s**-1`, `m/s`, `m s^-1` → `m s-1`; `kelvin` → `K`;
/// `pascal` → `Pa`; `m**2 s**-2` → `m2 s-2`; `kg/kg` → `kg kg-1`). No conversion between
/// different units is ever implied: `hPa` stays `hPa` and will not match `Pa`.
pub fn normalise_units(units: &str) -> String {
    let lowered = units.trim().to_ascii_lowercase();
    let compact: String = lowered
        .replace("**", "")
        .replace('^', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match compact.as_str() {
        "k" | "kelvin" | "degk" | "deg k" => "K".to_owned(),
        "pa" | "pascal" | "pascals" => "Pa".to_owned(),
        "hpa" => "hPa".to_owned(),
        "m s-1" | "m/s" | "ms-1" | "m.s-1" | "meter second-1" | "metre second-1"
        | "meters per second" | "metres per second" => "m s-1".to_owned(),
        "m2 s-2" | "m2/s2" | "m2s-2" | "m2.s-2" => "m2 s-2".to_owned(),
        "kg kg-1" | "kg/kg" | "kgkg-1" | "1" => "kg kg-1".to_owned(),
        _ => units.trim().to_owned(),
    }
}

/// Checks a store's `units` attribute against the variable's canonical unit. Missing units are
/// accepted (docs/scoring.md §1.3); a mismatch is an error that says what was found and expected.
pub fn check_units(variable: Variable, units: Option<&str>) -> Result<(), UnitsMismatch> {
    match units {
        None => Ok(()),
        Some(u) if u.trim().is_empty() => Ok(()),
        Some(u) => {
            let found = normalise_units(u);
            if found == variable.canonical_units() {
                Ok(())
            } else {
                Err(UnitsMismatch {
                    variable,
                    found: u.to_owned(),
                    expected: variable.canonical_units(),
                })
            }
        }
    }
}

/// A `units` attribute that names a unit other than the variable's canonical one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "variable {variable} has units `{found}` but wx scores it in `{expected}`; \
     write the store in {expected} (no unit conversion is guessed)"
)]
pub struct UnitsMismatch {
    /// The variable.
    pub variable: Variable,
    /// The attribute as found.
    pub found: String,
    /// The canonical unit.
    pub expected: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_and_sp_is_not_msl() {
        assert_eq!(Variable::from_store_name("t2m"), Some(Variable::T2m));
        assert_eq!(
            Variable::from_store_name("2m_temperature"),
            Some(Variable::T2m)
        );
        assert_eq!(
            Variable::from_store_name("mean_sea_level_pressure"),
            Some(Variable::Msl)
        );
        assert_eq!(Variable::from_store_name("sp"), None);
        assert_eq!(Variable::from_store_name("geopotential"), Some(Variable::Z));
    }

    #[test]
    fn var_levels_parse_and_print() {
        assert_eq!(
            VarLevel::parse("z500").unwrap(),
            VarLevel::at(Variable::Z, 500)
        );
        assert_eq!(VarLevel::parse("2t").unwrap(), VarLevel::all(Variable::T2m));
        assert_eq!(VarLevel::parse("10u").unwrap().key(), "10u");
        assert!(
            VarLevel::parse("2t500").is_err(),
            "surface variables have no level"
        );
        assert!(
            VarLevel::parse("z123").is_err(),
            "only the 13 scored levels"
        );
        assert!(VarLevel::parse("sp").is_err());
        assert_eq!(VarLevel::all(Variable::T).levels().len(), 13);
        assert_eq!(VarLevel::at(Variable::Z, 500).levels(), vec![500]);
        assert!(VarLevel::all(Variable::Msl).levels().is_empty());
    }

    #[test]
    fn levels_in_pa_are_detected() {
        assert_eq!(level_to_hpa(500.0), Some(500));
        assert_eq!(level_to_hpa(50000.0), Some(500));
        assert_eq!(level_to_hpa(100000.0), Some(1000));
        assert_eq!(level_to_hpa(2000.0), Some(2000));
        assert_eq!(level_to_hpa(f64::NAN), None);
        assert_eq!(level_to_hpa(-5.0), None);
        assert_eq!(level_to_hpa(500.5), None);
    }

    #[test]
    fn unit_spellings_are_normalised_without_conversion() {
        assert!(check_units(Variable::U10, Some("m s**-1")).is_ok());
        assert!(check_units(Variable::U, Some("m/s")).is_ok());
        assert!(check_units(Variable::T2m, Some("kelvin")).is_ok());
        assert!(check_units(Variable::Z, Some("m**2 s**-2")).is_ok());
        assert!(check_units(Variable::Q, Some("kg/kg")).is_ok());
        assert!(check_units(Variable::Msl, None).is_ok());
        let err = check_units(Variable::Msl, Some("hPa")).unwrap_err();
        assert!(err.to_string().contains("Pa"), "{err}");
        assert!(check_units(Variable::T2m, Some("degC")).is_err());
    }

    #[test]
    fn default_selections_match_the_spec() {
        let keys: Vec<String> = default_day1_variables().iter().map(VarLevel::key).collect();
        assert_eq!(keys, ["2t", "msl", "10u", "10v", "z500"]);
        assert_eq!(default_era5_variables().len(), 9);
        assert_eq!(default_era5_leads(), STATS_LEAD_COLUMNS.to_vec());
    }
}
