//! Broken Zarr stores read through the Zarr layer alone: a directory without metadata, zlib
//! bombs, LZ4 chunks declaring another size, hostile shard indexes and damaged checksums,
//! shards of too many or misfitting inner chunks, shards over the chunk limit, bad CF
//! attributes. Every case must be a typed error naming the key, never a panic or silent NaN.

mod common;

use common::*;
use std::path::Path;
use wx_model::ErrorKind;
use wx_zarr::{ReadOptions, ZarrDataset, ZarrError};

fn edit_zmetadata(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let file = path.join(".zmetadata");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&file, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
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
    let selection = vec![wx_zarr::Selection::All; array.dims().len()];
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
    let selection = vec![wx_zarr::Selection::All; 3];
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
