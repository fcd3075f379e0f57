//! The `WX_*` environment namespace: every variable in it must be a configuration key
//! (`WX_DATABASE_URL`, `WX_PIPELINE__TEST_MODE`, …) or one of the few variables the programs
//! and the test harness read themselves. Anything else is a mistake — a misspelt
//! `WX_DATABSE_URL` used to be ignored and the daemon ran on a default database — so it is an
//! error naming the closest known variable.

use crate::config::ValidatorConfig;

/// `WX_*` variables that are not configuration keys: read by the binaries (`WX_CONFIG`, the
/// log settings, `wx-step score`'s token) or by the test and benchmark harness.
pub const OTHER_WX_VARIABLES: [&str; 12] = [
    "WX_CONFIG",
    "WX_LOG",
    "WX_LOG_JSON",
    "WX_STEP_TOKEN",
    "WX_TEST_PG_URL",
    "WX_REPORT_TEST_OUT",
    "WX_BENCH_ONLY",
    "WX_BENCH_WORKERS",
    "WX_CACHE_HELPER",
    "WX_CACHE_ROOT",
    "WX_CACHE_COUNTER",
    "WX_CACHE_ARG",
];

/// Prefixes reserved for the test and benchmark harness, and for the build's provenance
/// (`WX_BUILD_GIT_COMMIT`, `WX_BUILD_RUSTC`: set by wx-validator's build script, which Cargo
/// also exports to the processes that `cargo test` and `cargo run` start).
pub const HARNESS_PREFIXES: [&str; 3] = ["WX_TEST_", "WX_BENCH_", "WX_BUILD_"];

/// A `WX_*` variable that configures nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariable {
    /// The variable's name.
    pub name: String,
    /// The closest known variable, when one is close enough to be a likely typo.
    pub closest: Option<String>,
}

impl std::fmt::Display for UnknownVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown environment variable {}", self.name)?;
        if let Some(closest) = &self.closest {
            write!(f, " (did you mean {closest}?)")?;
        }
        Ok(())
    }
}

/// The names of every configuration key as a variable (`WX_PIPELINE__LEASE_SECONDS`), and the
/// prefixes under which any name is a key (maps such as `WX_PIPELINE__RETRY__…`).
fn config_variables() -> (Vec<String>, Vec<String>) {
    let mut names = Vec::new();
    let mut open_prefixes = Vec::new();
    if let Ok(value) = serde_json::to_value(ValidatorConfig::default()) {
        collect("WX", &value, &mut names, &mut open_prefixes);
    }
    (names, open_prefixes)
}

fn collect(
    path: &str,
    value: &serde_json::Value,
    names: &mut Vec<String>,
    open_prefixes: &mut Vec<String>,
) {
    let separator = if path == "WX" { "_" } else { "__" };
    match value {
        // an empty map by default: its keys are the operator's (e.g. `[pipeline.retry]`)
        serde_json::Value::Object(map) if map.is_empty() => {
            open_prefixes.push(format!("{path}__"));
            names.push(path.to_owned());
        }
        serde_json::Value::Object(map) => {
            names.push(path.to_owned());
            for (key, child) in map {
                let child_path = format!("{path}{separator}{}", key.to_ascii_uppercase());
                collect(&child_path, child, names, open_prefixes);
            }
        }
        _ => names.push(path.to_owned()),
    }
}

/// The `WX_*` variables among `variables` that are neither configuration keys nor known to the
/// programs or the harness, each with the closest known name.
pub fn unknown_variables<I>(variables: I) -> Vec<UnknownVariable>
where
    I: IntoIterator<Item = String>,
{
    let (mut known, open_prefixes) = config_variables();
    known.retain(|n| n != "WX");
    known.extend(OTHER_WX_VARIABLES.iter().map(|s| s.to_string()));
    let mut unknown = Vec::new();
    for name in variables {
        let upper = name.to_ascii_uppercase();
        if !upper.starts_with("WX_") {
            continue;
        }
        let is_known = known.contains(&upper)
            || open_prefixes.iter().any(|p| upper.starts_with(p))
            || HARNESS_PREFIXES.iter().any(|p| upper.starts_with(p));
        if !is_known {
            unknown.push(UnknownVariable {
                closest: closest(&upper, &known),
                name,
            });
        }
    }
    unknown.sort_by(|a, b| a.name.cmp(&b.name));
    unknown
}

/// The known name at the smallest edit distance, if it is close enough to be a typo.
fn closest(name: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(distance, k)| *distance <= 2.max(k.len() / 4))
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)))
        .map(|(_, k)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(names: &[&str]) -> Vec<UnknownVariable> {
        unknown_variables(names.iter().map(|s| s.to_string()))
    }

    #[test]
    fn configuration_keys_and_tool_variables_are_known() {
        assert!(
            check(&[
                "WX_DATABASE_URL",
                "WX_CACHE_DIR",
                "WX_PIPELINE__TEST_MODE",
                "WX_PIPELINE__CONCURRENCY__NETWORK",
                "WX_SCORING__WEIGHTS__LOOKBACK_DAYS",
                "WX_DATA__ERA5",
                "WX_METRICS_ADDR",
                "WX_PIPELINE__RETRY__ANYTHING",
                "WX_CONFIG",
                "WX_LOG",
                "WX_LOG_JSON",
                "WX_TEST_PG_URL",
                "WX_TEST_SOMETHING_NEW",
                "WX_BUILD_GIT_COMMIT",
                "WX_BUILD_RUSTC",
                "HOME",
                "wx_database_url",
            ])
            .is_empty()
        );
    }

    #[test]
    fn a_typo_names_the_closest_known_variable() {
        let found = check(&[
            "WX_DATABSE_URL",
            "WX_PIPELINE__LEASE_SECS",
            "WX_ZZZ_QQQ_XYZ",
        ]);
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].closest.as_deref(), Some("WX_DATABASE_URL"));
        assert_eq!(
            found[0].to_string(),
            "unknown environment variable WX_DATABSE_URL (did you mean WX_DATABASE_URL?)"
        );
        assert_eq!(
            found[1].closest.as_deref(),
            Some("WX_PIPELINE__LEASE_SECONDS")
        );
        assert_eq!(found[2].closest, None, "nothing is close");
    }
}
