//! Reads of the committed fixture stores (written by xarray + zarr-python 2.18.7 / 3.x) through
//! object_store's local filesystem, compared bit for bit with the values numpy wrote.

mod common;

use chrono::{Datelike, TimeDelta, TimeZone, Utc};
use common::*;
use std::collections::HashMap;
use wx_data::Field;
use wx_data::sources::{ClimatologyReader, Era5Reader, MinerForecastReader};
use wx_model::catalogue::PRESSURE_LEVELS_HPA;
use wx_model::{ErrorKind, VarLevel, Variable};
use wx_zarr::{Compression, ReadOptions, Selection, ZarrDataset, ZarrError, ZarrFormat};

async fn open_miner(store: &str) -> MinerForecastReader {
    MinerForecastReader::open(fixture(store), ReadOptions::new(store), init())
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"))
}

/// Checks every probe of a miner-layout store against reads through the reader.
async fn check_miner_probes(store: &str) -> usize {
    let reader = open_miner(store).await;
    let mut cache: HashMap<(String, i64), Field> = HashMap::new();
    let probes = probes(store);
    assert!(!probes.is_empty());
    for p in &probes {
        let variable = Variable::from_store_name(&p.variable).unwrap();
        let vt = p.valid_time.unwrap();
        let key = (p.variable.clone(), vt.timestamp());
        if !cache.contains_key(&key) {
            let field = reader
                .read(VarLevel::all(variable), vt)
                .await
                .unwrap_or_else(|e| panic!("{store} {}: {e}", p.variable));
            assert_eq!(field.valid_time, vt);
            cache.insert(key.clone(), field);
        }
        let field = &cache[&key];
        let li = match p.level_hpa {
            Some(l) => field.level_index(l).expect("level present"),
            None => 0,
        };
        assert_eq!(field.lats[p.lat_index], p.lat, "{store} lat");
        assert_eq!(field.lons[p.lon_index], p.lon, "{store} lon");
        assert_probe(field.data[[li, p.lat_index, p.lon_index]], p, store);
    }
    probes.len()
}

#[tokio::test]
async fn miner_store_validates_and_reads_exactly_what_python_wrote() {
    let reader = open_miner("miner_v2_blosc_zstd").await;
    assert!(reader.problems().is_empty(), "{:?}", reader.problems());
    assert_eq!(reader.usable_variables(), Variable::ALL.to_vec());
    assert_eq!(reader.lead_hours(), vec![6, 12, 18, 24, 30, 36, 42, 48]);
    assert_eq!(reader.valid_times()[0], t("2024-12-30T06:00:00Z"));
    assert_eq!(reader.lats().len(), 36);
    assert_eq!(reader.lats()[0], 90.0);
    assert_eq!(reader.lats()[35], -85.0);
    assert_eq!(reader.lons().len(), 72);
    assert_eq!(reader.levels(Variable::T), Some(&PRESSURE_LEVELS_HPA[..]));
    let n = check_miner_probes("miner_v2_blosc_zstd").await;
    assert!(n > 250, "{n} probes");

    // surface fields have one level slice and no levels; z500 selects one level
    let f = reader
        .read_lead(VarLevel::all(Variable::Msl), 12)
        .await
        .unwrap();
    assert_eq!(f.data.shape(), &[1, 36, 72]);
    assert!(f.levels.is_empty());
    let z500 = reader
        .read_lead(VarLevel::at(Variable::Z, 500), 12)
        .await
        .unwrap();
    let z_all = reader
        .read_lead(VarLevel::all(Variable::Z), 12)
        .await
        .unwrap();
    assert_eq!(z500.levels, vec![500]);
    let i500 = z_all.level_index(500).unwrap();
    assert_eq!(
        z500.data.index_axis(ndarray::Axis(0), 0),
        z_all.data.index_axis(ndarray::Axis(0), i500)
    );
    // physically plausible: z500 around 5.5 km · g, q tiny at 50 hPa
    let mean = z500.data.mean().unwrap();
    assert!((45_000.0..58_000.0).contains(&mean), "z500 mean {mean}");
    let q = reader
        .read_lead(VarLevel::all(Variable::Q), 6)
        .await
        .unwrap();
    let q50 = q.data.index_axis(ndarray::Axis(0), 0).mean().unwrap();
    let q1000 = q.data.index_axis(ndarray::Axis(0), 12).mean().unwrap();
    assert!(q50 < 1e-5 && q1000 > 1e-3, "q50 {q50} q1000 {q1000}");
}

#[tokio::test]
async fn every_codec_and_layout_variant_reads_exactly() {
    for (store, compression) in [
        ("miner_v2_zstd", Compression::Zstd),
        ("miner_v2_gzip", Compression::Gzip),
        ("miner_v2_none", Compression::None),
        ("miner_v2_blosc_lz4", Compression::Blosc),
        ("miner_v2_pressure_level", Compression::Blosc),
        ("miner_v2_level_pa", Compression::Blosc),
        ("miner_v2_lat_asc_lon180", Compression::Blosc),
        ("miner_721_5deg", Compression::Blosc),
        ("miner_2p5deg", Compression::Blosc),
    ] {
        let ds = ZarrDataset::open(fixture(store), ReadOptions::new(store))
            .await
            .unwrap();
        assert_eq!(ds.format(), ZarrFormat::V2);
        assert!(ds.is_consolidated());
        let a = ds.array("2t").await.unwrap().unwrap();
        assert_eq!(a.compression(), compression, "{store}");
        let n = check_miner_probes(store).await;
        assert!(n > 20, "{store}: {n} probes");
    }
    // NaN written by the miner comes back as NaN at exactly those points
    let reader = open_miner("miner_v2_gzip").await;
    let f = reader
        .read_lead(VarLevel::all(Variable::T), 6)
        .await
        .unwrap();
    assert!(f.data[[0, 4, 5]].is_nan() && f.data[[12, 20, 60]].is_nan());
    assert_eq!(f.data.iter().filter(|v| v.is_nan()).count(), 2 * 13);
}

#[tokio::test]
async fn level_dimension_aliases_and_pa_levels_select_the_same_levels() {
    for store in ["miner_v2_pressure_level", "miner_v2_level_pa"] {
        let reader = open_miner(store).await;
        assert_eq!(
            reader.levels(Variable::T),
            Some(&PRESSURE_LEVELS_HPA[..]),
            "{store}"
        );
        let f = reader
            .read_lead(VarLevel::at(Variable::T, 850), 12)
            .await
            .unwrap();
        assert_eq!(f.levels, vec![850]);
    }
    let reader = open_miner("miner_v2_lat_asc_lon180").await;
    assert_eq!(reader.lats()[0], -85.0, "coordinates are kept as stored");
    assert_eq!(reader.lons()[0], -180.0);
}

#[tokio::test]
async fn zarr_v3_stores_from_zarr_python_3_read_exactly() {
    for (store, consolidated, compression) in [
        ("miner_v3", true, Compression::Zstd),
        ("miner_v3_blosc_unconsolidated", false, Compression::Blosc),
    ] {
        let ds = ZarrDataset::open(fixture(store), ReadOptions::new(store))
            .await
            .unwrap();
        assert_eq!(ds.format(), ZarrFormat::V3, "{store}");
        assert_eq!(ds.is_consolidated(), consolidated, "{store}");
        let t = ds.array("t").await.unwrap().unwrap();
        assert_eq!(t.dims(), ["time", "plev", "lat", "lon"]);
        assert_eq!(t.compression(), compression);
        assert!(ds.array("no_such_array").await.unwrap().is_none());
        let n = check_miner_probes(store).await;
        assert!(n >= 40, "{store}: {n}");
    }
}

#[tokio::test]
async fn variants_report_missing_variables_per_variable() {
    let reader = open_miner("miner_v2_zstd").await;
    assert_eq!(reader.usable_variables(), vec![Variable::T2m, Variable::T]);
    let problems = reader.problems();
    assert_eq!(problems.len(), 7);
    for (v, e) in &problems {
        assert!(
            matches!(e, ZarrError::MissingVariable { variable, .. } if variable == v),
            "{e}"
        );
        assert_eq!(e.kind(), ErrorKind::Format);
    }
    let err = reader
        .read_lead(VarLevel::all(Variable::U10), 6)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("10u") && err.to_string().contains("u10"),
        "{err}"
    );
}

#[tokio::test]
async fn a_valid_time_or_level_not_in_the_store_is_an_error_never_a_neighbour() {
    let reader = open_miner("miner_v2_blosc_zstd").await;
    let err = reader
        .read(VarLevel::all(Variable::T2m), init() + TimeDelta::hours(7))
        .await
        .unwrap_err();
    assert!(matches!(err, ZarrError::MissingTime { .. }), "{err}");
    assert!(err.to_string().contains("2024-12-30T07:00:00Z"), "{err}");
    assert!(
        reader
            .read_lead(VarLevel::all(Variable::T2m), 54)
            .await
            .is_err()
    );

    let era5 = Era5Reader::open(fixture("era5_arco"), ReadOptions::new("era5"))
        .await
        .unwrap();
    let err = era5
        .read(VarLevel::all(Variable::T2m), t("2024-12-30T00:00:00Z"))
        .await
        .unwrap_err();
    assert!(matches!(err, ZarrError::MissingTime { .. }), "{err}");
}

#[tokio::test]
async fn reading_one_lead_fetches_only_that_leads_chunk() {
    let rec = Recording::new(fixture("miner_v2_blosc_zstd"));
    let reader = MinerForecastReader::open(rec.clone(), ReadOptions::new("m"), init())
        .await
        .unwrap();
    let mut opened = rec.take();
    opened.sort();
    assert_eq!(opened, [".zmetadata", "lat/0", "lon/0", "plev/0", "time/0"]);
    reader
        .read_lead(VarLevel::all(Variable::T2m), 12)
        .await
        .unwrap();
    assert_eq!(rec.take(), ["2t/1.0.0"]);
    reader
        .read_lead(VarLevel::at(Variable::Z, 500), 48)
        .await
        .unwrap();
    assert_eq!(rec.take(), ["z/7.0.0.0"]);
}

#[tokio::test]
async fn era5_reads_the_scored_levels_out_of_37_and_matches_python() {
    let era5 = Era5Reader::open(fixture("era5_arco"), ReadOptions::new("era5"))
        .await
        .unwrap();
    assert_eq!(era5.lats().len(), 37);
    assert_eq!(era5.times().len(), 8);
    let ds = ZarrDataset::open(fixture("era5_arco"), ReadOptions::new("era5"))
        .await
        .unwrap();
    let level_coord = ds
        .array("level")
        .await
        .unwrap()
        .unwrap()
        .read_coordinate()
        .await
        .unwrap();
    assert_eq!(level_coord.len(), 37);
    let mut checked = 0;
    for p in probes("era5_arco") {
        let variable = Variable::from_store_name(&p.variable).unwrap();
        let vt = p.valid_time.unwrap();
        // every probe through the generic array API
        let array = ds.array(&p.variable).await.unwrap().unwrap();
        let t_idx = era5.times().iter().position(|x| *x == vt).unwrap() as u64;
        let mut sel = vec![Selection::Index(t_idx)];
        if let Some(l) = p.level_hpa {
            let li = level_coord.iter().position(|x| *x == f64::from(l)).unwrap();
            sel.push(Selection::Index(li as u64));
        }
        sel.push(Selection::Index(p.lat_index as u64));
        sel.push(Selection::Index(p.lon_index as u64));
        let v = array.read_f32(&sel).await.unwrap();
        assert_eq!(v.ndim(), 0);
        assert_probe(v[[]], &p, "era5 array");
        // scored levels also through the reader
        if p.level_hpa.is_none_or(|l| PRESSURE_LEVELS_HPA.contains(&l)) {
            let sel = match p.level_hpa {
                Some(l) => VarLevel::at(variable, l),
                None => VarLevel::all(variable),
            };
            let f = era5.read(sel, vt).await.unwrap();
            assert_probe(f.data[[0, p.lat_index, p.lon_index]], &p, "era5 reader");
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");
    let t_all = era5
        .read(VarLevel::all(Variable::T), t("2024-12-31T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(t_all.levels, PRESSURE_LEVELS_HPA.to_vec());
    assert_eq!(t_all.data.shape(), &[13, 37, 72]);
}

#[tokio::test]
async fn miner_equals_truth_plus_an_error_of_the_expected_size() {
    let miner = open_miner("miner_v2_blosc_zstd").await;
    let era5 = Era5Reader::open(fixture("era5_arco"), ReadOptions::new("era5"))
        .await
        .unwrap();
    let mut previous = 0.0;
    for lead in [6u32, 48] {
        let vt = init() + TimeDelta::hours(i64::from(lead));
        let f = miner.read(VarLevel::all(Variable::T2m), vt).await.unwrap();
        let o = era5.read(VarLevel::all(Variable::T2m), vt).await.unwrap();
        // same 5° grid, the miner lacks the -90 row
        let o36 = o.data.slice(ndarray::s![.., 0..36, ..]);
        let rmse = ((&f.data - &o36)
            .mapv(|e| f64::from(e).powi(2))
            .mean()
            .unwrap())
        .sqrt();
        assert!((0.2..4.0).contains(&rmse), "lead {lead}: rmse {rmse}");
        assert!(rmse > previous, "error grows with lead");
        previous = rmse;
    }
}

#[tokio::test]
async fn climatology_selects_day_of_year_and_floored_hour_in_wb2_dimension_order() {
    let ds = ZarrDataset::open(fixture("clim_wb2"), ReadOptions::new("wb2"))
        .await
        .unwrap();
    let temperature = ds.array("temperature").await.unwrap().unwrap();
    assert_eq!(
        temperature.dims(),
        ["hour", "dayofyear", "level", "longitude", "latitude"]
    );
    let clim = ClimatologyReader::open(fixture("clim_wb2"), ReadOptions::new("wb2"))
        .await
        .unwrap();
    assert_eq!(clim.hour_step(), 6);
    assert_eq!(clim.lats()[0], -90.0, "ascending as stored");
    let mut checked = 0;
    for p in probes("clim_wb2") {
        let variable = Variable::from_store_name(&p.variable).unwrap();
        let (hour, day) = (p.hour.unwrap(), p.dayofyear.unwrap());
        // a valid time in leap year 2024 with that ordinal day, 3 h after the stored hour
        let vt = Utc.with_ymd_and_hms(2024, 1, 1, hour + 3, 0, 0).unwrap()
            + TimeDelta::days(i64::from(day) - 1);
        assert_eq!(vt.ordinal(), day);
        assert_eq!(clim.selected_hour_and_day(vt), (hour, day));
        let sel = match p.level_hpa {
            Some(l) => VarLevel::at(variable, l),
            None => VarLevel::all(variable),
        };
        let f = clim.read(sel, vt).await.unwrap();
        assert_eq!(f.valid_time, vt);
        assert_eq!(
            f.data.shape(),
            &[1, 19, 36],
            "(level, lat, lon) from (.., lon, lat)"
        );
        // the (lon, lat) storage order is copied anyway, and the copy puts the rows north
        // first: the stored row i is row 18 - i of the field
        assert!(f.lats.windows(2).all(|w| w[0] > w[1]), "north first");
        let row = f.lats.len() - 1 - p.lat_index;
        assert_eq!(f.lats[row], p.lat);
        assert_eq!(f.lons[p.lon_index], p.lon);
        assert_probe(f.data[[0, row, p.lon_index]], &p, "clim");
        checked += 1;
    }
    assert!(checked > 100);
    // 2024-12-31 is day 366 of the leap year; 2025-01-01 is day 1
    let a = clim.selected_hour_and_day(t("2024-12-31T23:59:00Z"));
    assert_eq!(a, (18, 366));
    assert_eq!(
        clim.selected_hour_and_day(t("2025-01-01T05:00:00Z")),
        (0, 1)
    );
}

#[tokio::test]
async fn v2_without_consolidated_metadata_opens_arrays_by_name() {
    let (_dir, path) = temp_copy("miner_v2_zstd");
    std::fs::remove_file(path.join(".zmetadata")).unwrap();
    let rec = Recording::new(local(&path));
    let reader = MinerForecastReader::open(rec.clone(), ReadOptions::new("m"), init())
        .await
        .unwrap();
    let keys = rec.take();
    assert!(
        keys.contains(&"2t/.zarray".to_owned()) && keys.contains(&".zgroup".to_owned()),
        "{keys:?}"
    );
    assert_eq!(reader.usable_variables(), vec![Variable::T2m, Variable::T]);
    let p = probes("miner_v2_zstd")
        .into_iter()
        .find(|p| p.variable == "t")
        .unwrap();
    let f = reader
        .read(VarLevel::all(Variable::T), p.valid_time.unwrap())
        .await
        .unwrap();
    let li = f.level_index(p.level_hpa.unwrap()).unwrap();
    assert_probe(
        f.data[[li, p.lat_index, p.lon_index]],
        &p,
        "unconsolidated v2",
    );
}

#[tokio::test]
async fn big_endian_elements_read_the_same_values() {
    // The same store with `2t` rewritten big-endian (`>f4`, each element's bytes reversed),
    // as zarr-python writes it when asked for that byte order.
    let store = "miner_v2_none";
    let (_dir, path) = temp_copy(store);
    let zmetadata = path.join(".zmetadata");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&zmetadata).unwrap()).unwrap();
    assert_eq!(meta["metadata"]["2t/.zarray"]["dtype"], "<f4");
    meta["metadata"]["2t/.zarray"]["dtype"] = ">f4".into();
    std::fs::write(&zmetadata, serde_json::to_vec(&meta).unwrap()).unwrap();
    let zarray = path.join("2t/.zarray");
    let mut array: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&zarray).unwrap()).unwrap();
    array["dtype"] = ">f4".into();
    std::fs::write(&zarray, serde_json::to_vec(&array).unwrap()).unwrap();
    let mut swapped = 0;
    for chunk in std::fs::read_dir(path.join("2t")).unwrap() {
        let chunk = chunk.unwrap().path();
        if chunk
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with('.')
        {
            continue;
        }
        let mut bytes = std::fs::read(&chunk).unwrap();
        bytes.chunks_exact_mut(4).for_each(<[u8]>::reverse);
        std::fs::write(&chunk, bytes).unwrap();
        swapped += 1;
    }
    assert!(swapped >= 2, "{swapped} chunks");
    let big = MinerForecastReader::open(local(&path), ReadOptions::new(store), init())
        .await
        .unwrap();
    let little = open_miner(store).await;
    for lead in little.lead_hours() {
        let want = little
            .read_lead(VarLevel::all(Variable::T2m), lead)
            .await
            .unwrap();
        let got = big
            .read_lead(VarLevel::all(Variable::T2m), lead)
            .await
            .unwrap();
        let bits = |f: &Field| f.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "lead {lead}");
        assert!(want.data.iter().any(|v| *v != 0.0 && !v.is_nan()));
    }
}

/// Reads every variable of an interop store whole and compares with what xarray decoded.
async fn check_expected(store: &str, options: ReadOptions) -> ZarrDataset {
    let ds = ZarrDataset::open(fixture(store), options)
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    let want = expected(store);
    assert!(!want.is_empty());
    for (name, want) in &want {
        let array = ds
            .array(name)
            .await
            .unwrap_or_else(|e| panic!("{store}/{name}: {e}"))
            .unwrap();
        let selection = vec![Selection::All; array.dims().len()];
        let got = array
            .read_f32(&selection)
            .await
            .unwrap_or_else(|e| panic!("{store}/{name}: {e}"));
        assert_expected(&got, want, &format!("{store}/{name}"));
    }
    ds
}

#[tokio::test]
async fn zlib_and_lz4_stores_from_zarr_python_2_read_as_xarray_decodes() {
    for (store, compression) in [
        ("interop_v2_zlib", Compression::Zlib),
        ("interop_v2_lz4", Compression::Lz4),
    ] {
        let ds = check_expected(store, ReadOptions::new(store)).await;
        let a = ds.array("2t").await.unwrap().unwrap();
        assert_eq!(a.compression(), compression, "{store}");
        assert!(a.codecs().sharding.is_none() && !a.codecs().encoding.checksum);
        // and through the miner reader, as a miner store with these codecs would be scored
        let reader = open_miner(store).await;
        assert_eq!(reader.usable_variables(), vec![Variable::T2m], "{store}");
        let f = reader
            .read_lead(VarLevel::all(Variable::T2m), 6)
            .await
            .unwrap();
        assert!(f.data[[0, 4, 5]].is_nan(), "{store}: NaN written at (4, 5)");
        assert_eq!(f.data.iter().filter(|v| v.is_nan()).count(), 1, "{store}");
    }
}

#[tokio::test]
async fn zarr_python_3_sharding_crc32c_lz4_zlib_and_cf_read_as_xarray_decodes() {
    let store = "interop_v3";
    let ds = check_expected(store, ReadOptions::new(store)).await;
    assert_eq!(ds.format(), ZarrFormat::V3);
    let two_t = ds.array("2t").await.unwrap().unwrap();
    let sharding = two_t.codecs().sharding.clone().expect("2t is sharded");
    assert_eq!(sharding.inner_shape, vec![1, 18, 36]);
    assert_eq!(sharding.inner.compression, Compression::Zstd);
    assert!(sharding.inner.checksum && sharding.index_checksum && !sharding.index_at_start);
    assert_eq!(
        two_t.chunk_shape(),
        vec![2, 36, 72],
        "the shard is the unit read"
    );
    let msl = ds.array("msl").await.unwrap().unwrap();
    assert_eq!(msl.compression(), Compression::Lz4);
    let u = ds.array("10u").await.unwrap().unwrap();
    assert_eq!(u.compression(), Compression::Zlib);
    let v = ds.array("10v").await.unwrap().unwrap();
    assert_eq!(v.element_type(), wx_zarr::ElementType::I16);
    let cf = v.cf_decoding().expect("10v is CF-packed");
    assert_eq!(
        (cf.scale_factor, cf.add_offset, cf.fill_values.as_slice()),
        (Some(0.005), Some(0.0), &[-32767.0][..])
    );

    // the miner reader reads the float32 variables, and keeps refusing integer data
    let reader = open_miner(store).await;
    let usable = reader.usable_variables();
    assert_eq!(usable, vec![Variable::T2m, Variable::U10, Variable::Msl]);
    let problems = reader.problems();
    let (_, e) = problems.iter().find(|(v, _)| *v == Variable::V10).unwrap();
    assert!(
        e.to_string().contains("float32") && e.to_string().contains("int16"),
        "{e}"
    );
    // the second valid time's first inner chunk was all NaN: absent from the shard, read as
    // the fill value
    let f = reader
        .read_lead(VarLevel::all(Variable::T2m), 12)
        .await
        .unwrap();
    assert!(
        f.data
            .slice(ndarray::s![0, ..18, ..36])
            .iter()
            .all(|v| v.is_nan())
    );
    let below = f.data.slice(ndarray::s![0, 18.., ..]);
    assert_eq!(
        below.iter().filter(|v| v.is_nan()).count(),
        1,
        "only (20, 60)"
    );
}

#[tokio::test]
async fn cf_packed_integers_and_float_fill_values_read_as_xarray_decodes() {
    let store = "interop_v2_cf";
    let ds = check_expected(store, ReadOptions::trusted(store)).await;
    let t = ds.array("2t").await.unwrap().unwrap();
    assert_eq!(t.element_type(), wx_zarr::ElementType::I16);
    let cf = t.cf_decoding().unwrap();
    assert_eq!(
        cf.fill_values,
        vec![-32767.0],
        "v2 fill_value is the _FillValue"
    );
    let u = ds.array("10u").await.unwrap().unwrap();
    assert_eq!(u.element_type(), wx_zarr::ElementType::I8);
    assert_eq!(
        u.cf_decoding().unwrap().fill_values,
        vec![-128.0],
        "missing_value"
    );
    let msl = ds.array("msl").await.unwrap().unwrap();
    assert!(
        msl.cf_decoding().unwrap().is_mask_only(),
        "-9999.0 masked, nothing scaled"
    );

    // a truth source with packed variables reads them as fields with the same values
    let want = expected(store);
    let era5 = Era5Reader::open(fixture(store), ReadOptions::trusted(store))
        .await
        .unwrap();
    for (name, variable) in [
        ("2t", Variable::T2m),
        ("10u", Variable::U10),
        ("msl", Variable::Msl),
    ] {
        let whole = ds.array(name).await.unwrap().unwrap();
        for (ti, vt) in era5.times().to_vec().into_iter().enumerate() {
            let f = era5.read(VarLevel::all(variable), vt).await.unwrap();
            let slice = whole
                .read_f32(&[Selection::Index(ti as u64), Selection::All, Selection::All])
                .await
                .unwrap();
            let got: Vec<u32> = f.data.iter().map(|x| x.to_bits()).collect();
            let want: Vec<u32> = slice.iter().map(|x| x.to_bits()).collect();
            assert_eq!(got, want, "{name} {vt}");
        }
        assert!(
            want[name].nan_count > 0,
            "{name}: the fixture has missing values"
        );
    }
    // and the miner reader refuses packed integers (miners write float32, docs/data.md §1.1)
    let miner = open_miner(store).await;
    assert_eq!(miner.usable_variables(), vec![Variable::Msl]);
}
