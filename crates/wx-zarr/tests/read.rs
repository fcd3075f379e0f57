//! Reads of committed fixture stores through the Zarr layer alone (object_store's local
//! filesystem, the same async path as HTTP): the format hint limits the metadata probed, and a
//! read of exactly one chunk equals the same values assembled element by element.

mod common;

use common::*;
use wx_zarr::{ReadOptions, Selection, ZarrDataset, ZarrError};

#[tokio::test]
async fn a_format_hint_restricts_the_metadata_probed() {
    let mut v2_only = ReadOptions::new("v3 store");
    v2_only.format = wx_zarr::FormatHint::V2;
    let err = ZarrDataset::open(fixture("miner_v3"), v2_only)
        .await
        .unwrap_err();
    assert!(matches!(err, ZarrError::MissingKey { .. }), "{err}");
    let rec = Recording::new(fixture("miner_v3"));
    let mut v3_only = ReadOptions::new("v3 store");
    v3_only.format = wx_zarr::FormatHint::V3;
    ZarrDataset::open(rec.clone(), v3_only).await.unwrap();
    assert_eq!(rec.take(), ["zarr.json"], "no probe of v2 keys");
}

#[tokio::test]
async fn a_read_of_exactly_one_chunk_equals_the_same_read_reassembled() {
    // `t` is chunked (1 time, 13 levels, lat, lon): one valid time with every level in
    // order is exactly one chunk, returned as decoded; the same levels in reverse order, or
    // one time with all levels via two separate single-level reads, go through the general
    // element-by-element assembly. They must agree.
    let store = "miner_v2_blosc_zstd";
    let dataset = ZarrDataset::open(fixture(store), ReadOptions::new(store))
        .await
        .unwrap();
    let t = dataset.array("t").await.unwrap().expect("t exists");
    let in_order: Vec<u64> = (0..13).collect();
    let reversed: Vec<u64> = in_order.iter().rev().copied().collect();
    let whole = t
        .read_f32(&[
            Selection::Index(3),
            Selection::Indices(in_order),
            Selection::All,
            Selection::All,
        ])
        .await
        .unwrap();
    assert_eq!(whole.shape(), &[13, 36, 72]);
    let all = t
        .read_f32(&[
            Selection::Index(3),
            Selection::All,
            Selection::All,
            Selection::All,
        ])
        .await
        .unwrap();
    assert_eq!(all, whole);
    let backwards = t
        .read_f32(&[
            Selection::Index(3),
            Selection::Indices(reversed),
            Selection::All,
            Selection::All,
        ])
        .await
        .unwrap();
    for k in 0..13 {
        let level = t
            .read_f32(&[
                Selection::Index(3),
                Selection::Index(k as u64),
                Selection::All,
                Selection::All,
            ])
            .await
            .unwrap();
        assert_eq!(level, whole.index_axis(ndarray::Axis(0), k), "level {k}");
        assert_eq!(
            backwards.index_axis(ndarray::Axis(0), 12 - k),
            whole.index_axis(ndarray::Axis(0), k),
            "level {k} reversed"
        );
    }
    // two valid times at once span two chunks: assembled, and equal to the single reads
    let two = t
        .read_f32(&[
            Selection::Indices(vec![3, 4]),
            Selection::All,
            Selection::All,
            Selection::All,
        ])
        .await
        .unwrap();
    assert_eq!(two.index_axis(ndarray::Axis(0), 0), whole);
}

#[tokio::test]
async fn a_read_larger_than_the_read_limit_is_refused_before_anything_is_fetched() {
    // one valid time of `t` is 13 × 36 × 72 float32 = 134,784 bytes
    let store = "miner_v2_blosc_zstd";
    let one_time = [
        Selection::Index(3),
        Selection::All,
        Selection::All,
        Selection::All,
    ];
    let mut options = ReadOptions::new(store);
    options.max_read_bytes = 13 * 36 * 72 * 4 - 1;
    let rec = Recording::new(fixture(store));
    let dataset = ZarrDataset::open(rec.clone(), options).await.unwrap();
    let t = dataset.array("t").await.unwrap().expect("t exists");
    rec.take();
    let err = t.read_f32(&one_time).await.unwrap_err();
    match &err {
        ZarrError::TooLarge { size, what, .. } => {
            assert_eq!(*size, 13 * 36 * 72 * 4);
            assert!(what.contains("one read"), "{err}");
        }
        other => panic!("expected TooLarge, got {other}"),
    }
    assert!(rec.take().is_empty(), "no chunk fetched for a refused read");
    // one level fewer fits
    let twelve: Vec<u64> = (0..12).collect();
    let fits = t
        .read_f32(&[
            Selection::Index(3),
            Selection::Indices(twelve),
            Selection::All,
            Selection::All,
        ])
        .await
        .unwrap();
    assert_eq!(fits.shape(), &[12, 36, 72]);
}

#[tokio::test]
async fn a_few_levels_of_a_blosc_chunk_fetch_only_their_blocks_and_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let values = write_arco_like(dir.path(), 48, 96);
    let chunk_bytes = std::fs::metadata(dir.path().join("t/1.0.0.0"))
        .unwrap()
        .len();
    // 5 of 37 levels, unordered, two of them neighbours
    let levels = [30u64, 2, 17, 18, 9];
    let selection = [
        Selection::Index(1),
        Selection::Indices(levels.to_vec()),
        Selection::All,
        Selection::All,
    ];
    let read = |storage: wx_zarr::DynStorage| {
        let selection = selection.clone();
        async move {
            // chunks of 682 kB: ranged from 64 kB on (the default waits for 32 MiB)
            let mut options = ReadOptions::trusted("arco-like");
            options.min_ranged_fetch_bytes = 64 << 10;
            let dataset = ZarrDataset::open(storage, options).await.unwrap();
            let t = dataset.array("t").await.unwrap().expect("t exists");
            t.read_f32(&selection).await.unwrap()
        }
    };
    let ranged = Recording::new(local(dir.path()));
    let partial = read(ranged.clone()).await;
    let whole = Recording::whole_only(local(dir.path()));
    let full = read(whole.clone()).await;
    assert_eq!(partial.shape(), &[5, 48, 96]);
    let per_level = 48 * 96;
    let per_time = 37 * per_level;
    for (i, level) in levels.iter().enumerate() {
        let at = per_time + *level as usize * per_level;
        let expected: Vec<u32> = values[at..at + per_level]
            .iter()
            .map(|v| v.to_bits())
            .collect();
        let got: Vec<u32> = partial
            .slice(ndarray::s![i, .., ..])
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(got, expected, "level {level}");
    }
    assert_eq!(
        partial, full,
        "the partial and the whole fetch read the same values"
    );
    let chunk_keys = |keys: Vec<String>| {
        keys.into_iter()
            .filter(|k| k.starts_with("t/1."))
            .collect::<Vec<_>>()
    };
    assert_eq!(chunk_keys(whole.take()), ["t/1.0.0.0"]);
    assert_eq!(
        chunk_keys(ranged.take()),
        ["t/1.0.0.0 (partial)"; 2],
        "header with the block table (42 blocks), then the blocks"
    );
    // a storage whose range requests fail is read whole after the first attempt
    let failing = Recording::ranges_fail(local(dir.path()));
    assert_eq!(read(failing.clone()).await, full);
    assert_eq!(
        chunk_keys(failing.take()),
        ["t/1.0.0.0 (partial)", "t/1.0.0.0"]
    );
    // the metadata is the same few hundred bytes both ways; the chunk is what differs
    let saved = whole.bytes() - ranged.bytes();
    assert!(
        saved > chunk_bytes / 2,
        "ranged {} bytes, whole {} bytes, chunk {chunk_bytes} bytes",
        ranged.bytes(),
        whole.bytes()
    );
}

#[tokio::test]
async fn a_chunk_below_the_ranged_fetch_size_is_fetched_whole_in_one_request() {
    let dir = tempfile::tempdir().unwrap();
    write_arco_like(dir.path(), 48, 96);
    let rec = Recording::new(local(dir.path()));
    // the default threshold (32 MiB) is far above these 682 kB chunks
    let dataset = ZarrDataset::open(rec.clone(), ReadOptions::trusted("arco-like"))
        .await
        .unwrap();
    let t = dataset.array("t").await.unwrap().expect("t exists");
    rec.take();
    let levels = t
        .read_f32(&[
            Selection::Index(0),
            Selection::Indices(vec![4, 30]),
            Selection::All,
            Selection::All,
        ])
        .await
        .unwrap();
    assert_eq!(levels.shape(), &[2, 48, 96]);
    assert_eq!(
        rec.take(),
        ["t/0.0.0.0"],
        "one whole fetch, no ranged attempt"
    );
}
