//! The truth cube and the reference products written from it: ERA5 (ARCO layout),
//! climatology (WeatherBench2 layout) and GFS (GRIB2 tree).

use crate::SimError;
use crate::model::{Grid, TruthModel, anomaly_scale, smooth_noise};
use crate::rng::key;
use crate::spec::{ERA5_LEVELS_37, Era5Levels, Era5Publication, WorldSpec};
use crate::world::Probe;
use crate::zarr_write::{ArrayDef, Codec, Dtype, StoreWriter, WrittenFiles, f32_bytes};
use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};
use rayon::prelude::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use wx_data::Field;
use wx_grib::GfsLayout;
use wx_grib::writer::{CycleField, write_local_cycle};
use wx_model::catalogue::PRESSURE_LEVELS_HPA;
use wx_model::{Level, Variable};

/// Stream ids of the GFS forecast and analysis errors (miners use their uid).
pub(crate) const GFS_STREAM: u64 = 0x1_0000;
pub(crate) const ANALYSIS_STREAM: u64 = 0x1_0001;
/// Error scale of the GFS forecast (between the good and the average skilled miners).
pub(crate) const GFS_ERROR_SCALE: f64 = 0.8;
/// Error of the GFS analysis relative to the error scale at 1.0.
pub(crate) const ANALYSIS_ERROR: f64 = 0.15;

/// The field slots of one valid time: the 4 surface variables, then each multi-level variable
/// at the 13 levels ascending, in `Variable::ALL` order.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    entries: Vec<(Variable, Option<Level>)>,
}

impl Slots {
    pub fn new() -> Slots {
        let mut entries = Vec::new();
        for v in Variable::ALL {
            if v.is_surface() {
                entries.push((*v, None));
            } else {
                for l in PRESSURE_LEVELS_HPA {
                    entries.push((*v, Some(l)));
                }
            }
        }
        Slots { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn entries(&self) -> &[(Variable, Option<Level>)] {
        &self.entries
    }

    /// The slots of a variable (1 or 13 consecutive).
    pub fn of(&self, variable: Variable) -> std::ops::Range<usize> {
        let start = self
            .entries
            .iter()
            .position(|(v, _)| *v == variable)
            .expect("every variable has a slot");
        let n = if variable.is_surface() { 1 } else { 13 };
        start..start + n
    }
}

/// The level in hPa of a slot (0 for surface variables; the model ignores it).
pub(crate) fn level_hpa(level: Option<Level>) -> f64 {
    level.map_or(0.0, f64::from)
}

/// Truth and climatology at every 6-hourly valid time from the init to the last lead, on the
/// truth grid, as f32 (`[time][slot * points + point]`).
pub(crate) struct TruthCube {
    pub grid: Grid,
    pub slots: Slots,
    pub times: Vec<DateTime<Utc>>,
    pub truth: Vec<Vec<f32>>,
    pub climatology: Vec<Vec<f32>>,
}

impl TruthCube {
    pub fn compute(model: &TruthModel, spec: &WorldSpec) -> TruthCube {
        let grid = Grid::global(spec.resolution_deg);
        let slots = Slots::new();
        let times: Vec<DateTime<Utc>> = (0..=spec.steps)
            .map(|k| spec.gfs_init + TimeDelta::hours(6 * i64::from(k)))
            .collect();
        let (truth, climatology): (Vec<Vec<f32>>, Vec<Vec<f32>>) = times
            .par_iter()
            .map(|time| {
                let mut truth = Vec::with_capacity(slots.len() * grid.len());
                let mut clim = Vec::with_capacity(slots.len() * grid.len());
                for (v, l) in slots.entries() {
                    let p = level_hpa(*l);
                    let c = model.climatology_field(*v, p, time.ordinal(), time.hour(), &grid);
                    let a = model.anomaly_field(*v, p, *time, &grid);
                    truth.extend(c.iter().zip(&a).map(|(c, a)| (c + a) as f32));
                    clim.extend(c.iter().map(|c| *c as f32));
                }
                (truth, clim)
            })
            .unzip();
        TruthCube {
            grid,
            slots,
            times,
            truth,
            climatology,
        }
    }

    pub fn points(&self) -> usize {
        self.grid.len()
    }

    /// Index of a valid time.
    pub fn time_index(&self, time: DateTime<Utc>) -> Option<usize> {
        self.times.iter().position(|t| *t == time)
    }

    /// The values of one slot at one time.
    pub fn truth_slot(&self, time: usize, slot: usize) -> &[f32] {
        let n = self.points();
        &self.truth[time][slot * n..(slot + 1) * n]
    }

    /// The climatology of one slot at one time.
    pub fn climatology_slot(&self, time: usize, slot: usize) -> &[f32] {
        let n = self.points();
        &self.climatology[time][slot * n..(slot + 1) * n]
    }
}

/// The error standard deviation at error scale 1.0 and lead 0 of a variable (q: relative).
pub(crate) fn error_sigma(variable: Variable, level_hpa: f64) -> f64 {
    match variable {
        Variable::T2m => 0.8,
        Variable::Msl => 120.0,
        Variable::U10 | Variable::V10 => 1.0,
        Variable::T => 0.6,
        Variable::U | Variable::V => 1.5,
        Variable::Q => 0.08,
        Variable::Z => 0.33 * anomaly_scale(Variable::Z, level_hpa),
    }
}

/// A forecast with error scale `scale` from stream `stream` at `lead` hours, valid at the cube's
/// time `time`: truth − damping · anomaly + scale · σ · (0.15 · bias + growth(lead) · E), with
/// growth = (0.3 + lead / 48)^0.75, damping = min(0.5, 0.03 · scale · lead / 24), E a smooth
/// unit field per (stream, slot, lead), bias a constant per (stream, slot); q is relative to
/// its climatology and never negative. Returns all slots, flat.
pub(crate) fn skilled_forecast(
    cube: &TruthCube,
    seed: u64,
    stream: u64,
    scale: f64,
    time: usize,
    lead: u32,
) -> Vec<f32> {
    let lead_f = f64::from(lead);
    let growth = (0.3 + lead_f / 48.0).powf(0.75);
    let damping = (0.03 * scale * lead_f / 24.0).min(0.5);
    let mut out = Vec::with_capacity(cube.slots.len() * cube.points());
    for (slot, (v, l)) in cube.slots.entries().iter().enumerate() {
        let p = level_hpa(*l);
        let sigma = error_sigma(*v, p) * scale;
        let bias = 2.0 * crate::rng::unit(key(&[seed, stream, slot as u64, 0xb1a5])) - 1.0;
        let noise = smooth_noise(
            key(&[seed, stream, slot as u64, u64::from(lead)]),
            &cube.grid,
        );
        let truth = cube.truth_slot(time, slot);
        let clim = cube.climatology_slot(time, slot);
        for ((t, c), e) in truth.iter().zip(clim).zip(&noise) {
            let (t, c) = (f64::from(*t), f64::from(*c));
            let error = sigma * (0.15 * bias + growth * e);
            let value = if *v == Variable::Q {
                (t - damping * (t - c) + c * error).max(0.0)
            } else {
                t - damping * (t - c) + error
            };
            out.push(value as f32);
        }
    }
    out
}

/// The GFS analysis valid at the cube's time `time`: truth + a small smooth error.
pub(crate) fn gfs_analysis(cube: &TruthCube, seed: u64, time: usize) -> Vec<f32> {
    let hours = (cube.times[time] - cube.times[0]).num_hours() as u64;
    let mut out = Vec::with_capacity(cube.slots.len() * cube.points());
    for (slot, (v, l)) in cube.slots.entries().iter().enumerate() {
        let sigma = error_sigma(*v, level_hpa(*l)) * ANALYSIS_ERROR;
        let noise = smooth_noise(
            key(&[seed, ANALYSIS_STREAM, slot as u64, hours]),
            &cube.grid,
        );
        let clim = cube.climatology_slot(time, slot);
        for ((t, c), e) in cube.truth_slot(time, slot).iter().zip(clim).zip(&noise) {
            let (t, c) = (f64::from(*t), f64::from(*c));
            let value = if *v == Variable::Q {
                (t + c * sigma * e).max(0.0)
            } else {
                t + sigma * e
            };
            out.push(value as f32);
        }
    }
    out
}

/// Probe points of a grid: corners, centre and two more, as (row, column).
pub(crate) fn probe_points(rows: usize, cols: usize) -> Vec<(usize, usize)> {
    let mut points = vec![
        (0, 0),
        (rows / 4, cols / 2),
        (rows / 2, cols / 3),
        (rows * 3 / 4, cols - 1),
        (rows - 1, cols - 1),
    ];
    points.dedup();
    points
}

/// The level probed for a multi-level variable.
pub(crate) fn probe_level(variable: Variable) -> Option<Level> {
    match variable {
        Variable::T => Some(850),
        Variable::U | Variable::V => Some(250),
        Variable::Q => Some(1000),
        Variable::Z => Some(500),
        _ => None,
    }
}

/// ERA5's `units` spelling per variable.
fn era5_units(variable: Variable) -> &'static str {
    match variable {
        Variable::T2m | Variable::T => "K",
        Variable::U10 | Variable::V10 | Variable::U | Variable::V => "m s**-1",
        Variable::Msl => "Pa",
        Variable::Q => "kg kg**-1",
        Variable::Z => "m**2 s**-2",
    }
}

/// Writes the ERA5 truth in the ARCO-ERA5 layout (see the crate docs); returns the files and
/// probes.
pub(crate) fn write_era5(
    dir: &Path,
    model: &TruthModel,
    cube: &TruthCube,
    levels: Era5Levels,
    publication: Era5Publication,
) -> Result<(WrittenFiles, Vec<Probe>), SimError> {
    let writer = StoreWriter::create(dir)?;
    let grid = &cube.grid;
    let (nlat, nlon) = (grid.lats.len() as u64, grid.lons.len() as u64);
    // the axis: the cube's times, padded as the public store allocates ahead of the data
    let mut axis = cube.times.clone();
    let mut root_attrs = serde_json::Map::new();
    if let Era5Publication::Progressive {
        published_through,
        padding_days,
    } = publication
    {
        let last = *cube.times.last().expect("at least one time");
        for k in 1..=i64::from(padding_days) * 4 {
            axis.push(last + TimeDelta::hours(6 * k));
        }
        root_attrs = crate::publication::root_attributes(cube.times[0], published_through);
    }
    let nt = axis.len() as u64;
    let level_list: Vec<Level> = match levels {
        Era5Levels::Scored => PRESSURE_LEVELS_HPA.to_vec(),
        Era5Levels::Arco37 => ERA5_LEVELS_37.to_vec(),
    };
    let nl = level_list.len() as u64;
    let epoch = DateTime::<Utc>::from_timestamp(-2_208_988_800, 0).expect("1900-01-01");
    let hours: Vec<i64> = axis.iter().map(|t| (*t - epoch).num_hours()).collect();
    let coord = |name: &str, n: u64, dtype| {
        ArrayDef::new(name, &[name], &[n], &[n], dtype, Codec::BloscLz4)
    };
    writer.coordinate_i64(
        &coord("time", nt, Dtype::I8)
            .attr("calendar", json!("proleptic_gregorian"))
            .attr("units", json!("hours since 1900-01-01")),
        &hours,
    )?;
    writer.coordinate_i64(
        &coord("level", nl, Dtype::I8)
            .attr("long_name", json!("pressure_level"))
            .attr("units", json!("millibars")),
        &level_list.iter().map(|l| i64::from(*l)).collect::<Vec<_>>(),
    )?;
    writer.coordinate_f32(
        &coord("latitude", nlat, Dtype::F4)
            .attr("long_name", json!("latitude"))
            .attr("units", json!("degrees_north")),
        &grid.lats.iter().map(|v| *v as f32).collect::<Vec<_>>(),
    )?;
    writer.coordinate_f32(
        &coord("longitude", nlon, Dtype::F4)
            .attr("long_name", json!("longitude"))
            .attr("units", json!("degrees_east")),
        &grid.lons.iter().map(|v| *v as f32).collect::<Vec<_>>(),
    )?;
    let mut arrays = Vec::new();
    for v in Variable::ALL {
        let name = v.long_name();
        let def = if v.is_surface() {
            ArrayDef::new(
                name,
                &["time", "latitude", "longitude"],
                &[nt, nlat, nlon],
                &[1, nlat, nlon],
                Dtype::F4,
                Codec::BloscZstd { clevel: 5 },
            )
        } else {
            ArrayDef::new(
                name,
                &["time", "level", "latitude", "longitude"],
                &[nt, nl, nlat, nlon],
                &[1, nl, nlat, nlon],
                Dtype::F4,
                Codec::BloscZstd { clevel: 5 },
            )
        };
        let def = def
            .attr("long_name", json!(name.replace('_', " ")))
            .attr("short_name", json!(v.as_str()))
            .attr("units", json!(era5_units(*v)));
        writer.add_array(&def)?;
        arrays.push((*v, def));
    }
    let probes: Vec<Vec<Probe>> = (0..cube.times.len())
        .into_par_iter()
        .map(|ti| -> Result<Vec<Probe>, SimError> {
            let mut probes = Vec::new();
            for (v, def) in &arrays {
                let values: Vec<f32> = if v.is_surface() {
                    cube.truth_slot(ti, cube.slots.of(*v).start).to_vec()
                } else {
                    let mut values = Vec::with_capacity(level_list.len() * grid.len());
                    for level in &level_list {
                        match PRESSURE_LEVELS_HPA.iter().position(|l| l == level) {
                            Some(k) => values.extend_from_slice(
                                cube.truth_slot(ti, cube.slots.of(*v).start + k),
                            ),
                            None => values.extend(
                                model
                                    .truth_field(*v, f64::from(*level), cube.times[ti], grid)
                                    .iter()
                                    .map(|x| *x as f32),
                            ),
                        }
                    }
                    values
                };
                let index: Vec<u64> = if v.is_surface() {
                    vec![ti as u64, 0, 0]
                } else {
                    vec![ti as u64, 0, 0, 0]
                };
                writer.write_chunk(def, &index, &f32_bytes(&values))?;
                if is_probe_time(ti, cube.times.len()) {
                    let level = probe_level(*v);
                    let offset = level
                        .and_then(|l| level_list.iter().position(|x| *x == l))
                        .unwrap_or(0)
                        * grid.len();
                    for (j, i) in probe_points(grid.lats.len(), grid.lons.len()) {
                        probes.push(Probe {
                            variable: *v,
                            level,
                            valid_time: cube.times[ti],
                            lat_index: j,
                            lon_index: i,
                            lat: grid.lats[j],
                            lon: grid.lons[i],
                            value: values[offset + j * grid.lons.len() + i],
                        });
                    }
                }
            }
            Ok(probes)
        })
        .collect::<Result<_, _>>()?;
    Ok((
        writer.finish_with_attrs(root_attrs)?,
        probes.into_iter().flatten().collect(),
    ))
}

/// Whether time index `ti` of `n` is probed (first, middle, last).
pub(crate) fn is_probe_time(ti: usize, n: usize) -> bool {
    ti == 0 || ti == n / 2 || ti + 1 == n
}

/// The (day of year, hour) pairs the climatology must hold for the cube's valid times: every
/// hour 0/6/12/18 of every day from one day before the init to one day after the last time.
pub(crate) fn climatology_days(cube: &TruthCube) -> BTreeSet<u32> {
    let first = cube.times[0] - TimeDelta::days(1);
    let last = *cube.times.last().expect("at least one time") + TimeDelta::days(1);
    let mut days = BTreeSet::new();
    let mut t = first;
    while t <= last {
        days.insert(t.ordinal());
        t += TimeDelta::hours(6);
    }
    days
}

/// Writes the climatology in the WeatherBench2 layout (see the crate docs).
pub(crate) fn write_climatology(
    dir: &Path,
    model: &TruthModel,
    cube: &TruthCube,
) -> Result<(WrittenFiles, Vec<Probe>, Vec<u32>), SimError> {
    let writer = StoreWriter::create(dir)?;
    let grid = cube.grid.flipped(); // latitude ascending, like WB2
    let (nlat, nlon) = (grid.lats.len() as u64, grid.lons.len() as u64);
    let hours: Vec<i64> = vec![0, 6, 12, 18];
    let coord = |name: &str, n: u64, dtype| {
        ArrayDef::new(name, &[name], &[n], &[n], dtype, Codec::BloscLz4)
    };
    writer.coordinate_i64(&coord("hour", 4, Dtype::I8), &hours)?;
    writer.coordinate_i64(
        &coord("dayofyear", 366, Dtype::I8),
        &(1..=366).collect::<Vec<i64>>(),
    )?;
    writer.coordinate_i64(
        &coord("level", 13, Dtype::I8),
        &PRESSURE_LEVELS_HPA
            .iter()
            .map(|l| i64::from(*l))
            .collect::<Vec<_>>(),
    )?;
    writer.coordinate_f64(&coord("latitude", nlat, Dtype::F8), &grid.lats)?;
    writer.coordinate_f64(&coord("longitude", nlon, Dtype::F8), &grid.lons)?;
    let mut arrays = Vec::new();
    for v in Variable::ALL {
        let def = if v.is_surface() {
            ArrayDef::new(
                v.long_name(),
                &["hour", "dayofyear", "longitude", "latitude"],
                &[4, 366, nlon, nlat],
                &[1, 1, nlon, nlat],
                Dtype::F4,
                Codec::Zstd { level: 3 },
            )
        } else {
            ArrayDef::new(
                v.long_name(),
                &["hour", "dayofyear", "level", "longitude", "latitude"],
                &[4, 366, 13, nlon, nlat],
                &[1, 1, 13, nlon, nlat],
                Dtype::F4,
                Codec::Zstd { level: 3 },
            )
        };
        writer.add_array(&def)?;
        arrays.push((*v, def));
    }
    let days: Vec<u32> = climatology_days(cube).into_iter().collect();
    let jobs: Vec<(u32, usize)> = days
        .iter()
        .flat_map(|d| (0..4).map(move |h| (*d, h)))
        .collect();
    let probe_days = [days[0], days[days.len() / 2], days[days.len() - 1]];
    let probes: Vec<Vec<Probe>> = jobs
        .par_iter()
        .map(|(day, h)| -> Result<Vec<Probe>, SimError> {
            let hour = hours[*h] as u32;
            let mut probes = Vec::new();
            for (v, def) in &arrays {
                let levels: Vec<f64> = if v.is_surface() {
                    vec![0.0]
                } else {
                    PRESSURE_LEVELS_HPA.iter().map(|l| f64::from(*l)).collect()
                };
                // (level, lon, lat) order
                let mut values = Vec::with_capacity(levels.len() * grid.len());
                let mut per_level = Vec::with_capacity(levels.len());
                for p in &levels {
                    let field = model.climatology_field(*v, *p, *day, hour, &grid);
                    for i in 0..grid.lons.len() {
                        for j in 0..grid.lats.len() {
                            values.push(field[j * grid.lons.len() + i] as f32);
                        }
                    }
                    per_level.push(field);
                }
                let index: Vec<u64> = if v.is_surface() {
                    vec![*h as u64, u64::from(day - 1), 0, 0]
                } else {
                    vec![*h as u64, u64::from(day - 1), 0, 0, 0]
                };
                writer.write_chunk(def, &index, &f32_bytes(&values))?;
                if probe_days.contains(day) && hour == 12 {
                    let level = probe_level(*v);
                    let k = level
                        .and_then(|l| PRESSURE_LEVELS_HPA.iter().position(|x| *x == l))
                        .unwrap_or(0);
                    for (j, i) in probe_points(grid.lats.len(), grid.lons.len()) {
                        probes.push(Probe {
                            variable: *v,
                            level,
                            valid_time: valid_time_of(cube, *day, hour),
                            lat_index: j,
                            lon_index: i,
                            lat: grid.lats[j],
                            lon: grid.lons[i],
                            value: per_level[k][j * grid.lons.len() + i] as f32,
                        });
                    }
                }
            }
            Ok(probes)
        })
        .collect::<Result<_, _>>()?;
    Ok((
        writer.finish()?,
        probes.into_iter().flatten().collect(),
        days,
    ))
}

/// A valid time near the cube whose day of year is `day`, at `hour`.
fn valid_time_of(cube: &TruthCube, day: u32, hour: u32) -> DateTime<Utc> {
    let mut t = cube.times[0] - TimeDelta::days(1);
    let last = *cube.times.last().expect("times") + TimeDelta::days(1);
    while t <= last {
        if t.ordinal() == day {
            return t.with_hour(hour).expect("hour 0..24 is valid");
        }
        t += TimeDelta::hours(6);
    }
    cube.times[0]
}

/// The 9 variables at one time as [`Field`]s on the truth grid (surface `[1, lat, lon]`,
/// multi-level `[13, lat, lon]`).
pub(crate) fn slots_to_fields(
    cube: &TruthCube,
    values: &[f32],
    valid_time: DateTime<Utc>,
) -> Result<Vec<Field>, SimError> {
    let n = cube.points();
    let (nlat, nlon) = (cube.grid.lats.len(), cube.grid.lons.len());
    Variable::ALL
        .iter()
        .map(|v| {
            let range = cube.slots.of(*v);
            let data = values[range.start * n..range.end * n].to_vec();
            let levels = if v.is_surface() {
                vec![]
            } else {
                PRESSURE_LEVELS_HPA.to_vec()
            };
            let array = ndarray::Array3::from_shape_vec((range.len(), nlat, nlon), data)
                .map_err(|e| SimError::Encode(e.to_string()))?;
            Field::new(
                *v,
                levels,
                cube.grid.lats.clone(),
                cube.grid.lons.clone(),
                valid_time,
                array,
            )
            .map_err(|e| SimError::Encode(e.to_string()))
        })
        .collect()
}

/// What the GFS tree holds, before GRIB packing, and its probes.
pub(crate) struct GfsWritten {
    pub bytes: u64,
    pub files: usize,
    pub forecast_probes: Vec<Probe>,
    pub analysis_probes: Vec<Probe>,
}

/// Writes the GFS tree: for every Day1 lead the forecast of the init cycle and f000 of the
/// cycle at the valid time (the analysis).
pub(crate) fn write_gfs(
    dir: &Path,
    cube: &TruthCube,
    spec: &WorldSpec,
) -> Result<GfsWritten, SimError> {
    std::fs::create_dir_all(dir).map_err(|e| SimError::io(dir, e))?;
    let layout = GfsLayout::default();
    let mut written = GfsWritten {
        bytes: 0,
        files: 0,
        forecast_probes: Vec::new(),
        analysis_probes: Vec::new(),
    };
    let mut leads = spec.day1_leads.clone();
    leads.sort_unstable();
    leads.dedup();
    for lead in leads {
        let valid = spec.gfs_init + TimeDelta::hours(i64::from(lead));
        let ti = cube
            .time_index(valid)
            .ok_or_else(|| SimError::InvalidSpec(format!("lead {lead} h is beyond the world")))?;
        let forecast = skilled_forecast(cube, spec.seed, GFS_STREAM, GFS_ERROR_SCALE, ti, lead);
        let analysis = gfs_analysis(cube, spec.seed, ti);
        for (values, init, fh, probes) in [
            (&forecast, spec.gfs_init, lead, &mut written.forecast_probes),
            (&analysis, valid, 0, &mut written.analysis_probes),
        ] {
            let fields = slots_to_fields(cube, values, valid)?;
            let fields: Vec<CycleField<'_>> = fields.iter().map(CycleField::from).collect();
            let path = write_local_cycle(dir, &layout, init, fh, &fields)
                .map_err(|e| SimError::Gfs(e.reason))?;
            written.bytes += std::fs::metadata(&path)
                .map_err(|e| SimError::io(&path, e))?
                .len();
            written.files += 2;
            probes.extend(slot_probes(cube, values, valid));
        }
    }
    Ok(written)
}

/// Probes of flat slot values on the truth grid.
pub(crate) fn slot_probes(cube: &TruthCube, values: &[f32], valid: DateTime<Utc>) -> Vec<Probe> {
    let grid = &cube.grid;
    let n = grid.len();
    let mut probes = Vec::new();
    for v in Variable::ALL {
        let level = probe_level(*v);
        let slot = cube.slots.of(*v).start
            + level
                .and_then(|l| PRESSURE_LEVELS_HPA.iter().position(|x| *x == l))
                .unwrap_or(0);
        for (j, i) in probe_points(grid.lats.len(), grid.lons.len()) {
            probes.push(Probe {
                variable: *v,
                level,
                valid_time: valid,
                lat_index: j,
                lon_index: i,
                lat: grid.lats[j],
                lon: grid.lons[i],
                value: values[slot * n + j * grid.lons.len() + i],
            });
        }
    }
    probes
}
