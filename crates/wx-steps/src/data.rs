//! Where steps get their data: GFS, ERA5 and climatology through the disk and memory caches,
//! and miner stores through the guarded transport with manifest verification.
//!
//! Every error is turned into a [`DataError`] that knows its [`ErrorKind`], who is to blame
//! (the miner or our infrastructure) and whether the data is merely not published yet.

use crate::config::{DataConfig, TrustedLimits};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use wx_data::Field;
use wx_data::cache::{CacheError, CacheKey, DiskCache, DiskCacheOptions, FieldMemoryCache};
use wx_data::gfs::{
    GfsLimits, GfsSource, LocalGfsSource, NOAA_GFS_BUCKET, NOAA_GFS_REGION, S3GfsConfig,
    S3GfsSource,
};
use wx_data::manifest::{
    FrozenManifest, ManifestClaim, SignaturePolicy, manifest_hash, verify_manifest,
};
use wx_data::sources::{
    ClimatologyReader, Era5Extent, Era5Flavour, Era5Reader, MinerForecastReader, Publication,
};
use wx_data::transport::{
    BearerToken, CloudConfig, HttpStoreConfig, StoreHandle, TransportError, connect_miner_store,
    open_source,
};
use wx_data::verified::VerifiedStore;
use wx_grib::GfsLayout;
use wx_model::{Blame, ErrorKind, VarLevel, Variable};
use wx_zarr::{DynStorage, FormatHint, ReadOptions, ZarrError};

/// A data access that failed, classified for the retry policy and the step log.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct DataError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// Miner or infrastructure.
    pub blame: Blame,
    /// Sanitized message naming the store and key.
    pub message: String,
    /// The data is not published yet (waiting is the right reaction, not a retry).
    pub not_ready: bool,
}

impl DataError {
    /// A classified error; the message is sanitized.
    pub fn new(kind: ErrorKind, blame: Blame, message: impl AsRef<str>) -> Self {
        DataError {
            kind,
            blame,
            message: wx_model::sanitize_message(message.as_ref(), &[]),
            not_ready: false,
        }
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Network
                | ErrorKind::Timeout
                | ErrorKind::Unauthorized
                | ErrorKind::SourceUnavailable
                | ErrorKind::Cache
                | ErrorKind::Database
                | ErrorKind::Internal
                | ErrorKind::LeaseLost
        )
    }

    fn miner(kind: ErrorKind, e: impl std::fmt::Display) -> Self {
        DataError::new(kind, Blame::Miner, e.to_string())
    }

    fn infra(kind: ErrorKind, e: impl std::fmt::Display) -> Self {
        DataError::new(kind, Blame::Infrastructure, e.to_string())
    }
}

impl From<CacheError> for DataError {
    fn from(e: CacheError) -> Self {
        DataError::infra(e.kind(), e)
    }
}

/// Truth-source reads that say "the requested time is not in the store" are not failures yet.
fn truth_error(e: ZarrError) -> DataError {
    let missing_time = matches!(e, ZarrError::MissingTime { .. });
    let mut d = DataError::infra(
        if missing_time {
            ErrorKind::SourceUnavailable
        } else {
            e.kind()
        },
        &e,
    );
    d.not_ready = missing_time;
    d
}

/// An ERA5 read: besides a time off the axis, an absent chunk means "not published yet" (the
/// publication check said otherwise a moment ago: the store is being updated).
fn era5_read_error(e: ZarrError) -> DataError {
    let absent_chunk = matches!(&e, ZarrError::MissingKey { key, .. } if !wx_data::transport::is_metadata_key(key));
    let mut d = truth_error(e);
    if absent_chunk {
        d.kind = ErrorKind::SourceUnavailable;
        d.not_ready = true;
    }
    d
}

/// Reads the published extent of the configured ERA5 store directly (no cache, nothing
/// written): for operator commands such as `status`.
pub async fn read_era5_extent(config: &DataConfig) -> Result<Era5Extent, DataError> {
    let store: TrustedStore<Era5Reader> =
        TrustedStore::new(config.era5.clone(), &config.era5_access, config.era5_limits);
    let handle: StoreHandle =
        open_source(&store.location, &store.cloud, &HttpStoreConfig::default())
            .map_err(|e| DataError::infra(e.kind(), e))?;
    let reader = Era5Reader::open(handle.zarr_storage(), store.limits.read_options("era5"))
        .await
        .map_err(truth_error)?;
    let flavour = if config.era5_final_only {
        Era5Flavour::FinalOnly
    } else {
        Era5Flavour::Preliminary
    };
    reader.extent(flavour).await.map_err(truth_error)
}

/// Hours `published_until` is behind `expected_until` (negative: ahead).
pub fn era5_lag_hours(published_until: DateTime<Utc>, expected_until: DateTime<Utc>) -> f64 {
    (expected_until - published_until).num_seconds() as f64 / 3600.0
}

/// A lazily opened truth store, re-opened when a requested time is not on its axis (a store
/// whose time axis grows as ERA5 is published).
struct TrustedStore<R> {
    location: String,
    cloud: CloudConfig,
    limits: TrustedLimits,
    reader: Mutex<Option<(Arc<R>, Instant)>>,
}

impl<R> TrustedStore<R> {
    fn new(
        location: String,
        access: &wx_data::transport::SourceAccess,
        limits: TrustedLimits,
    ) -> Self {
        TrustedStore {
            location,
            cloud: CloudConfig {
                access: access.clone(),
                ..CloudConfig::default()
            },
            limits,
            reader: Mutex::new(None),
        }
    }
}

/// What the ERA5 store said about some valid times at one check.
#[derive(Debug, Clone, PartialEq)]
pub struct Era5Check {
    /// The published extent, read afresh.
    pub extent: Era5Extent,
    /// Each asked valid time and whether it is published.
    pub times: Vec<(DateTime<Utc>, Publication)>,
}

/// The valid times found published (they stay published: the store only grows) and the last
/// extent read with its time.
#[derive(Default)]
struct Era5Seen {
    published: HashSet<DateTime<Utc>>,
    /// Pending answers of the extent in use (dropped with it), so that many miners' checks
    /// within the reuse window cost one look at the chunks.
    pending: std::collections::HashMap<DateTime<Utc>, Publication>,
    extent: Option<(Era5Extent, Instant)>,
}

/// The data access of a validator process, shared by all the steps it runs.
pub struct DataHub {
    config: DataConfig,
    gfs: Arc<dyn GfsSource>,
    era5: TrustedStore<Era5Reader>,
    era5_seen: Mutex<Era5Seen>,
    climatology: TrustedStore<ClimatologyReader>,
    disk: DiskCache,
    memory: FieldMemoryCache,
    miner_http: HttpStoreConfig,
    reopen_after: Duration,
    extent_ttl: Duration,
}

impl std::fmt::Debug for DataHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataHub")
            .field("gfs", &self.gfs.source_id())
            .field("era5", &self.era5.location)
            .finish()
    }
}

impl DataHub {
    /// Opens the sources named in the configuration (nothing is fetched yet).
    pub fn new(
        config: &DataConfig,
        cache_dir: &Path,
        test_mode: bool,
    ) -> Result<DataHub, DataError> {
        let limits = GfsLimits {
            max_message_bytes: config.gfs_max_message_mib.saturating_mul(1 << 20),
        };
        let gfs: Arc<dyn GfsSource> = if let Some(rest) = config.gfs.strip_prefix("s3://") {
            Arc::new(
                S3GfsSource::new(gfs_s3_config(rest, config, limits))
                    .map_err(|e| DataError::infra(e.kind(), e))?,
            )
        } else {
            let dir = config.gfs.strip_prefix("file://").unwrap_or(&config.gfs);
            Arc::new(
                LocalGfsSource::new(dir, GfsLayout::default())
                    .map_err(|e| DataError::infra(e.kind(), e))?,
            )
        };
        DataHub::with_gfs(config, cache_dir, test_mode, gfs)
    }

    /// Like [`DataHub::new`] with a given GFS source (e.g. an in-memory one for the demo).
    pub fn with_gfs(
        config: &DataConfig,
        cache_dir: &Path,
        test_mode: bool,
        gfs: Arc<dyn GfsSource>,
    ) -> Result<DataHub, DataError> {
        let disk = DiskCache::new(cache_dir, DiskCacheOptions::default())?;
        let mut miner_http = HttpStoreConfig::default();
        if config.allow_loopback_miners {
            miner_http.address_policy = miner_http.address_policy.allow_loopback();
        }
        miner_http.allow_plain_http = config.allow_plain_http_miners;
        miner_http.accept_invalid_certs = config.accept_invalid_certs;
        miner_http.min_throughput = config.miner_throughput.rule();
        if test_mode {
            // fail fast on loopback miners that do not answer
            miner_http.connect_timeout = Duration::from_secs(2);
            miner_http.read_timeout = Duration::from_secs(5);
            miner_http.request_timeout = Duration::from_secs(30);
            miner_http.fetch_deadline = Duration::from_secs(30);
            miner_http.initial_backoff = Duration::from_millis(50);
        }
        Ok(DataHub {
            config: config.clone(),
            gfs,
            era5: TrustedStore::new(config.era5.clone(), &config.era5_access, config.era5_limits),
            era5_seen: Mutex::new(Era5Seen::default()),
            climatology: TrustedStore::new(
                config.climatology.clone(),
                &config.climatology_access,
                config.climatology_limits,
            ),
            disk,
            memory: FieldMemoryCache::new(config.memory_cache_mib.saturating_mul(1 << 20)),
            miner_http,
            reopen_after: if test_mode {
                Duration::ZERO
            } else {
                Duration::from_secs(300)
            },
            extent_ttl: if test_mode {
                Duration::ZERO
            } else {
                Duration::from_secs(60)
            },
        })
    }

    /// The disk cache (for retention and clean-up).
    pub fn disk(&self) -> &DiskCache {
        &self.disk
    }

    /// When the GFS analysis valid at `valid_time` is expected to be published.
    pub fn gfs_analysis_ready_at(&self, valid_time: DateTime<Utc>) -> DateTime<Utc> {
        valid_time + chrono::Duration::hours(i64::from(self.config.gfs_publication_delay_hours))
    }

    fn open_storage<R>(&self, store: &TrustedStore<R>) -> Result<DynStorage, DataError> {
        let handle: StoreHandle =
            open_source(&store.location, &store.cloud, &HttpStoreConfig::default())
                .map_err(|e| DataError::infra(e.kind(), e))?;
        Ok(handle.zarr_storage())
    }

    /// Which ERA5 counts as published (`era5_final_only`).
    pub fn era5_flavour(&self) -> Era5Flavour {
        if self.config.era5_final_only {
            Era5Flavour::FinalOnly
        } else {
            Era5Flavour::Preliminary
        }
    }

    /// The cache source id of ERA5 (final ERA5 may revise ERA5T: they are cached apart).
    fn era5_source_id(&self) -> &'static str {
        match self.era5_flavour() {
            Era5Flavour::Preliminary => "era5",
            Era5Flavour::FinalOnly => "era5-final",
        }
    }

    async fn era5_reader(&self, valid_time: DateTime<Utc>) -> Result<Arc<Era5Reader>, DataError> {
        let mut slot = self.era5.reader.lock().await;
        if let Some((reader, opened)) = slot.as_ref()
            && (reader.has_time(valid_time) || opened.elapsed() < self.reopen_after)
        {
            return Ok(reader.clone());
        }
        let storage = self.open_storage(&self.era5)?;
        let reader = Arc::new(
            Era5Reader::open(storage, self.era5.limits.read_options("era5"))
                .await
                .map_err(truth_error)?,
        );
        *slot = Some((reader.clone(), Instant::now()));
        Ok(reader)
    }

    /// The opened ERA5 reader, or a newly opened one (the extent does not need the axis).
    async fn era5_reader_any(&self) -> Result<Arc<Era5Reader>, DataError> {
        if let Some((reader, _)) = self.era5.reader.lock().await.as_ref() {
            return Ok(reader.clone());
        }
        self.era5_reader(DateTime::<Utc>::MIN_UTC).await
    }

    async fn climatology_reader(&self) -> Result<Arc<ClimatologyReader>, DataError> {
        let mut slot = self.climatology.reader.lock().await;
        if let Some((reader, _)) = slot.as_ref() {
            return Ok(reader.clone());
        }
        let storage = self.open_storage(&self.climatology)?;
        let reader = Arc::new(
            ClimatologyReader::open(storage, self.climatology.limits.read_options("climatology"))
                .await
                .map_err(truth_error)?,
        );
        *slot = Some((reader.clone(), Instant::now()));
        Ok(reader)
    }

    async fn cached<F, Fut>(&self, key: CacheKey, load: F) -> Result<Arc<Field>, DataError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Field, DataError>>,
    {
        self.memory
            .get_or_load(key.clone(), || async {
                self.disk.get_or_fill(&key, load).await
            })
            .await
    }

    fn key(source: &str, v: VarLevel, valid_time: DateTime<Utc>) -> Result<CacheKey, DataError> {
        Ok(CacheKey::new(source, v.variable, v.levels(), valid_time)?)
    }

    /// The ERA5 store's published extent, read afresh (for `status`).
    pub async fn era5_extent(&self) -> Result<Era5Extent, DataError> {
        let reader = self.era5_reader_any().await?;
        let extent = reader
            .extent(self.era5_flavour())
            .await
            .map_err(truth_error)?;
        self.era5_seen.lock().await.extent = Some((extent, Instant::now()));
        Ok(extent)
    }

    /// Whether the truth of `variables` at each of `valid_times` is published (data.md §3):
    /// within the extent of the store's root attributes, read again at every check, and every
    /// chunk present. Outside test mode the extent and the pending answers are reused for a
    /// minute, so that many miners' checks cost one look; a valid time once found published
    /// is not checked again.
    pub async fn era5_publication(
        &self,
        valid_times: &[DateTime<Utc>],
        variables: &[Variable],
    ) -> Result<Era5Check, DataError> {
        let flavour = self.era5_flavour();
        let mut seen = self.era5_seen.lock().await;
        let fresh = seen
            .extent
            .as_ref()
            .filter(|(_, at)| at.elapsed() < self.extent_ttl && !self.extent_ttl.is_zero())
            .map(|(e, _)| *e);
        let extent = match fresh {
            Some(e) => e,
            None => {
                let reader = self.era5_reader_any().await?;
                let e = reader.extent(flavour).await.map_err(truth_error)?;
                seen.extent = Some((e, Instant::now()));
                seen.pending.clear();
                e
            }
        };
        let mut times = Vec::with_capacity(valid_times.len());
        for t in valid_times {
            if seen.published.contains(t) {
                times.push((*t, Publication::Published));
                continue;
            }
            if let Some(answer) = seen.pending.get(t) {
                times.push((*t, answer.clone()));
                continue;
            }
            let reader = self.era5_reader(*t).await?;
            let answer = reader
                .publication_within(&extent, *t, variables)
                .await
                .map_err(truth_error)?;
            if answer == Publication::Published {
                seen.published.insert(*t);
            } else if !self.extent_ttl.is_zero() {
                seen.pending.insert(*t, answer.clone());
            }
            times.push((*t, answer));
        }
        Ok(Era5Check { extent, times })
    }

    /// ERA5 truth at `valid_time` (only the selected levels are kept, in the caches too).
    pub async fn era5(
        &self,
        v: VarLevel,
        valid_time: DateTime<Utc>,
    ) -> Result<Arc<Field>, DataError> {
        let key = DataHub::key(self.era5_source_id(), v, valid_time)?;
        self.cached(key, || async {
            let reader = self.era5_reader(valid_time).await?;
            canonical(reader.read(v, valid_time).await.map_err(era5_read_error)?).await
        })
        .await
    }

    /// Bytes of decoded fields held by the in-memory cache.
    pub fn memory_cache_bytes(&self) -> usize {
        self.memory.bytes()
    }

    /// The climatology selected for `valid_time` (nearest day of year, hour floored).
    pub async fn climatology(
        &self,
        v: VarLevel,
        valid_time: DateTime<Utc>,
    ) -> Result<Arc<Field>, DataError> {
        let key = DataHub::key("climatology", v, valid_time)?;
        self.cached(key, || async {
            let reader = self.climatology_reader().await?;
            canonical(reader.read(v, valid_time).await.map_err(truth_error)?).await
        })
        .await
    }

    /// The GFS analysis valid at `valid_time`.
    pub async fn gfs_analysis(
        &self,
        v: VarLevel,
        valid_time: DateTime<Utc>,
    ) -> Result<Arc<Field>, DataError> {
        let source = format!("gfs-analysis/{}", self.gfs.source_id());
        let key = DataHub::key(&source, v, valid_time)?;
        self.cached(key, || async {
            let mut fields = self
                .gfs
                .analysis(valid_time, &[v])
                .await
                .map_err(|e| gfs_error(&e))?;
            fields.pop().ok_or_else(|| {
                DataError::infra(ErrorKind::Internal, "GFS source returned no field")
            })
        })
        .await
    }

    /// The GFS forecast of cycle `init` at `lead_hours`.
    pub async fn gfs_forecast(
        &self,
        v: VarLevel,
        init: DateTime<Utc>,
        lead_hours: u32,
    ) -> Result<Arc<Field>, DataError> {
        let source = format!(
            "gfs-forecast/{}/{}",
            self.gfs.source_id(),
            init.format("%Y%m%d%H")
        );
        let valid = init + chrono::Duration::hours(i64::from(lead_hours));
        let key = DataHub::key(&source, v, valid)?;
        self.cached(key, || async {
            let mut fields = self
                .gfs
                .forecast(init, lead_hours, &[v])
                .await
                .map_err(|e| gfs_error(&e))?;
            fields.pop().ok_or_else(|| {
                DataError::infra(ErrorKind::Internal, "GFS source returned no field")
            })
        })
        .await
    }

    /// A field derived for a run (e.g. the Day1 climatology slice on the truth grid), cached
    /// under `group/` so that it can be removed as a whole.
    pub async fn derived<F, Fut>(
        &self,
        group: &str,
        v: VarLevel,
        valid_time: DateTime<Utc>,
        make: F,
    ) -> Result<Arc<Field>, DataError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Field, DataError>>,
    {
        self.cached(DataHub::key(group, v, valid_time)?, make).await
    }

    /// Removes a derived group from disk and memory.
    pub async fn remove_group(&self, group: &str) -> Result<bool, DataError> {
        self.memory.clear();
        Ok(self.disk.remove_group(group).await?)
    }

    fn miner_transport(&self, url: &str, token: &str) -> Result<StoreHandle, DataError> {
        let token = BearerToken::new(token).map_err(|_| {
            DataError::new(
                ErrorKind::Unauthorized,
                Blame::Miner,
                "the miner's access token is empty or not printable ASCII",
            )
        })?;
        connect_miner_store(url, Some(token), &self.miner_http)
            .map_err(|e| miner_transport_error(&e))
    }

    /// verify/open_store: fetches `manifest.json` (and `manifest.sig`), verifies the signature by
    /// the miner's hotkey, freezes the manifest and opens the store through a storage that
    /// verifies every byte against it.
    ///
    /// The manifest hash the miner claims is the hash of the manifest it serves and signs: the
    /// signature by its registered hotkey is what authenticates it (with `require_signature`
    /// off, an unsigned store is accepted on its own word — for tests only).
    pub async fn verify_miner_store(
        &self,
        url: &str,
        token: &str,
        hotkey: &str,
        init: DateTime<Utc>,
        store_name: &str,
    ) -> Result<(FrozenManifest, MinerStore), DataError> {
        let transport = self.miner_transport(url, token)?;
        let manifest = transport
            .get_limited("manifest.json", 1 << 20)
            .await
            .map_err(|e| miner_transport_error(&e))?;
        let signature = match transport.get_limited("manifest.sig", 1 << 10).await {
            Ok(b) => Some(b),
            Err(TransportError::NotFound { .. }) => None,
            Err(e) => return Err(miner_transport_error(&e)),
        };
        let claimed = manifest_hash(&manifest);
        let claim = ManifestClaim {
            claimed_sha256: &claimed,
            miner_hotkey_ss58: hotkey,
            signature_policy: if self.config.require_signature {
                SignaturePolicy::Required
            } else {
                SignaturePolicy::IfPresent
            },
        };
        let frozen = verify_manifest(&manifest, signature.as_deref(), &claim)
            .map_err(|e| DataError::miner(e.kind(), format!("{}: {e}", transport.label())))?;
        let reader = self
            .open_frozen(transport, frozen.clone(), init, store_name)
            .await?;
        Ok((frozen, reader))
    }

    /// Opens a miner store whose manifest was frozen at verification; every byte read is checked
    /// against it.
    pub async fn open_miner_store(
        &self,
        url: &str,
        token: &str,
        frozen: FrozenManifest,
        init: DateTime<Utc>,
        store_name: &str,
    ) -> Result<MinerStore, DataError> {
        let transport = self.miner_transport(url, token)?;
        self.open_frozen(transport, frozen, init, store_name).await
    }

    async fn open_frozen(
        &self,
        transport: StoreHandle,
        frozen: FrozenManifest,
        init: DateTime<Utc>,
        store_name: &str,
    ) -> Result<MinerStore, DataError> {
        let format = if frozen.manifest().files.contains_key(".zmetadata")
            || frozen.manifest().files.contains_key(".zgroup")
        {
            FormatHint::V2
        } else {
            FormatHint::V3
        };
        let handle = transport.clone();
        let storage: DynStorage = Arc::new(VerifiedStore::new(transport, frozen));
        let mut options = ReadOptions::new(store_name);
        options.format = format;
        let reader = MinerForecastReader::open(storage, options, init)
            .await
            .map_err(|e| miner_read_error(&e))?;
        Ok(MinerStore {
            reader,
            handle,
            counted: 0,
        })
    }
}

/// A miner's store opened through the verifying storage; counts the bytes it fetched.
pub struct MinerStore {
    reader: MinerForecastReader,
    handle: StoreHandle,
    counted: u64,
}

impl MinerStore {
    /// The reader.
    pub fn reader(&self) -> &MinerForecastReader {
        &self.reader
    }

    /// Bytes fetched (and verified) since the last call.
    pub fn take_bytes(&mut self) -> u64 {
        let total = self.handle.bytes_fetched();
        let new = total.saturating_sub(self.counted);
        self.counted = total;
        new
    }
}

/// The S3 GFS source of `s3://<rest>` (bucket and optional prefix) as configured: NOAA's public
/// bucket by default, or a mirror (endpoint, region, credentials, options of `gfs_access`).
fn gfs_s3_config(rest: &str, config: &DataConfig, limits: GfsLimits) -> S3GfsConfig {
    let (bucket, prefix) = match rest.split_once('/') {
        Some((b, p)) => (b.to_owned(), p.trim_matches('/').to_owned()),
        None => (rest.to_owned(), String::new()),
    };
    let access = &config.gfs_access;
    let is_noaa = bucket == NOAA_GFS_BUCKET && prefix.is_empty() && access.endpoint.is_none();
    let source_id = if is_noaa {
        S3GfsConfig::default().source_id
    } else {
        // cached apart from NOAA's and from other mirrors
        use sha2::Digest;
        let digest = sha2::Sha256::digest(
            format!(
                "{}|{bucket}|{prefix}",
                access.endpoint.as_deref().unwrap_or("")
            )
            .as_bytes(),
        );
        format!("gfs-s3-{}", &hex::encode(digest)[..12])
    };
    S3GfsConfig {
        bucket,
        prefix,
        region: access
            .region
            .clone()
            .unwrap_or_else(|| NOAA_GFS_REGION.to_owned()),
        endpoint: access.endpoint.clone(),
        credentials: access.credentials,
        options: access.options.clone(),
        limits,
        source_id,
        ..S3GfsConfig::default()
    }
}

fn gfs_error(e: &wx_data::gfs::GfsError) -> DataError {
    let kind = e.kind();
    let mut d = DataError::infra(kind, e);
    d.not_ready = kind == ErrorKind::SourceUnavailable;
    d
}

/// A truth-side field in canonical orientation (latitudes descending, longitudes in [0, 360)),
/// reordered once on the blocking pool before it is cached: every miner's alignment then
/// borrows it instead of reordering a copy (the WeatherBench2 climatology's latitudes ascend).
async fn canonical(field: Field) -> Result<Field, DataError> {
    tokio::task::spawn_blocking(move || crate::align::canonical(field))
        .await
        .map_err(|e| DataError::infra(ErrorKind::Internal, e))?
        .map_err(|e| DataError::infra(ErrorKind::Format, e))
}

/// A transport error reaching a miner's store.
pub fn miner_transport_error(e: &TransportError) -> DataError {
    DataError::miner(e.kind(), e)
}

/// A read error of a miner's store.
pub fn miner_read_error(e: &ZarrError) -> DataError {
    DataError::miner(e.kind(), e)
}

/// The hosting status a miner failure maps to.
pub fn hosting_status_of(e: &DataError) -> wx_model::HostingStatus {
    use wx_model::HostingStatus::*;
    match e.kind {
        ErrorKind::Network | ErrorKind::Timeout | ErrorKind::Forbidden => Unreachable,
        ErrorKind::Unauthorized => Unauthorized,
        _ => Invalid,
    }
}
