//! GRIB2 decoding checked against what ecCodes decoded from the same files
//! (`testdata/gfs/expected.json`, written by `testdata/gen/make_gfs_fixtures.py`).

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use wx_grib::grib::{self, DecodedField, Surface};

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/gfs")
}

fn expected() -> Vec<Value> {
    let text = std::fs::read_to_string(testdata().join("expected.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["fields"].as_array().unwrap().clone()
}

/// Decodes every field of every message of a file: (message number, field number) -> field.
fn decode_file(rel: &str) -> BTreeMap<(u64, u64), DecodedField> {
    let bytes = std::fs::read(testdata().join(rel)).unwrap();
    let mut out = BTreeMap::new();
    for (n, message) in grib::split_messages(&bytes)
        .unwrap()
        .into_iter()
        .enumerate()
    {
        for (k, field) in grib::decode_message(message)
            .unwrap_or_else(|e| panic!("{rel} message {}: {e}", n + 1))
            .into_iter()
            .enumerate()
        {
            out.insert((n as u64 + 1, k as u64 + 1), field);
        }
    }
    out
}

/// Largest difference accepted between our f32 value and ecCodes' double: one f32 rounding
/// (the decoders agree on the packed integers; the values differ only by the f32 storage).
fn tolerance(v: f64) -> f64 {
    (v.abs() * f64::from(f32::EPSILON)).max(1e-30)
}

fn level_text(surface: &Surface) -> String {
    match surface {
        Surface::Isobaric(p) => format!("{p} mb"),
        Surface::HeightAboveGround(m) => format!("{m} m above ground"),
        Surface::MeanSeaLevel => "mean sea level".into(),
        Surface::Other(102, Some(m)) => format!("{m} m above mean sea level"),
        Surface::Other(t, _) => format!("level type {t}"),
    }
}

#[test]
fn every_field_matches_eccodes() {
    let fields = expected();
    assert!(
        fields.len() > 250,
        "the oracle lists {} fields",
        fields.len()
    );
    let mut files: BTreeMap<String, BTreeMap<(u64, u64), DecodedField>> = BTreeMap::new();
    let mut checked_probes = 0;
    for e in &fields {
        let rel = e["file"].as_str().unwrap().to_owned();
        let decoded = files
            .entry(rel.clone())
            .or_insert_with(|| decode_file(&rel));
        let key = (e["message"].as_u64().unwrap(), e["field"].as_u64().unwrap());
        let what = format!("{rel} message {} field {}", key.0, key.1);
        let d = decoded
            .get(&key)
            .unwrap_or_else(|| panic!("{what}: not decoded"));
        // the number of fields in this message agrees with ecCodes (multi-field messages)
        let in_message = decoded.keys().filter(|(m, _)| *m == key.0).count() as u64;
        assert_eq!(
            in_message,
            e["fields_in_message"].as_u64().unwrap(),
            "{what}"
        );
        // identity
        let id = &d.identity;
        assert_eq!(
            u64::from(id.parameter.discipline),
            e["discipline"].as_u64().unwrap(),
            "{what}"
        );
        assert_eq!(
            u64::from(id.parameter.category),
            e["parameter_category"].as_u64().unwrap(),
            "{what}"
        );
        assert_eq!(
            u64::from(id.parameter.number),
            e["parameter_number"].as_u64().unwrap(),
            "{what}"
        );
        assert_eq!(
            level_text(&id.surface),
            e["level"].as_str().unwrap(),
            "{what}"
        );
        assert_eq!(
            id.reference_time.format("%Y-%m-%dT%H:%M:00Z").to_string(),
            e["reference_time"].as_str().unwrap(),
            "{what}"
        );
        assert_eq!(
            id.forecast_minutes,
            e["forecast_hours"].as_i64().unwrap() * 60,
            "{what}"
        );
        assert_eq!(
            u64::from(d.data_template),
            e["data_template"].as_u64().unwrap(),
            "{what}"
        );
        // grid, from the grid definition
        let g = &d.grid;
        assert_eq!(g.ni as u64, e["ni"].as_u64().unwrap(), "{what}");
        assert_eq!(g.nj as u64, e["nj"].as_u64().unwrap(), "{what}");
        let close = |a: f64, b: &Value| (a - b.as_f64().unwrap()).abs() < 1e-6;
        assert!(
            close(g.lats[0], &e["lat_first"]),
            "{what}: {} vs {}",
            g.lats[0],
            e["lat_first"]
        );
        assert!(close(*g.lats.last().unwrap(), &e["lat_last"]), "{what}");
        assert!(close(g.lons[0], &e["lon_first"]), "{what}");
        assert!(close(*g.lons.last().unwrap(), &e["lon_last"]), "{what}");
        assert!(close((g.lats[0] - g.lats[1]).abs(), &e["dj"]), "{what}");
        assert!(close(g.lons[1] - g.lons[0], &e["di"]), "{what}");
        assert_eq!(
            u64::from(g.scanning_mode),
            e["scanning_mode"].as_u64().unwrap(),
            "{what}"
        );
        // values
        assert_eq!(d.values.len(), g.ni * g.nj, "{what}");
        let missing = d.values.iter().filter(|v| v.is_nan()).count() as u64;
        assert_eq!(missing, e["missing_count"].as_u64().unwrap(), "{what}");
        let present: Vec<f64> = d
            .values
            .iter()
            .filter(|v| !v.is_nan())
            .map(|v| f64::from(*v))
            .collect();
        let min = present.iter().copied().fold(f64::INFINITY, f64::min);
        let max = present.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = present.iter().sum::<f64>() / present.len() as f64;
        let (emin, emax, emean) = (
            e["min"].as_f64().unwrap(),
            e["max"].as_f64().unwrap(),
            e["mean"].as_f64().unwrap(),
        );
        assert!(
            (min - emin).abs() <= tolerance(emin),
            "{what}: min {min} vs {emin}"
        );
        assert!(
            (max - emax).abs() <= tolerance(emax),
            "{what}: max {max} vs {emax}"
        );
        let spread = (emax - emin).abs().max(emax.abs());
        assert!(
            (mean - emean).abs() <= tolerance(spread),
            "{what}: mean {mean} vs {emean}"
        );
        for probe in e["probes"].as_array().unwrap() {
            let j = probe[0].as_u64().unwrap() as usize;
            let i = probe[1].as_u64().unwrap() as usize;
            let ours = d.values[j * g.ni + i];
            match probe[2].as_f64() {
                None => assert!(
                    ours.is_nan(),
                    "{what} ({j},{i}): {ours} where ecCodes has missing"
                ),
                Some(v) => assert!(
                    (f64::from(ours) - v).abs() <= tolerance(v),
                    "{what} ({j},{i}): {ours} vs ecCodes {v}"
                ),
            }
            checked_probes += 1;
        }
    }
    assert!(checked_probes > 2000, "{checked_probes} probes");
}

#[test]
fn every_packing_template_is_covered() {
    let templates: std::collections::BTreeSet<u64> = expected()
        .iter()
        .map(|e| e["data_template"].as_u64().unwrap())
        .collect();
    for t in [0, 2, 3, 40, 41] {
        assert!(
            templates.contains(&t),
            "no fixture in template 5.{t}: {templates:?}"
        );
    }
}

#[test]
fn multi_field_messages_yield_every_field_where_gribberish_alone_yields_one() {
    let rel = "real/gfs.20110110/12/atmos/gfs.t12z.pgrb2.2p5.f120";
    let bytes = std::fs::read(testdata().join(rel)).unwrap();
    let messages = grib::split_messages(&bytes).unwrap();
    let ours: usize = messages
        .iter()
        .map(|m| grib::split_fields(m).unwrap().len())
        .sum();
    // gribberish's own message iterator sees one "message" per GRIB message
    let theirs = gribberish::message::read_messages(&bytes).count();
    assert_eq!(theirs, messages.len());
    assert!(ours > theirs, "{ours} fields vs {theirs} messages");
    assert_eq!(
        ours - theirs,
        15,
        "13 levels + 10 m + 1829 m hold UGRD and VGRD together"
    );
    // the UGRD+VGRD message at 1829 m: VGRD's bitmap indicator is 254 (the UGRD bitmap)
    let m = messages
        .iter()
        .find(|m| {
            let f = grib::decode_message(m).unwrap();
            matches!(f[0].identity.surface, Surface::Other(102, Some(h)) if h == 1829.0)
        })
        .expect("the 1829 m message is in the fixture");
    let fields = grib::decode_message(m).unwrap();
    assert_eq!(fields.len(), 2);
    assert_eq!(fields[0].identity.parameter, grib::Parameter::UGRD);
    assert_eq!(fields[1].identity.parameter, grib::Parameter::VGRD);
    let nan_u: Vec<bool> = fields[0].values.iter().map(|v| v.is_nan()).collect();
    let nan_v: Vec<bool> = fields[1].values.iter().map(|v| v.is_nan()).collect();
    assert!(nan_u.iter().any(|x| *x), "the bitmap masks some points");
    assert_eq!(nan_u, nan_v, "VGRD re-uses the UGRD bitmap");
}
