//! Broken stores: corrupt or oversize metadata, chunks that decode to the wrong size (written by
//! the real codecs), truncated and missing chunks, odd levels, units and names. Every case must
//! be a typed error naming the key, never a panic or silent NaN.

mod common;

use common::*;
use std::path::Path;
use wx_data::sources::MinerForecastReader;
use wx_data::zarr::{MissingChunkPolicy, ReadOptions, ZarrDataset, ZarrError};
use wx_model::{ErrorKind, VarLevel, Variable};

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

#[tokio::test]
async fn a_directory_without_zarr_metadata_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let err = ZarrDataset::open(local(dir.path()), ReadOptions::new("empty"))
        .await
        .unwrap_err();
    assert!(matches!(err, ZarrError::MissingKey { .. }), "{err}");
    assert!(err.to_string().contains(".zmetadata"), "{err}");
}

/// Reads a whole variable of a store at `path` (a Zarr dataset, no source reader).
async fn read_all(path: &Path, name: &str) -> Result<ndarray::ArrayD<f32>, ZarrError> {
    let ds = ZarrDataset::open(local(path), ReadOptions::new("m")).await?;
    let array = ds.array(name).await?.expect("array present");
    let selection = vec![wx_data::zarr::Selection::All; array.dims().len()];
    array.read_f32(&selection).await
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn a_zlib_bomb_is_refused_at_the_declared_chunk_size() {
    // 10 MiB of zeros in 10 KB: under the stored-size limit of a 10 368-byte chunk (13 984
    // bytes), so it reaches the decoder, which stops one byte past the chunk
    let bomb = zlib(&vec![0u8; 10 << 20]);
    assert!(bomb.len() < 13_984, "{}", bomb.len());
    let (_dir, path) = temp_copy("interop_v2_zlib");
    std::fs::write(path.join("2t/0.0.0"), &bomb).unwrap();
    let err = read_all(&path, "2t").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Format, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("2t/0.0.0") && msg.contains("zlib chunk decodes to more than the 10368 bytes"),
        "{msg}"
    );
    // a stored chunk over the stored-size limit is refused before decoding
    std::fs::write(path.join("2t/0.0.0"), zlib(&vec![0u8; 20 << 20])).unwrap();
    let err = read_all(&path, "2t").await.unwrap_err();
    assert!(
        matches!(
            err,
            ZarrError::TooLarge {
                limit: 13_984,
                what: "one encoded chunk",
                ..
            }
        ),
        "{err}"
    );
    // short and damaged streams
    let good = zlib(&vec![1u8; 10_368]);
    std::fs::write(path.join("2t/0.0.0"), &good[..good.len() - 5]).unwrap();
    let err = read_all(&path, "2t").await.unwrap_err();
    assert!(err.to_string().contains("corrupt chunk"), "{err}");
}

#[tokio::test]
async fn an_lz4_chunk_declaring_another_size_is_refused_before_decoding() {
    let (_dir, path) = temp_copy("interop_v2_lz4");
    let chunk = path.join("2t/0.0.0");
    let good = std::fs::read(&chunk).unwrap();
    assert_eq!(good[..4], 10_368u32.to_le_bytes(), "numcodecs' size header");
    let mut huge = good.clone();
    huge[..4].copy_from_slice(&(1u32 << 30).to_le_bytes());
    std::fs::write(&chunk, &huge).unwrap();
    let err = read_all(&path, "2t").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("lz4 chunk decodes to 1073741824 bytes but the chunk shape needs 10368"),
        "{err}"
    );
    // the right header on a block that needs more room than it declares, or a truncated one
    let mut long = good.clone();
    long[..4].copy_from_slice(&10_000u32.to_le_bytes());
    for bad in [long, good[..good.len() / 2].to_vec(), good[..3].to_vec()] {
        std::fs::write(&chunk, &bad).unwrap();
        let err = read_all(&path, "2t").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Format, "{err}");
        assert!(err.to_string().contains("lz4"), "{err}");
    }
}

/// The one shard of `interop_v3`'s 2t: 8 inner chunks (1, 18, 36), index (8 × 16 bytes +
/// crc32c) at the end.
const SHARD: &str = "2t/c/0/0/0";
const INDEX_LEN: usize = 8 * 16 + 4;

/// Rewrites entry `i` of the shard index and its checksum.
fn set_index_entry(shard: &mut [u8], i: usize, offset: u64, nbytes: u64) {
    let start = shard.len() - INDEX_LEN;
    let entry = start + i * 16;
    shard[entry..entry + 8].copy_from_slice(&offset.to_le_bytes());
    shard[entry + 8..entry + 16].copy_from_slice(&nbytes.to_le_bytes());
    let crc = crc32c::crc32c(&shard[start..shard.len() - 4]);
    let end = shard.len();
    shard[end - 4..].copy_from_slice(&crc.to_le_bytes());
}

#[tokio::test]
async fn hostile_shard_indexes_and_damaged_checksums_are_errors() {
    let (_dir, path) = temp_copy("interop_v3");
    let file = path.join(SHARD);
    let good = std::fs::read(&file).unwrap();
    assert!(read_all(&path, "2t").await.is_ok());
    let data_end = (good.len() - INDEX_LEN) as u64;
    // an inner chunk of 2592 bytes may take 2592 × 1.25 + 1024 + 4 (its crc32c)
    let max_inner = 2592 + 2592 / 4 + 1024 + 4;
    assert!(
        data_end > max_inner,
        "the fixture's shard is large enough for the test"
    );
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            {
                let mut s = good.clone();
                set_index_entry(&mut s, 0, u64::MAX - 5, 10); // offset + nbytes overflows
                s
            },
            "outside the shard's data",
        ),
        (
            {
                let mut s = good.clone();
                set_index_entry(&mut s, 1, 0, 1 << 40);
                s
            },
            "outside the shard's data",
        ),
        (
            {
                let mut s = good.clone();
                set_index_entry(&mut s, 2, data_end, 16); // the index itself
                s
            },
            "outside the shard's data",
        ),
        (
            {
                let mut s = good.clone();
                set_index_entry(&mut s, 3, 0, max_inner + 1);
                s
            },
            "an inner chunk of 2592 bytes may take",
        ),
        (
            {
                let mut s = good.clone();
                let at = s.len() - 20; // inside the index, checksum left as it was
                s[at] ^= 0xff;
                s
            },
            "shard index: crc32c checksum",
        ),
        (
            {
                let mut s = good.clone();
                s[10] ^= 0xff; // inside the first inner chunk
                s
            },
            "crc32c checksum",
        ),
        (good[..100].to_vec(), "shorter than its 132-byte index"),
    ];
    for (bytes, want) in cases {
        std::fs::write(&file, &bytes).unwrap();
        let err = read_all(&path, "2t").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Format, "{want}: {err}");
        let msg = err.to_string();
        assert!(msg.contains(SHARD) && msg.contains(want), "{want}: {msg}");
    }
}

fn edit_v3_consolidated(path: &Path, name: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let file = path.join("zarr.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    edit(&mut json["consolidated_metadata"]["metadata"][name]);
    std::fs::write(&file, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
}

#[tokio::test]
async fn shards_of_too_many_or_misfitting_inner_chunks_are_refused_when_opened() {
    // 2 × 360 × 720 inner chunks of one element: a 2 MB shard (under the chunk limit) with a
    // 8 MB index
    let (_dir, path) = temp_copy("interop_v3");
    edit_v3_consolidated(&path, "2t", |m| {
        m["shape"] = serde_json::json!([2, 360, 720]);
        m["chunk_grid"]["configuration"]["chunk_shape"] = serde_json::json!([2, 360, 720]);
        m["codecs"][0]["configuration"]["chunk_shape"] = serde_json::json!([1, 1, 1]);
    });
    let err = read_all(&path, "2t").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("518400 inner chunks, over the 65536"),
        "{err}"
    );
    let (_dir, path) = temp_copy("interop_v3");
    edit_v3_consolidated(&path, "2t", |m| {
        m["codecs"][0]["configuration"]["chunk_shape"] = serde_json::json!([1, 7, 36]);
    });
    let err = read_all(&path, "2t").await.unwrap_err();
    assert!(err.to_string().contains("does not divide"), "{err}");
    // the other arrays of the store stay readable
    assert!(read_all(&path, "msl").await.is_ok());
}

#[tokio::test]
async fn a_shard_larger_than_the_chunk_limit_is_refused_before_any_fetch() {
    let mut small = ReadOptions::new("m");
    small.max_chunk_bytes = 20_000; // the 2t shard decodes to 20 736 bytes
    let rec = Recording::new(fixture("interop_v3"));
    let ds = ZarrDataset::open(rec.clone(), small).await.unwrap();
    let array = ds.array("2t").await.unwrap().unwrap();
    rec.take();
    let selection = vec![wx_data::zarr::Selection::All; 3];
    let err = array.read_f32(&selection).await.unwrap_err();
    assert!(
        matches!(err, ZarrError::TooLarge { size: 20_736, .. }),
        "{err}"
    );
    assert!(rec.take().is_empty(), "nothing fetched");
}

#[tokio::test]
async fn bad_cf_attributes_are_errors_naming_the_variable_and_attribute() {
    let (_dir, path) = temp_copy("interop_v2_cf");
    edit_zmetadata(&path, |j| {
        j["metadata"]["2t/.zattrs"]["scale_factor"] = serde_json::json!("0.01");
        j["metadata"]["10u/.zattrs"]["missing_value"] = serde_json::json!({"x": 1});
    });
    let ds = ZarrDataset::open(local(&path), ReadOptions::new("m"))
        .await
        .unwrap();
    for (name, attribute) in [("2t", "scale_factor"), ("10u", "missing_value")] {
        let err = ds.array(name).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Format);
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("attribute `{attribute}` of `{name}`")),
            "{msg}"
        );
    }
    assert!(ds.array("msl").await.unwrap().is_some());
}
