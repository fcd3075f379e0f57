//! Miner stores in exactly the miner layout of docs/data.md §1.1, with `manifest.json` and
//! `manifest.sig`.

use crate::SimError;
use crate::json::to_python_json;
use crate::keys::MinerKey;
use crate::model::smooth_noise;
use crate::rng::{key, unit};
use crate::spec::{Behaviour, MinerGridKind, WorldSpec};
use crate::truth::{
    GFS_ERROR_SCALE, GFS_STREAM, TruthCube, is_probe_time, level_hpa, probe_level, probe_points,
    skilled_forecast,
};
use crate::world::Probe;
use crate::zarr_write::{ArrayDef, Codec, Dtype, StoreWriter, f32_bytes};
use rayon::prelude::*;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use wx_data::manifest::{SHA256, manifest_hash};
use wx_model::Variable;
use wx_model::catalogue::PRESSURE_LEVELS_HPA;

/// `manifest_schema_version` written.
pub const MANIFEST_SCHEMA_VERSION: &str = "1.0";
/// `profile_structure_version` written (what the reference miner writes).
pub const PROFILE_STRUCTURE_VERSION: &str = "3.4.0-verify_on_read_mapper";

/// What one miner's store generation produced.
pub(crate) struct MinerStoreOutput {
    pub manifest_sha256: String,
    pub files: usize,
    pub bytes: u64,
    pub probes: Vec<Probe>,
}

/// Everything a miner's forecast is made from.
pub(crate) struct ForecastInputs<'a> {
    pub spec: &'a WorldSpec,
    pub cube: &'a TruthCube,
    /// The GFS forecast at each Day1 lead as the GFS source decodes it (flat slots).
    pub gfs_day1: &'a HashMap<u32, Vec<f32>>,
}

/// Latitude rows of a miner's store.
pub(crate) fn miner_rows(spec: &WorldSpec, uid: u16, behaviour: &Behaviour, full: usize) -> usize {
    if matches!(behaviour, Behaviour::GfsClone) {
        return full;
    }
    match spec.miner_grid {
        MinerGridKind::NoSouthPole => full - 1,
        MinerGridKind::BothPoles => full,
        MinerGridKind::Alternating => {
            if uid % 2 == 1 {
                full - 1
            } else {
                full
            }
        }
    }
}

impl ForecastInputs<'_> {
    /// The forecast of a miner at time step `step` (lead 6 · (step + 1)), all slots on the
    /// truth grid.
    pub fn forecast(&self, uid: u16, behaviour: &Behaviour, step: usize) -> Vec<f32> {
        let lead = 6 * (step as u32 + 1);
        let ti = step + 1; // the cube starts at the init
        let seed = self.spec.seed;
        let mut values = match behaviour {
            Behaviour::GfsClone => match self.gfs_day1.get(&lead) {
                Some(decoded) => decoded.clone(),
                None => skilled_forecast(self.cube, seed, GFS_STREAM, GFS_ERROR_SCALE, ti, lead),
            },
            Behaviour::Climatology => self.climatology_forecast(uid, ti),
            other => {
                let scale = other.error_scale().unwrap_or(1.0);
                skilled_forecast(self.cube, seed, u64::from(uid), scale, ti, lead)
            }
        };
        if let Behaviour::NanInjection { fraction } = behaviour {
            for (k, v) in values.iter_mut().enumerate() {
                if unit(key(&[
                    seed,
                    u64::from(uid),
                    step as u64,
                    k as u64,
                    0x004e_614e,
                ])) < *fraction
                {
                    *v = f32::NAN;
                }
            }
        }
        values
    }

    /// The climatology plus a fixed small pattern of 0.1 anomaly standard deviations.
    fn climatology_forecast(&self, uid: u16, ti: usize) -> Vec<f32> {
        let cube = self.cube;
        let mut out = Vec::with_capacity(cube.slots.len() * cube.points());
        for (slot, (v, l)) in cube.slots.entries().iter().enumerate() {
            let p = level_hpa(*l);
            let offset = 0.1 * crate::model::anomaly_scale(*v, p);
            let noise = smooth_noise(
                key(&[self.spec.seed, u64::from(uid), slot as u64, 0xc11a]),
                &cube.grid,
            );
            for (c, e) in cube.climatology_slot(ti, slot).iter().zip(&noise) {
                let c = f64::from(*c);
                let value = if *v == Variable::Q {
                    c * (1.0 + offset * e)
                } else {
                    c + offset * e
                };
                out.push(value as f32);
            }
        }
        out
    }
}

/// Writes the store of one miner under `dir` and signs it.
pub(crate) fn write_miner_store(
    dir: &Path,
    inputs: &ForecastInputs<'_>,
    uid: u16,
    behaviour: &Behaviour,
    key: &MinerKey,
) -> Result<MinerStoreOutput, SimError> {
    let spec = inputs.spec;
    let cube = inputs.cube;
    let grid = &cube.grid;
    let rows = miner_rows(spec, uid, behaviour, grid.lats.len());
    let cols = grid.lons.len();
    let (nlat, nlon) = (rows as u64, cols as u64);
    let steps = u64::from(spec.steps);
    let writer = StoreWriter::create(dir)?;
    let coord = |name: &str, n: u64, dtype| {
        ArrayDef::new(name, &[name], &[n], &[n], dtype, Codec::BloscLz4)
    };
    let first = spec.gfs_init + chrono::TimeDelta::hours(6);
    writer.coordinate_f64(
        &coord("time", steps, Dtype::F8)
            .attr("calendar", json!("standard"))
            .attr(
                "units",
                json!(format!("hours since {}", first.format("%Y-%m-%dT%H:%M:%S"))),
            ),
        &(0..steps).map(|k| 6.0 * k as f64).collect::<Vec<_>>(),
    )?;
    writer.coordinate_i32(
        &coord("plev", 13, Dtype::I4),
        &PRESSURE_LEVELS_HPA
            .iter()
            .map(|l| i32::from(*l))
            .collect::<Vec<_>>(),
    )?;
    writer.coordinate_f32(
        &coord("lat", nlat, Dtype::F4),
        &grid.lats[..rows]
            .iter()
            .map(|v| *v as f32)
            .collect::<Vec<_>>(),
    )?;
    writer.coordinate_f32(
        &coord("lon", nlon, Dtype::F4),
        &grid.lons.iter().map(|v| *v as f32).collect::<Vec<_>>(),
    )?;
    let missing: &[Variable] = match behaviour {
        Behaviour::MissingVariables { variables } => variables,
        _ => &[],
    };
    let mut arrays = Vec::new();
    for v in Variable::ALL.iter().filter(|v| !missing.contains(v)) {
        let def = if v.is_surface() {
            ArrayDef::new(
                v.as_str(),
                &["time", "lat", "lon"],
                &[steps, nlat, nlon],
                &[1, nlat, nlon],
                Dtype::F4,
                Codec::BloscZstd { clevel: 3 },
            )
        } else {
            ArrayDef::new(
                v.as_str(),
                &["time", "plev", "lat", "lon"],
                &[steps, 13, nlat, nlon],
                &[1, 13, nlat, nlon],
                Dtype::F4,
                Codec::BloscZstd { clevel: 3 },
            )
        }
        .attr("coordinates", json!("time"));
        writer.add_array(&def)?;
        arrays.push((*v, def));
    }
    let n = grid.len();
    let probes: Vec<Vec<Probe>> = (0..spec.steps as usize)
        .into_par_iter()
        .map(|step| -> Result<Vec<Probe>, SimError> {
            let values = inputs.forecast(uid, behaviour, step);
            let mut probes = Vec::new();
            let valid = cube.times[step + 1];
            for (v, def) in &arrays {
                let slots = cube.slots.of(*v);
                let mut chunk = Vec::with_capacity(slots.len() * rows * cols);
                for slot in slots.clone() {
                    chunk.extend_from_slice(&values[slot * n..slot * n + rows * cols]);
                }
                let index: Vec<u64> = if v.is_surface() {
                    vec![step as u64, 0, 0]
                } else {
                    vec![step as u64, 0, 0, 0]
                };
                writer.write_chunk(def, &index, &f32_bytes(&chunk))?;
                if is_probe_time(step, spec.steps as usize) {
                    let level = probe_level(*v);
                    let k = level
                        .and_then(|l| PRESSURE_LEVELS_HPA.iter().position(|x| *x == l))
                        .unwrap_or(0);
                    for (j, i) in probe_points(rows, cols) {
                        probes.push(Probe {
                            variable: *v,
                            level,
                            valid_time: valid,
                            lat_index: j,
                            lon_index: i,
                            lat: grid.lats[j],
                            lon: grid.lons[i],
                            value: chunk[k * rows * cols + j * cols + i],
                        });
                    }
                }
            }
            Ok(probes)
        })
        .collect::<Result<_, _>>()?;
    let files = writer.finish()?;
    let manifest = manifest_json(&files.hashes, key.ss58());
    let manifest_path = dir.join("manifest.json");
    std::fs::write(&manifest_path, manifest.as_bytes())
        .map_err(|e| SimError::io(&manifest_path, e))?;
    let sig_path = dir.join("manifest.sig");
    std::fs::write(&sig_path, key.sign(manifest.as_bytes()))
        .map_err(|e| SimError::io(&sig_path, e))?;
    Ok(MinerStoreOutput {
        manifest_sha256: manifest_hash(manifest.as_bytes()),
        files: files.hashes.len() + 2,
        bytes: files.bytes + manifest.len() as u64 + 64,
        probes: probes.into_iter().flatten().collect(),
    })
}

/// `manifest.json` as the reference miner writes it: `json.dumps(sort_keys=True, indent=4)` of
/// `{manifest_schema_version, profile_structure_version, chunk_hash_algorithm,
/// signer_hotkey_ss58, files}`.
pub(crate) fn manifest_json(
    files: &std::collections::BTreeMap<String, String>,
    signer: &str,
) -> String {
    to_python_json(&json!({
        "chunk_hash_algorithm": SHA256,
        "files": files,
        "manifest_schema_version": MANIFEST_SCHEMA_VERSION,
        "profile_structure_version": PROFILE_STRUCTURE_VERSION,
        "signer_hotkey_ss58": signer,
    }))
}
