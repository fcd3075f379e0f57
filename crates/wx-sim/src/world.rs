//! [`World::generate`]: writes every product of a [`WorldSpec`] under a directory.

use crate::SimError;
use crate::keys::{MinerKey, miner_token};
use crate::miners::{ForecastInputs, miner_rows, write_miner_store};
use crate::model::{Grid, TruthModel};
use crate::spec::{Behaviour, WorldSpec};
use crate::truth::{TruthCube, write_climatology, write_era5, write_gfs};
use chrono::{DateTime, TimeDelta, Utc};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use wx_data::gfs::{GfsSource, LocalGfsSource};
use wx_grib::GfsLayout;
use wx_model::{Level, VarLevel, Variable};

/// One value written to a store, at indices into its axes as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// The variable.
    pub variable: Variable,
    /// The level (hPa) of a multi-level variable.
    pub level: Option<Level>,
    /// The valid time (for the climatology: a valid time whose day of year and hour select
    /// the value).
    pub valid_time: DateTime<Utc>,
    /// Index on the stored latitude axis.
    pub lat_index: usize,
    /// Index on the stored longitude axis.
    pub lon_index: usize,
    /// That latitude.
    pub lat: f64,
    /// That longitude.
    pub lon: f64,
    /// The exact value handed to the writer (for GFS: before GRIB packing).
    pub value: f32,
}

impl Probe {
    /// The selection a reader needs for this probe.
    pub fn selection(&self) -> VarLevel {
        match self.level {
            Some(l) => VarLevel::at(self.variable, l),
            None => VarLevel::all(self.variable),
        }
    }
}

/// Probes of the reference products.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorldProbes {
    /// ERA5 store (latitude 90 → −90).
    pub era5: Vec<Probe>,
    /// Climatology store (indices on its ascending latitude axis).
    pub climatology: Vec<Probe>,
    /// GFS forecasts at the Day1 leads (valid time = init + lead), values before packing.
    pub gfs_forecast: Vec<Probe>,
    /// GFS analyses at the Day1 valid times, values before packing.
    pub gfs_analysis: Vec<Probe>,
}

/// A simulated miner of a generated world.
#[derive(Clone, Serialize, Deserialize)]
pub struct SimMiner {
    /// Uid.
    pub uid: u16,
    /// SS58 hotkey (generic prefix 42) of the key that signed the manifest.
    pub hotkey: String,
    /// The bearer token its server requires (a secret: not in `Debug`).
    #[serde(skip_serializing, default)]
    pub token: String,
    /// What it does.
    pub behaviour: Behaviour,
    /// Directory name of its store under the world's `miners/` (also the URL path).
    pub store_name: String,
    /// Its store on disk (`None` for an offline miner).
    pub store_dir: Option<PathBuf>,
    /// sha256 of its `manifest.json` (what the miner would claim), if it has a store.
    pub manifest_sha256: Option<String>,
    /// Latitude rows of its store.
    pub lat_rows: usize,
    /// Files in the store (manifest and signature included).
    pub files: usize,
    /// Bytes in the store.
    pub bytes: u64,
    /// Values written to the store (first, middle, last step; every variable, one level).
    #[serde(skip)]
    pub probes: Vec<Probe>,
}

impl std::fmt::Debug for SimMiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimMiner")
            .field("uid", &self.uid)
            .field("hotkey", &self.hotkey)
            .field("token", &"[redacted]")
            .field("behaviour", &self.behaviour)
            .field("store_name", &self.store_name)
            .field("manifest_sha256", &self.manifest_sha256)
            .finish_non_exhaustive()
    }
}

/// Where a world's products are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorldPaths {
    /// The world's directory.
    pub root: PathBuf,
    /// ERA5 Zarr store (ARCO layout) — open with `Era5Reader`.
    pub era5: PathBuf,
    /// Climatology Zarr store (WeatherBench2 layout) — open with `ClimatologyReader`.
    pub climatology: PathBuf,
    /// GFS tree — open with `LocalGfsSource::new(dir, GfsLayout::default())`.
    pub gfs: PathBuf,
    /// Parent of the miner stores (`miners/<store_name>`).
    pub miners: PathBuf,
}

impl WorldPaths {
    /// Where the ERA5 chunks not published yet wait ([`crate::spec::Era5Publication::Progressive`]),
    /// with the store's relative paths.
    pub fn era5_unpublished(&self) -> PathBuf {
        self.root.join("era5-unpublished")
    }
}

/// Time taken by one generation phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseTiming {
    /// Phase name.
    pub phase: String,
    /// Seconds.
    pub seconds: f64,
}

/// What was generated, how big and how fast.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorldSummary {
    /// Truth grid rows × columns.
    pub truth_grid: [usize; 2],
    /// Valid times in the ERA5 store.
    pub era5_times: usize,
    /// Days of year with values in the climatology store.
    pub climatology_days: Vec<u32>,
    /// Bytes of the ERA5 store.
    pub era5_bytes: u64,
    /// Bytes of the climatology store.
    pub climatology_bytes: u64,
    /// Bytes of the GFS tree (GRIB2 files, without the `.idx`).
    pub gfs_bytes: u64,
    /// Bytes of all miner stores.
    pub miner_bytes: u64,
    /// Files in all miner stores.
    pub miner_files: usize,
    /// Miners with a store.
    pub miner_stores: usize,
    /// Wall time of each phase.
    pub phases: Vec<PhaseTiming>,
    /// Total wall time, seconds.
    pub seconds: f64,
}

impl WorldSummary {
    /// Total bytes written.
    pub fn total_bytes(&self) -> u64 {
        self.era5_bytes + self.climatology_bytes + self.gfs_bytes + self.miner_bytes
    }
}

/// A generated world: its spec, where everything is, the miners and a summary.
#[derive(Debug, Clone)]
pub struct World {
    /// The spec it was generated from.
    pub spec: WorldSpec,
    /// Where the products are.
    pub paths: WorldPaths,
    /// The miners, in spec order.
    pub miners: Vec<SimMiner>,
    /// Values written to the reference products.
    pub probes: WorldProbes,
    /// Sizes and timings.
    pub summary: WorldSummary,
    model: Arc<TruthModel>,
}

/// The persisted description `world.json` (no tokens, no probes).
#[derive(Serialize)]
struct WorldFile<'a> {
    spec: &'a WorldSpec,
    paths: &'a WorldPaths,
    miners: &'a [SimMiner],
    summary: &'a WorldSummary,
}

/// `world.json` as read back by [`World::load`].
#[derive(Deserialize)]
struct LoadedWorldFile {
    spec: WorldSpec,
    paths: WorldPaths,
    miners: Vec<SimMiner>,
    summary: WorldSummary,
}

fn timed<T>(phases: &mut Vec<PhaseTiming>, phase: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let seconds = start.elapsed().as_secs_f64();
    tracing::info!(phase, seconds, "wx-sim generation phase done");
    phases.push(PhaseTiming {
        phase: phase.to_owned(),
        seconds,
    });
    out
}

/// State carried from the truth phase to the miner phase.
struct Stage {
    spec: WorldSpec,
    paths: WorldPaths,
    model: Arc<TruthModel>,
    cube: TruthCube,
    probes: WorldProbes,
    summary: WorldSummary,
}

impl World {
    /// Generates the world of `spec` under `dir` (created if needed; must not already contain
    /// anything) and returns it. CPU-heavy parts run on Tokio's blocking pool with rayon, so
    /// call it from a Tokio runtime; the GFS forecast is read back through
    /// [`LocalGfsSource`] so that the clone serves exactly what the validator decodes.
    pub async fn generate(spec: WorldSpec, dir: impl AsRef<Path>) -> Result<World, SimError> {
        spec.validate()?;
        let root = dir.as_ref().to_owned();
        if root.exists() {
            let mut entries = std::fs::read_dir(&root).map_err(|e| SimError::io(&root, e))?;
            if entries.next().is_some() {
                return Err(SimError::InvalidSpec(format!(
                    "{} is not empty; generate a world into a new directory",
                    root.display()
                )));
            }
        }
        std::fs::create_dir_all(&root).map_err(|e| SimError::io(&root, e))?;
        let paths = WorldPaths {
            era5: root.join("era5"),
            climatology: root.join("climatology"),
            gfs: root.join("gfs"),
            miners: root.join("miners"),
            root,
        };
        let start = Instant::now();
        let stage = tokio::task::spawn_blocking(move || truth_stage(spec, paths))
            .await
            .map_err(|e| SimError::Task(e.to_string()))??;

        // the GFS forecast at the Day1 leads, as the validator's GFS source decodes it
        let read_start = Instant::now();
        let source = LocalGfsSource::new(&stage.paths.gfs, GfsLayout::default())
            .map_err(|e| SimError::Gfs(e.to_string()))?;
        let all: Vec<VarLevel> = Variable::ALL.iter().map(|v| VarLevel::all(*v)).collect();
        let mut gfs_day1 = HashMap::new();
        for lead in &stage.spec.day1_leads {
            let fields = source
                .forecast(stage.spec.gfs_init, *lead, &all)
                .await
                .map_err(|e| SimError::Gfs(e.to_string()))?;
            let mut values = Vec::with_capacity(stage.cube.slots.len() * stage.cube.points());
            for field in &fields {
                if field.lats != stage.cube.grid.lats || field.lons != stage.cube.grid.lons {
                    return Err(SimError::Gfs(format!(
                        "GFS {} read back on another grid",
                        field.variable
                    )));
                }
                values.extend(field.data.iter().copied());
            }
            gfs_day1.insert(*lead, values);
        }
        let read_seconds = read_start.elapsed().as_secs_f64();

        let world = tokio::task::spawn_blocking(move || {
            let mut stage = stage;
            stage.summary.phases.push(PhaseTiming {
                phase: "gfs_readback".to_owned(),
                seconds: read_seconds,
            });
            miner_stage(stage, gfs_day1, start)
        })
        .await
        .map_err(|e| SimError::Task(e.to_string()))??;
        let file = WorldFile {
            spec: &world.spec,
            paths: &world.paths,
            miners: &world.miners,
            summary: &world.summary,
        };
        let json =
            serde_json::to_string_pretty(&file).map_err(|e| SimError::Encode(e.to_string()))?;
        let path = world.paths.root.join("world.json");
        std::fs::write(&path, json).map_err(|e| SimError::io(&path, e))?;
        tracing::info!(
            seconds = world.summary.seconds,
            bytes = world.summary.total_bytes(),
            miners = world.miners.len(),
            "wx-sim world generated"
        );
        Ok(world)
    }

    /// Reloads a world that [`World::generate`] wrote under `dir` (it writes `world.json`
    /// last, so its presence means the generation finished). Tokens are derived again from
    /// the seed; probes are not stored, so they are empty. `dir` must be where the world was
    /// generated (the stored paths are used as they are). A progressively published ERA5
    /// store is reloaded as far as it was published.
    pub fn load(dir: impl AsRef<Path>) -> Result<World, SimError> {
        let path = dir.as_ref().join("world.json");
        let text = std::fs::read_to_string(&path).map_err(|e| SimError::io(&path, e))?;
        let file: LoadedWorldFile = serde_json::from_str(&text).map_err(|e| {
            SimError::InvalidSpec(format!(
                "{} is not a world description ({e}); generate the world into a new directory",
                path.display()
            ))
        })?;
        file.spec.validate()?;
        let mut miners = file.miners;
        for miner in &mut miners {
            miner.token = miner_token(file.spec.seed, miner.uid);
        }
        Ok(World {
            model: Arc::new(TruthModel::new(file.spec.seed)),
            spec: file.spec,
            paths: file.paths,
            miners,
            probes: WorldProbes::default(),
            summary: file.summary,
        })
    }

    /// [`World::load`] when `dir` holds a generated world of exactly `spec`, else
    /// [`World::generate`] (an error when `dir` holds anything else, e.g. another world).
    pub async fn load_or_generate(
        spec: WorldSpec,
        dir: impl AsRef<Path>,
    ) -> Result<World, SimError> {
        let dir = dir.as_ref();
        if dir.join("world.json").is_file() {
            let world = World::load(dir)?;
            if world.spec != spec {
                return Err(SimError::InvalidSpec(format!(
                    "{} holds another world (seed {}, {} miners, {}°); use another directory or \
                     the same options",
                    dir.display(),
                    world.spec.seed,
                    world.spec.miners.len(),
                    world.spec.resolution_deg
                )));
            }
            return Ok(world);
        }
        World::generate(spec, dir).await
    }

    /// The publisher of a world generated with [`crate::spec::Era5Publication::Progressive`]
    /// ERA5 (an error for a world published all at once).
    pub fn era5_publisher(&self) -> Result<crate::Era5Publisher, SimError> {
        crate::Era5Publisher::open(self)
    }

    /// The weather model (truth and climatology at any point).
    pub fn model(&self) -> &TruthModel {
        &self.model
    }

    /// The truth grid (both poles, latitude descending).
    pub fn truth_grid(&self) -> Grid {
        Grid::global(self.spec.resolution_deg)
    }

    /// The miner with `uid`.
    pub fn miner(&self, uid: u16) -> Option<&SimMiner> {
        self.miners.iter().find(|m| m.uid == uid)
    }

    /// The miners whose behaviour has this [`Behaviour::name`].
    pub fn miners_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a SimMiner> + 'a {
        self.miners
            .iter()
            .filter(move |m| m.behaviour.name() == name)
    }

    /// init + `lead_hours`.
    pub fn valid_time(&self, lead_hours: u32) -> DateTime<Utc> {
        self.spec.gfs_init + TimeDelta::hours(i64::from(lead_hours))
    }
}

fn truth_stage(spec: WorldSpec, paths: WorldPaths) -> Result<Stage, SimError> {
    let mut phases = Vec::new();
    let model = Arc::new(TruthModel::new(spec.seed));
    let cube = timed(&mut phases, "truth", || TruthCube::compute(&model, &spec));
    let (era5, era5_probes) = timed(&mut phases, "era5", || {
        write_era5(
            &paths.era5,
            &model,
            &cube,
            spec.era5_levels,
            spec.era5_publication,
        )
    })?;
    if let crate::spec::Era5Publication::Progressive {
        published_through, ..
    } = spec.era5_publication
    {
        crate::publication::withhold(&paths, spec.gfs_init, published_through)?;
    }
    let (clim, clim_probes, days) = timed(&mut phases, "climatology", || {
        write_climatology(&paths.climatology, &model, &cube)
    })?;
    let gfs = timed(&mut phases, "gfs", || write_gfs(&paths.gfs, &cube, &spec))?;
    let summary = WorldSummary {
        truth_grid: [cube.grid.lats.len(), cube.grid.lons.len()],
        era5_times: cube.times.len(),
        climatology_days: days,
        era5_bytes: era5.bytes,
        climatology_bytes: clim.bytes,
        gfs_bytes: gfs.bytes,
        miner_bytes: 0,
        miner_files: 0,
        miner_stores: 0,
        phases,
        seconds: 0.0,
    };
    Ok(Stage {
        probes: WorldProbes {
            era5: era5_probes,
            climatology: clim_probes,
            gfs_forecast: gfs.forecast_probes,
            gfs_analysis: gfs.analysis_probes,
        },
        spec,
        paths,
        model,
        cube,
        summary,
    })
}

fn miner_stage(
    stage: Stage,
    gfs_day1: HashMap<u32, Vec<f32>>,
    start: Instant,
) -> Result<World, SimError> {
    let Stage {
        spec,
        paths,
        model,
        cube,
        probes,
        mut summary,
    } = stage;
    std::fs::create_dir_all(&paths.miners).map_err(|e| SimError::io(&paths.miners, e))?;
    let inputs = ForecastInputs {
        spec: &spec,
        cube: &cube,
        gfs_day1: &gfs_day1,
    };
    let miners = timed(&mut summary.phases, "miners", || {
        spec.miners
            .par_iter()
            .map(|m| -> Result<SimMiner, SimError> {
                let key = MinerKey::derive(spec.seed, m.uid);
                let store_name = format!("miner-{:03}", m.uid);
                let rows = miner_rows(&spec, m.uid, &m.behaviour, cube.grid.lats.len());
                let mut miner = SimMiner {
                    uid: m.uid,
                    hotkey: key.ss58().to_owned(),
                    token: miner_token(spec.seed, m.uid),
                    behaviour: m.behaviour.clone(),
                    store_dir: None,
                    manifest_sha256: None,
                    lat_rows: rows,
                    files: 0,
                    bytes: 0,
                    probes: Vec::new(),
                    store_name,
                };
                if m.behaviour.has_store() {
                    let dir = paths.miners.join(&miner.store_name);
                    let out = write_miner_store(&dir, &inputs, m.uid, &m.behaviour, &key)?;
                    miner.store_dir = Some(dir);
                    miner.manifest_sha256 = Some(out.manifest_sha256);
                    miner.files = out.files;
                    miner.bytes = out.bytes;
                    miner.probes = out.probes;
                }
                Ok(miner)
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    summary.miner_bytes = miners.iter().map(|m| m.bytes).sum();
    summary.miner_files = miners.iter().map(|m| m.files).sum();
    summary.miner_stores = miners.iter().filter(|m| m.store_dir.is_some()).count();
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(World {
        spec,
        paths,
        miners,
        probes,
        summary,
        model,
    })
}
