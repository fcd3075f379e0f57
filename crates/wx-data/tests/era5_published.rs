//! ERA5 as the public ARCO store publishes it: the `era5_arco_published` fixture (written by
//! xarray + zarr-python: hourly axis padded beyond the data, the three root attributes, no
//! chunk outside the published days), a store that grows while it is open, a store without
//! attributes, and a 0.25° 37-level chunk larger than the miner limit (built in a temp dir).

mod common;

use common::*;
use std::path::Path;
use wx_data::sources::{Era5Flavour, Era5Reader, ExtentBasis, PendingReason, Publication};
use wx_model::catalogue::PRESSURE_LEVELS_HPA;
use wx_model::{VarLevel, Variable};
use wx_zarr::{ReadOptions, ZarrError};

const BOTH: [Variable; 2] = [Variable::T2m, Variable::T];

async fn open(path: &Path) -> Era5Reader {
    Era5Reader::open(local(path), ReadOptions::trusted("era5"))
        .await
        .unwrap()
}

async fn publication(reader: &Era5Reader, time: &str, flavour: Era5Flavour) -> Publication {
    reader
        .publication(t(time), &BOTH, flavour)
        .await
        .unwrap_or_else(|e| panic!("{time}: {e}"))
        .0
}

#[tokio::test]
async fn published_means_inside_the_era5t_extent_and_chunks_present() {
    let reader = open(&store_path("era5_arco_published")).await;
    assert_eq!(
        reader.times().len(),
        7 * 24,
        "the axis is padded beyond the data"
    );
    let extent = reader.extent(Era5Flavour::Preliminary).await.unwrap();
    assert_eq!(extent.basis, ExtentBasis::StopEra5t);
    assert_eq!(extent.published_until, Some(t("2024-12-31T23:59:59Z")));
    assert_eq!(extent.start, Some(t("2024-12-30T00:00:00Z")));
    let pre = Era5Flavour::Preliminary;
    for time in [
        "2024-12-30T00:00:00Z",
        "2024-12-30T18:00:00Z",
        "2024-12-31T23:00:00Z",
    ] {
        assert_eq!(
            publication(&reader, time, pre).await,
            Publication::Published
        );
    }
    // on the axis, after valid_time_stop_era5t (and no chunk there)
    for time in ["2025-01-01T00:00:00Z", "2025-01-04T23:00:00Z"] {
        assert_eq!(
            publication(&reader, time, pre).await,
            Publication::Pending(PendingReason::AfterExtent)
        );
    }
    // beyond the axis
    assert_eq!(
        publication(&reader, "2025-02-01T00:00:00Z", pre).await,
        Publication::Pending(PendingReason::AfterExtent)
    );
    // before valid_time_start: never, an error naming the attribute
    let e = reader
        .publication(t("2024-12-29T12:00:00Z"), &BOTH, pre)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("valid_time_start"), "{e}");
}

#[tokio::test]
async fn final_only_uses_valid_time_stop() {
    let reader = open(&store_path("era5_arco_published")).await;
    let fin = Era5Flavour::FinalOnly;
    let extent = reader.extent(fin).await.unwrap();
    assert_eq!(extent.basis, ExtentBasis::Stop);
    assert_eq!(extent.published_until, Some(t("2024-12-30T23:59:59Z")));
    assert_eq!(
        publication(&reader, "2024-12-30T23:00:00Z", fin).await,
        Publication::Published
    );
    assert_eq!(
        publication(&reader, "2024-12-31T00:00:00Z", fin).await,
        Publication::Pending(PendingReason::AfterExtent),
        "ERA5T data is not final"
    );
}

#[tokio::test]
async fn reads_keep_the_scored_levels_of_37_exactly_as_python_wrote_them() {
    let reader = open(&store_path("era5_arco_published")).await;
    let mut checked = 0;
    for p in probes("era5_arco_published") {
        let variable = Variable::from_store_name(&p.variable).unwrap();
        let selection = match p.level_hpa {
            Some(l) => VarLevel::at(variable, l),
            None => VarLevel::all(variable),
        };
        let field = reader.read(selection, p.valid_time.unwrap()).await.unwrap();
        assert_probe(
            field.data[[0, p.lat_index, p.lon_index]],
            &p,
            "era5_arco_published",
        );
        checked += 1;
    }
    assert!(checked > 50, "{checked}");
    let all = reader
        .read(VarLevel::all(Variable::T), t("2024-12-31T12:00:00Z"))
        .await
        .unwrap();
    assert_eq!(all.levels, PRESSURE_LEVELS_HPA.to_vec());
    assert_eq!(
        all.data.shape(),
        &[13, 19, 36],
        "13 of the 37 levels are kept"
    );
    // an unpublished hour on the axis has no chunk: a read names it
    let e = reader
        .read(VarLevel::all(Variable::T), t("2025-01-01T00:00:00Z"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ZarrError::MissingKey { key, .. } if key == "temperature/72.0.0.0"),
        "{e}"
    );
}

/// Rewrites `valid_time_stop_era5t` in the root `.zattrs` and the consolidated `.zmetadata`,
/// as the publisher of the public store does.
fn set_stop_era5t(store: &Path, day: &str) {
    for (file, pointer) in [(".zattrs", ""), (".zmetadata", "/metadata/.zattrs")] {
        let path = store.join(file);
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        json.pointer_mut(pointer).unwrap()["valid_time_stop_era5t"] = day.into();
        std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    }
}

/// Publishes one more hour: copies the chunks of an hour that exists to `hour` (any valid
/// chunk will do here).
fn add_chunks(store: &Path, hour: usize) {
    for (var, suffix) in [("2m_temperature", ".0.0"), ("temperature", ".0.0.0")] {
        std::fs::copy(
            store.join(var).join(format!("24{suffix}")),
            store.join(var).join(format!("{hour}{suffix}")),
        )
        .unwrap();
    }
}

#[tokio::test]
async fn a_growing_store_is_seen_growing_by_a_reader_opened_before() {
    let (_dir, store) = temp_copy("era5_arco_published");
    let reader = open(&store).await;
    let pre = Era5Flavour::Preliminary;
    let jan1 = "2025-01-01T00:00:00Z"; // axis index 72
    assert_eq!(
        publication(&reader, jan1, pre).await,
        Publication::Pending(PendingReason::AfterExtent)
    );
    // the attributes move first: the extent covers the hour, its chunks are not there yet
    set_stop_era5t(&store, "2025-01-01");
    let (answer, extent) = reader.publication(t(jan1), &BOTH, pre).await.unwrap();
    assert_eq!(extent.published_until, Some(t("2025-01-01T23:59:59Z")));
    assert_eq!(
        answer,
        Publication::Pending(PendingReason::ChunkAbsent {
            key: "2m_temperature/72.0.0".into()
        })
    );
    // then the chunks arrive: published, without reopening anything
    add_chunks(&store, 72);
    assert_eq!(
        publication(&reader, jan1, pre).await,
        Publication::Published
    );
    // one variable's chunk missing is enough to wait
    std::fs::copy(
        store.join("2m_temperature/24.0.0"),
        store.join("2m_temperature/73.0.0"),
    )
    .unwrap();
    assert_eq!(
        publication(&reader, "2025-01-01T01:00:00Z", pre).await,
        Publication::Pending(PendingReason::ChunkAbsent {
            key: "temperature/73.0.0.0".into()
        })
    );
    // only the attributes say what is published: a chunk beyond them does not count
    add_chunks(&store, 100);
    assert_eq!(
        publication(&reader, "2025-01-02T04:00:00Z", pre).await,
        Publication::Pending(PendingReason::AfterExtent)
    );
}

#[tokio::test]
async fn without_attributes_the_last_axis_entry_is_the_limit() {
    // the older fixture: 6-hourly, no root attributes
    let reader = open(&store_path("era5_arco")).await;
    let extent = reader.extent(Era5Flavour::Preliminary).await.unwrap();
    assert_eq!(extent.basis, ExtentBasis::TimeAxis);
    assert_eq!(extent.published_until, Some(t("2025-01-01T00:00:00Z")));
    let all = Variable::ALL;
    let pre = Era5Flavour::Preliminary;
    let (answer, _) = reader
        .publication(t("2025-01-01T00:00:00Z"), all, pre)
        .await
        .unwrap();
    assert_eq!(answer, Publication::Published);
    let (answer, _) = reader
        .publication(t("2025-01-01T06:00:00Z"), all, pre)
        .await
        .unwrap();
    assert_eq!(answer, Publication::Pending(PendingReason::AfterExtent));
    // inside the extent but between two axis entries: this store never has it
    let e = reader
        .publication(t("2024-12-31T03:00:00Z"), all, pre)
        .await
        .unwrap_err();
    assert!(matches!(e, ZarrError::MissingTime { .. }), "{e}");
}

#[tokio::test]
async fn an_axis_that_grows_with_the_data_is_pending_beyond_its_end() {
    let (_dir, store) = temp_copy("era5_arco_published");
    let mut zattrs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join(".zattrs")).unwrap()).unwrap();
    zattrs["valid_time_stop_era5t"] = "2025-03-01".into();
    std::fs::write(store.join(".zattrs"), zattrs.to_string()).unwrap();
    let reader = open(&store).await;
    let (answer, _) = reader
        .publication(t("2025-01-05T00:00:00Z"), &BOTH, Era5Flavour::Preliminary)
        .await
        .unwrap();
    assert_eq!(answer, Publication::Pending(PendingReason::NotOnAxisYet));
}

/// A store of one 0.25° hour with `temperature` on 37 levels in one chunk (153,659,520 bytes
/// decoded), zstd-compressed, written in Zarr v2 with consolidated metadata.
fn write_full_size_store(dir: &Path) {
    let (nlev, nlat, nlon) = (37usize, 721usize, 1440usize);
    let levels: Vec<i64> = vec![
        1, 2, 3, 5, 7, 10, 20, 30, 50, 70, 100, 125, 150, 175, 200, 225, 250, 300, 350, 400, 450,
        500, 550, 600, 650, 700, 750, 775, 800, 825, 850, 875, 900, 925, 950, 975, 1000,
    ];
    let zarray = |shape: &[usize], chunks: &[usize], dtype: &str, compressor: serde_json::Value| {
        serde_json::json!({
            "chunks": chunks, "compressor": compressor, "dtype": dtype, "fill_value": null,
            "filters": null, "order": "C", "shape": shape, "zarr_format": 2
        })
    };
    let dims = |d: &[&str]| serde_json::json!({ "_ARRAY_DIMENSIONS": d });
    let mut meta = serde_json::Map::new();
    meta.insert(".zgroup".into(), serde_json::json!({"zarr_format": 2}));
    meta.insert(
        ".zattrs".into(),
        serde_json::json!({"valid_time_stop_era5t": "2025-01-01"}),
    );
    let coord = |name: &str, n: usize, dtype: &str| {
        (
            format!("{name}/.zarray"),
            zarray(&[n], &[n], dtype, serde_json::Value::Null),
        )
    };
    for (k, v) in [
        coord("time", 1, "<i8"),
        coord("level", nlev, "<i8"),
        coord("latitude", nlat, "<f4"),
        coord("longitude", nlon, "<f4"),
    ] {
        meta.insert(k, v);
    }
    for name in ["time", "level", "latitude", "longitude"] {
        meta.insert(format!("{name}/.zattrs"), dims(&[name]));
    }
    meta.get_mut("time/.zattrs").unwrap()["units"] = "hours since 1900-01-01".into();
    meta.insert(
        "temperature/.zarray".into(),
        zarray(
            &[1, nlev, nlat, nlon],
            &[1, nlev, nlat, nlon],
            "<f4",
            serde_json::json!({"id": "zstd", "level": 1}),
        ),
    );
    let mut attrs = dims(&["time", "level", "latitude", "longitude"]);
    attrs["units"] = "K".into();
    meta.insert("temperature/.zattrs".into(), attrs);
    let zmetadata = serde_json::json!({"zarr_consolidated_format": 1, "metadata": meta});
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(".zmetadata"), zmetadata.to_string()).unwrap();
    let write = |name: &str, key: &str, bytes: &[u8]| {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join(key), bytes).unwrap();
    };
    let hours: i64 = 125 * 365 * 24; // an hour in 2024
    write("time", "0", &hours.to_le_bytes());
    write(
        "level",
        "0",
        &levels
            .iter()
            .flat_map(|l| l.to_le_bytes())
            .collect::<Vec<_>>(),
    );
    let lats: Vec<u8> = (0..nlat)
        .flat_map(|j| (90.0f32 - 0.25 * j as f32).to_le_bytes())
        .collect();
    write("latitude", "0", &lats);
    let lons: Vec<u8> = (0..nlon)
        .flat_map(|i| (0.25f32 * i as f32).to_le_bytes())
        .collect();
    write("longitude", "0", &lons);
    // value = level (hPa) + row / 1000: every level recognisable after the selection
    let mut raw = Vec::with_capacity(nlev * nlat * nlon * 4);
    for l in &levels {
        for j in 0..nlat {
            let v = *l as f32 + j as f32 / 1000.0;
            for _ in 0..nlon {
                raw.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    assert_eq!(raw.len(), 153_659_520);
    write(
        "temperature",
        "0.0.0.0",
        &zstd::bulk::compress(&raw, 1).unwrap(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_size_37_level_chunk_reads_with_the_trusted_limits_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("arco_0p25.zarr");
    write_full_size_store(&store);
    let hour = {
        let r = open(&store).await;
        r.times()[0]
    };
    // a miner's limits refuse it, naming the size
    let strict = Era5Reader::open(local(&store), ReadOptions::new("era5"))
        .await
        .unwrap();
    let e = strict
        .read(VarLevel::all(Variable::T), hour)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("153659520") && e.to_string().contains("67108864"),
        "{e}"
    );
    // the trusted defaults read it and keep the 13 scored levels
    let trusted = open(&store).await;
    let field = trusted
        .read(VarLevel::all(Variable::T), hour)
        .await
        .unwrap();
    assert_eq!(field.data.shape(), &[13, 721, 1440]);
    for (k, level) in PRESSURE_LEVELS_HPA.iter().enumerate() {
        for j in [0usize, 360, 720] {
            let want = f32::from(*level) + j as f32 / 1000.0;
            assert_eq!(
                field.data[[k, j, 77]].to_bits(),
                want.to_bits(),
                "{level} hPa row {j}"
            );
        }
    }
    let (answer, _) = trusted
        .publication(hour, &[Variable::T], Era5Flavour::Preliminary)
        .await
        .unwrap();
    assert_eq!(answer, Publication::Published);
}
