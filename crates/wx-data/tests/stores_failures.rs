//! Broken stores read through the source readers: corrupt or oversize metadata, chunks that
//! decode to the wrong size (written by the real codecs), truncated and missing chunks, odd
//! levels, units and names. Every case must be a typed error naming the key, never a panic or
//! silent NaN. Hostile chunks, shards and CF attributes read through the Zarr layer alone are
//! tested in wx-zarr (`crates/wx-zarr/tests/failures.rs`).

mod common;

use common::*;
use std::path::Path;
use wx_data::sources::MinerForecastReader;
use wx_model::{ErrorKind, VarLevel, Variable};
use wx_zarr::{MissingChunkPolicy, ReadOptions, ZarrError};

async fn open(path: &Path, options: ReadOptions) -> Result<MinerForecastReader, ZarrError> {
    MinerForecastReader::open(local(path), options, init()).await
}

fn edit_zmetadata(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let file = path.join(".zmetadata");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&file, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
}

#[tokio::test]
async fn corrupt_metadata_json_is_a_format_error() {
    let (_dir, path) = temp_copy("miner_v2_zstd");
    std::fs::write(path.join(".zmetadata"), b"{\"metadata\": {\"2t/.zarray\": ").unwrap();
    let err = open(&path, ReadOptions::new("m")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Format);
    assert!(
        err.to_string().contains(".zmetadata") && err.to_string().contains("invalid JSON"),
        "{err}"
    );

    // valid JSON, nonsense array metadata: only that variable fails
    let (_dir, path) = temp_copy("miner_v2_zstd");
    edit_zmetadata(&path, |j| {
        j["metadata"]["2t/.zarray"]["shape"] = serde_json::json!("big")
    });
    let reader = open(&path, ReadOptions::new("m")).await.unwrap();
    let problems = reader.problems();
    let (_, e) = problems.iter().find(|(v, _)| *v == Variable::T2m).unwrap();
    assert!(e.to_string().contains("2t/.zarray"), "{e}");
    assert!(
        reader
            .read_lead(VarLevel::all(Variable::T), 6)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn oversize_metadata_is_refused_before_parsing() {
    let (_dir, path) = temp_copy("miner_v2_zstd");
    let mut bytes = std::fs::read(path.join(".zmetadata")).unwrap();
    bytes.extend(std::iter::repeat_n(b' ', 1 << 20)); // still valid JSON, > 1 MiB
    std::fs::write(path.join(".zmetadata"), &bytes).unwrap();
    let err = open(&path, ReadOptions::new("m")).await.unwrap_err();
    assert!(matches!(err, ZarrError::TooLarge { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::TooLarge);
    let mut bigger = ReadOptions::new("m");
    bigger.max_metadata_bytes = 4 << 20;
    assert!(
        open(&path, bigger).await.is_ok(),
        "the limit is what refused it"
    );
}

#[tokio::test]
async fn chunks_that_decode_to_the_wrong_size_are_errors_for_every_codec() {
    for store in [
        "miner_v2_blosc_zstd",
        "miner_v2_zstd",
        "miner_v2_gzip",
        "miner_v2_blosc_lz4",
        "miner_v2_none",
    ] {
        for kind in ["short", "long"] {
            let bad = testdata()
                .join("corrupt")
                .join(format!("{store}.2t.0.0.0.{kind}"));
            if !bad.exists() {
                assert_eq!(
                    (store, kind),
                    ("miner_v2_none", "long"),
                    "fixture missing: {bad:?}"
                );
                continue;
            }
            let (_dir, path) = temp_copy(store);
            std::fs::copy(&bad, path.join("2t/0.0.0")).unwrap();
            let reader = open(&path, ReadOptions::new(store)).await.unwrap();
            let err = reader
                .read_lead(VarLevel::all(Variable::T2m), 6)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Format, "{store} {kind}: {err}");
            let msg = err.to_string();
            assert!(
                msg.contains("2t/0.0.0") && msg.contains("corrupt chunk"),
                "{store} {kind}: {msg}"
            );
            // the other lead is untouched
            assert!(
                reader
                    .read_lead(VarLevel::all(Variable::T2m), 12)
                    .await
                    .is_ok()
            );
        }
    }
}

#[tokio::test]
async fn truncated_chunks_are_errors() {
    for store in [
        "miner_v2_blosc_zstd",
        "miner_v2_zstd",
        "miner_v2_gzip",
        "miner_v2_none",
        "miner_v3",
    ] {
        let (_dir, path) = temp_copy(store);
        let chunk = if store == "miner_v3" {
            path.join("t/c/0/0/0/0")
        } else {
            path.join("t/0.0.0.0")
        };
        let bytes = std::fs::read(&chunk).unwrap();
        std::fs::write(&chunk, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let reader = open(&path, ReadOptions::new(store)).await.unwrap();
        let err = reader
            .read_lead(VarLevel::at(Variable::T, 500), 6)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Format, "{store}: {err}");
        assert!(err.to_string().contains("corrupt chunk"), "{store}: {err}");
    }
}

#[tokio::test]
async fn a_missing_chunk_is_an_error_unless_fill_is_explicitly_allowed() {
    let (_dir, path) = temp_copy("miner_v2_blosc_zstd");
    std::fs::remove_file(path.join("2t/3.0.0")).unwrap();
    let reader = open(&path, ReadOptions::new("m")).await.unwrap();
    let err = reader
        .read_lead(VarLevel::all(Variable::T2m), 24)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ZarrError::MissingKey { ref key, .. } if key == "2t/3.0.0"),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Format);

    let mut allow = ReadOptions::new("cache");
    allow.missing_chunks = MissingChunkPolicy::FillValue;
    let reader = open(&path, allow).await.unwrap();
    let f = reader
        .read_lead(VarLevel::all(Variable::T2m), 24)
        .await
        .unwrap();
    assert!(f.data.iter().all(|v| v.is_nan()), "fill value NaN");
}

#[tokio::test]
async fn a_chunk_larger_than_the_limit_is_refused_before_any_fetch() {
    let mut small = ReadOptions::new("m");
    small.max_chunk_bytes = 20_000; // 2t chunks are 10 368 bytes, t chunks 134 784
    let rec = Recording::new(fixture("miner_v2_zstd"));
    let reader = MinerForecastReader::open(rec.clone(), small, init())
        .await
        .unwrap();
    let problems = reader.problems();
    let (_, e) = problems.iter().find(|(v, _)| *v == Variable::T).unwrap();
    assert!(
        matches!(e, ZarrError::TooLarge { size: 134_784, .. }),
        "{e}"
    );
    rec.take();
    assert!(
        reader
            .read_lead(VarLevel::all(Variable::T), 6)
            .await
            .is_err()
    );
    assert!(
        reader
            .read_lead(VarLevel::all(Variable::T2m), 6)
            .await
            .is_ok()
    );
    assert_eq!(
        rec.take(),
        ["2t/0.0.0"],
        "nothing fetched for the refused variable"
    );
}

#[tokio::test]
async fn a_missing_level_is_an_error_naming_it() {
    // the miner wrote 550 where 500 should be: the plev coordinate re-written uncompressed
    let (_dir, path) = temp_copy("miner_v2_zstd");
    edit_zmetadata(&path, |j| {
        j["metadata"]["plev/.zarray"]["compressor"] = serde_json::Value::Null
    });
    let levels: Vec<u8> = wx_model::catalogue::PRESSURE_LEVELS_HPA
        .iter()
        .flat_map(|l| (if *l == 500 { 550i32 } else { i32::from(*l) }).to_le_bytes())
        .collect();
    std::fs::write(path.join("plev/0"), levels).unwrap();
    let reader = open(&path, ReadOptions::new("m")).await.unwrap();
    assert_eq!(reader.levels(Variable::T).unwrap()[7], 550);
    let err = reader
        .read_lead(VarLevel::at(Variable::T, 500), 6)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ZarrError::MissingLevel { level: 500, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("550"), "{err}");
    let err = reader
        .read_lead(VarLevel::all(Variable::T), 6)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ZarrError::MissingLevel { level: 500, .. }),
        "{err}"
    );
    assert!(
        reader
            .read_lead(VarLevel::at(Variable::T, 850), 6)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn variable_aliases_and_units_are_checked() {
    // `t2m` is an accepted name of 2t
    let (_dir, path) = temp_copy("miner_v2_zstd");
    std::fs::rename(path.join("2t"), path.join("t2m")).unwrap();
    edit_zmetadata(&path, |j| {
        let m = j["metadata"].as_object_mut().unwrap();
        for suffix in ["/.zarray", "/.zattrs"] {
            let v = m.remove(&format!("2t{suffix}")).unwrap();
            m.insert(format!("t2m{suffix}"), v);
        }
        m.get_mut("t2m/.zattrs").unwrap()["units"] = "kelvin".into();
    });
    let reader = open(&path, ReadOptions::new("m")).await.unwrap();
    assert!(reader.usable_variables().contains(&Variable::T2m));
    let f = reader
        .read_lead(VarLevel::all(Variable::T2m), 6)
        .await
        .unwrap();
    let p = probes("miner_v2_zstd")
        .into_iter()
        .find(|p| p.variable == "2t")
        .unwrap();
    assert_probe(f.data[[0, p.lat_index, p.lon_index]], &p, "alias");

    // a unit other than the scored one fails that variable
    let (_dir, path) = temp_copy("miner_v2_zstd");
    edit_zmetadata(&path, |j| {
        j["metadata"]["t/.zattrs"]["units"] = "degC".into()
    });
    let reader = open(&path, ReadOptions::new("m")).await.unwrap();
    let problems = reader.problems();
    let (_, e) = problems.iter().find(|(v, _)| *v == Variable::T).unwrap();
    assert!(e.to_string().contains("degC"), "{e}");
}

#[tokio::test]
async fn bad_time_axes_and_layouts_are_reported() {
    let (_dir, path) = temp_copy("miner_v2_zstd");
    edit_zmetadata(&path, |j| {
        j["metadata"]["time/.zattrs"]["calendar"] = "noleap".into()
    });
    let err = open(&path, ReadOptions::new("m")).await.unwrap_err();
    assert!(err.to_string().contains("noleap"), "{err}");

    let (_dir, path) = temp_copy("miner_v2_zstd");
    edit_zmetadata(&path, |j| {
        j["metadata"]["time/.zattrs"]
            .as_object_mut()
            .unwrap()
            .remove("units");
    });
    assert!(
        open(&path, ReadOptions::new("m"))
            .await
            .unwrap_err()
            .to_string()
            .contains("units")
    );

    // no dimension names → that variable fails, clearly
    let (_dir, path) = temp_copy("miner_v2_zstd");
    edit_zmetadata(&path, |j| {
        j["metadata"]["t/.zattrs"]
            .as_object_mut()
            .unwrap()
            .remove("_ARRAY_DIMENSIONS");
    });
    let reader = open(&path, ReadOptions::new("m")).await.unwrap();
    let problems = reader.problems();
    let (_, e) = problems.iter().find(|(v, _)| *v == Variable::T).unwrap();
    assert!(e.to_string().contains("_ARRAY_DIMENSIONS"), "{e}");

    // an unsupported filter is refused when the array is opened
    let (_dir, path) = temp_copy("miner_v2_zstd");
    edit_zmetadata(&path, |j| {
        j["metadata"]["t/.zarray"]["filters"] = serde_json::json!([{"id": "delta", "dtype": "<f4"}])
    });
    let reader = open(&path, ReadOptions::new("m")).await.unwrap();
    let problems = reader.problems();
    let (_, e) = problems.iter().find(|(v, _)| *v == Variable::T).unwrap();
    assert_eq!(e.kind(), ErrorKind::Format, "{e}");

    // float64 data is not the miner layout
    let (_dir, path) = temp_copy("miner_v2_none");
    edit_zmetadata(&path, |j| {
        j["metadata"]["2t/.zarray"]["dtype"] = "<f8".into();
        j["metadata"]["2t/.zarray"]["chunks"] = serde_json::json!([1, 36, 36]);
    });
    let reader = open(&path, ReadOptions::new("m")).await.unwrap();
    let problems = reader.problems();
    let (_, e) = problems.iter().find(|(v, _)| *v == Variable::T2m).unwrap();
    assert!(e.to_string().contains("float32"), "{e}");
}
