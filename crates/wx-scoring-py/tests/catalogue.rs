//! The Python package's copy of the validator's catalogue (`python/wx_scoring/catalogue.json`)
//! must say exactly what wx-model says: variable keys, accepted names, long names, units and
//! their spellings, dimension names, levels, the hPa/Pa rule and the default selections.

use serde_json::Value;
use wx_model::catalogue::{
    self, LATITUDE_DIMENSION_NAMES, LEVEL_DIMENSION_NAMES, LONGITUDE_DIMENSION_NAMES,
    PA_LEVEL_THRESHOLD, PRESSURE_LEVELS_HPA, TIME_DIMENSION_NAMES, VarLevel, Variable,
};

fn json() -> Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/wx_scoring/catalogue.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("catalogue.json")).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

fn numbers(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|n| n.as_u64().expect("a whole number"))
        .collect()
}

#[test]
fn variables_match_wx_model() {
    let j = json();
    let vars = j["variables"].as_object().unwrap();
    let keys: Vec<&str> = vars.keys().map(String::as_str).collect();
    let mut expected: Vec<&str> = Variable::ALL.iter().map(|v| v.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    expected.sort_unstable();
    assert_eq!(sorted, expected, "the same variable keys");
    for v in Variable::ALL {
        let e = &vars[v.as_str()];
        assert_eq!(e["surface"].as_bool(), Some(v.is_surface()), "{v}: surface");
        assert_eq!(e["units"].as_str(), Some(v.canonical_units()), "{v}: units");
        assert_eq!(
            e["long_name"].as_str(),
            Some(v.long_name()),
            "{v}: long name"
        );
        assert_eq!(
            strings(&e["accepted_names"]),
            v.accepted_names(),
            "{v}: names"
        );
    }
}

#[test]
fn dimensions_levels_and_selections_match_wx_model() {
    let j = json();
    assert_eq!(strings(&j["level_dimension_names"]), LEVEL_DIMENSION_NAMES);
    assert_eq!(
        strings(&j["latitude_dimension_names"]),
        LATITUDE_DIMENSION_NAMES
    );
    assert_eq!(
        strings(&j["longitude_dimension_names"]),
        LONGITUDE_DIMENSION_NAMES
    );
    assert_eq!(strings(&j["time_dimension_names"]), TIME_DIMENSION_NAMES);
    let levels: Vec<u64> = PRESSURE_LEVELS_HPA.iter().map(|l| u64::from(*l)).collect();
    assert_eq!(numbers(&j["pressure_levels_hpa"]), levels);
    assert_eq!(j["pa_level_threshold"].as_f64(), Some(PA_LEVEL_THRESHOLD));
    let keys = |v: Vec<VarLevel>| v.iter().map(VarLevel::key).collect::<Vec<_>>();
    assert_eq!(
        strings(&j["day1_variables"]),
        keys(catalogue::default_day1_variables())
    );
    assert_eq!(
        strings(&j["era5_variables"]),
        keys(catalogue::default_era5_variables())
    );
    let leads = |v: Vec<u32>| v.into_iter().map(u64::from).collect::<Vec<_>>();
    assert_eq!(
        numbers(&j["day1_leads"]),
        leads(catalogue::default_day1_leads())
    );
    assert_eq!(
        numbers(&j["era5_leads"]),
        leads(catalogue::default_era5_leads())
    );
}

#[test]
fn unit_spellings_normalise_as_in_wx_model() {
    let j = json();
    let spellings = j["unit_spellings"].as_object().unwrap();
    assert!(spellings.len() >= 20);
    for (spelling, unit) in spellings {
        assert_eq!(
            catalogue::normalise_units(spelling),
            unit.as_str().unwrap(),
            "spelling `{spelling}`"
        );
    }
    // every canonical unit is reachable, and an unknown spelling is kept as written
    for v in Variable::ALL {
        assert!(
            spellings
                .values()
                .any(|u| u.as_str() == Some(v.canonical_units())),
            "{v}"
        );
    }
    assert_eq!(catalogue::normalise_units(" degC "), "degC");
}
