//! Which GFS message holds which wx variable (docs/data.md §3.1).
//!
//! | wx | `.idx` variable:level | GRIB2 parameter, surface | conversion |
//! |---|---|---|---|
//! | `2t` | `TMP:2 m above ground` | 0/0/0, height above ground 2 m | – |
//! | `10u` / `10v` | `UGRD`/`VGRD:10 m above ground` | 0/2/2, 0/2/3, 10 m | – |
//! | `msl` | `PRMSL:mean sea level` | 0/3/1, mean sea level | – |
//! | `t u v q` at p | `TMP UGRD VGRD SPFH:p mb` | isobaric p hPa | – |
//! | `z` at p | `HGT:p mb` | 0/3/5, isobaric | × [`wx_model::catalogue::STANDARD_GRAVITY`] |

use super::grib::{FieldIdentity, Parameter, Surface};
use wx_model::catalogue::STANDARD_GRAVITY;
use wx_model::{Level, Variable};

/// One GRIB field wx needs: how the `.idx` names it, how the message identifies it, and the
/// factor applied to the decoded values.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRequest {
    /// The wx variable.
    pub variable: Variable,
    /// The pressure level (hPa) for multi-level variables.
    pub level: Option<Level>,
    /// The parameter as the GRIB message codes it.
    pub parameter: Parameter,
    /// The surface as the GRIB message codes it.
    pub surface: Surface,
    /// Multiplier applied to the decoded values (g for geopotential, else 1).
    pub scale: f64,
}

impl MessageRequest {
    /// The request for a variable at a level (`None` for surface variables). `None` when the
    /// combination does not exist (a level on a surface variable or vice versa).
    pub fn new(variable: Variable, level: Option<Level>) -> Option<MessageRequest> {
        let (parameter, scale) = match variable {
            Variable::T2m | Variable::T => (Parameter::TMP, 1.0),
            Variable::U10 | Variable::U => (Parameter::UGRD, 1.0),
            Variable::V10 | Variable::V => (Parameter::VGRD, 1.0),
            Variable::Msl => (Parameter::PRMSL, 1.0),
            Variable::Q => (Parameter::SPFH, 1.0),
            Variable::Z => (Parameter::HGT, STANDARD_GRAVITY),
        };
        let surface = match (variable, level) {
            (Variable::T2m, None) => Surface::HeightAboveGround(2.0),
            (Variable::U10 | Variable::V10, None) => Surface::HeightAboveGround(10.0),
            (Variable::Msl, None) => Surface::MeanSeaLevel,
            (v, Some(p)) if !v.is_surface() => Surface::Isobaric(f64::from(p)),
            _ => return None,
        };
        Some(MessageRequest {
            variable,
            level,
            parameter,
            surface,
            scale,
        })
    }

    /// The variable abbreviation in `.idx` files (`TMP`).
    pub fn idx_variable(&self) -> &'static str {
        self.parameter
            .ncep_name()
            .expect("every requested parameter has an NCEP name")
    }

    /// The level text in `.idx` files (`500 mb`, `2 m above ground`, `mean sea level`).
    pub fn idx_level(&self) -> String {
        match self.surface {
            Surface::Isobaric(p) => format!("{p} mb"),
            Surface::HeightAboveGround(m) => format!("{m} m above ground"),
            Surface::MeanSeaLevel => "mean sea level".to_owned(),
            Surface::Other(t, _) => format!("surface type {t}"),
        }
    }

    /// `TMP:500 mb`, for messages.
    pub fn describe(&self) -> String {
        format!("{}:{}", self.idx_variable(), self.idx_level())
    }

    /// Whether a decoded field is this one (parameter and surface; levels compared to 1e-6).
    pub fn matches(&self, identity: &FieldIdentity) -> bool {
        let same_surface = match (self.surface, identity.surface) {
            (Surface::Isobaric(a), Surface::Isobaric(b))
            | (Surface::HeightAboveGround(a), Surface::HeightAboveGround(b)) => {
                (a - b).abs() < 1e-6
            }
            (Surface::MeanSeaLevel, Surface::MeanSeaLevel) => true,
            _ => false,
        };
        same_surface && identity.parameter == self.parameter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_follow_the_spec_table() {
        let z = MessageRequest::new(Variable::Z, Some(500)).unwrap();
        assert_eq!(z.describe(), "HGT:500 mb");
        assert_eq!(z.scale, 9.80665);
        assert_eq!(
            MessageRequest::new(Variable::T2m, None).unwrap().describe(),
            "TMP:2 m above ground"
        );
        assert_eq!(
            MessageRequest::new(Variable::V10, None).unwrap().describe(),
            "VGRD:10 m above ground"
        );
        assert_eq!(
            MessageRequest::new(Variable::Msl, None).unwrap().describe(),
            "PRMSL:mean sea level"
        );
        assert_eq!(
            MessageRequest::new(Variable::Q, Some(850))
                .unwrap()
                .describe(),
            "SPFH:850 mb"
        );
        assert!(MessageRequest::new(Variable::T2m, Some(500)).is_none());
        assert!(MessageRequest::new(Variable::T, None).is_none());
    }
}
