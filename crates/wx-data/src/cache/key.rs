//! Cache keys and the file names derived from them.

use super::CacheError;
use crate::field::Field;
use chrono::{DateTime, Timelike, Utc};
use std::fmt;
use std::path::PathBuf;
use wx_model::{Level, Variable};

/// Longest source id segment.
const MAX_SEGMENT_CHARS: usize = 64;
/// Most segments in a source id.
const MAX_SEGMENTS: usize = 4;

/// What a cached field is: (source, variable, level set, valid time).
///
/// `source` is one or more `/`-separated segments of ASCII letters, digits, `-`, `_` and `.`
/// (not starting with `.`), e.g. `gfs-analysis`, `gfs-fcst/2025010100`, `era5-arco`,
/// `wb2-clim/run-17`. It must identify the product completely: a GFS forecast valid at V
/// and the GFS analysis at V are different data, so the forecast's source id includes its
/// cycle. The segments are directories; [`super::DiskCache::remove_group`] removes a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey {
    source: String,
    variable: Variable,
    levels: Vec<Level>,
    valid_time: DateTime<Utc>,
}

/// Checks a source id or group prefix: safe path segments only.
pub(crate) fn validate_source(source: &str) -> Result<Vec<&str>, CacheError> {
    let invalid = |why: &str| CacheError::InvalidKey {
        reason: format!(
            "source id `{}` {why}; use 1-{MAX_SEGMENTS} `/`-separated segments of letters, digits, \
             `-`, `_`, `.` not starting with `.`",
            source.chars().take(100).collect::<String>()
        ),
    };
    let segments: Vec<&str> = source.split('/').collect();
    if segments.len() > MAX_SEGMENTS {
        return Err(invalid("has too many segments"));
    }
    for s in &segments {
        if s.is_empty() {
            return Err(invalid("has an empty segment"));
        }
        if s.len() > MAX_SEGMENT_CHARS {
            return Err(invalid("has a segment that is too long"));
        }
        if s.starts_with('.') {
            return Err(invalid("has a segment starting with `.`"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(invalid("has a character outside [A-Za-z0-9._-]"));
        }
    }
    Ok(segments)
}

impl CacheKey {
    /// A key. Levels are in hPa in the order the field holds them (empty for surface fields);
    /// the valid time must be whole seconds.
    pub fn new(
        source: &str,
        variable: Variable,
        levels: Vec<Level>,
        valid_time: DateTime<Utc>,
    ) -> Result<CacheKey, CacheError> {
        validate_source(source)?;
        if valid_time.nanosecond() != 0 {
            return Err(CacheError::InvalidKey {
                reason: format!("valid time {valid_time} is not whole seconds"),
            });
        }
        if variable.is_surface() != levels.is_empty() {
            return Err(CacheError::InvalidKey {
                reason: format!(
                    "{variable} with levels {levels:?}: surface variables have no levels, \
                     multi-level variables at least one"
                ),
            });
        }
        Ok(CacheKey {
            source: source.to_owned(),
            variable,
            levels,
            valid_time,
        })
    }

    /// The key a field would be stored under for `source`.
    pub fn for_field(source: &str, field: &Field) -> Result<CacheKey, CacheError> {
        CacheKey::new(
            source,
            field.variable,
            field.levels.clone(),
            field.valid_time,
        )
    }

    /// The source id.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variable.
    pub fn variable(&self) -> Variable {
        self.variable
    }

    /// The levels (hPa), empty for a surface field.
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// The valid time.
    pub fn valid_time(&self) -> DateTime<Utc> {
        self.valid_time
    }

    /// The directory of the entry relative to the cache root:
    /// `<source segments>/<YYYYMMDDTHHMMSSZ>`.
    pub(crate) fn relative_dir(&self) -> PathBuf {
        let mut p = PathBuf::new();
        for s in self.source.split('/') {
            p.push(s);
        }
        p.push(self.valid_time.format("%Y%m%dT%H%M%SZ").to_string());
        p
    }

    /// The entry's base name: `<variable>-<levels>` (`2t-sfc`, `z-500`, `t-50_100_…_1000`).
    pub(crate) fn entry_stem(&self) -> String {
        let levels = if self.levels.is_empty() {
            "sfc".to_owned()
        } else {
            self.levels
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join("_")
        };
        format!("{}-{levels}", self.variable.as_str())
    }

    /// Checks that a field is the one this key names.
    pub(crate) fn check_field(&self, field: &Field) -> Result<(), super::CacheError> {
        if field.variable != self.variable
            || field.levels != self.levels
            || field.valid_time != self.valid_time
        {
            return Err(super::CacheError::KeyMismatch {
                key: self.to_string(),
                reason: format!(
                    "the field is {} at levels {:?} valid {}, the key is {self}",
                    field.variable, field.levels, field.valid_time
                ),
            });
        }
        Ok(())
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.source,
            self.valid_time.format("%Y-%m-%dT%H:%M:%SZ"),
            self.entry_stem()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Component;

    fn t() -> DateTime<Utc> {
        "2025-01-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn names_are_derived_from_safe_parts_only() {
        let k = CacheKey::new("gfs-fcst/2025010100", Variable::Z, vec![500], t()).unwrap();
        assert_eq!(
            k.relative_dir(),
            PathBuf::from("gfs-fcst/2025010100/20250101T120000Z")
        );
        assert_eq!(k.entry_stem(), "z-500");
        let k = CacheKey::new("era5", Variable::T2m, vec![], t()).unwrap();
        assert_eq!(k.entry_stem(), "2t-sfc");
        assert_eq!(k.to_string(), "era5/2025-01-01T12:00:00Z/2t-sfc");
    }

    #[test]
    fn traversal_and_odd_names_are_refused() {
        for bad in [
            "",
            "..",
            "../x",
            "a/../b",
            "/abs",
            "a//b",
            ".hidden",
            "a/.b",
            "a\\b",
            "a b",
            "a:b",
            "é",
            "a/b/c/d/e",
            "x\0y",
        ] {
            assert!(
                CacheKey::new(bad, Variable::T2m, vec![], t()).is_err(),
                "`{bad}` accepted"
            );
        }
        let long = "x".repeat(65);
        assert!(CacheKey::new(&long, Variable::T2m, vec![], t()).is_err());
        // every accepted key maps to plain relative components
        let k = CacheKey::new("a.b/c-d/e_f", Variable::Q, vec![50, 1000], t()).unwrap();
        assert!(
            k.relative_dir()
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
        );
    }

    #[test]
    fn levels_must_fit_the_variable_and_time_whole_seconds() {
        assert!(CacheKey::new("s", Variable::T2m, vec![500], t()).is_err());
        assert!(CacheKey::new("s", Variable::T, vec![], t()).is_err());
        let frac = t() + chrono::TimeDelta::milliseconds(5);
        assert!(CacheKey::new("s", Variable::T2m, vec![], frac).is_err());
    }
}
