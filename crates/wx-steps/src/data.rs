//! Where steps get their data: GFS, ERA5 and climatology through the disk and memory caches,
//! and miner stores through the guarded transport with manifest verification.
//!
//! Every error is turned into a [`DataError`] that knows its [`ErrorKind`], who is to blame
//! (the miner or our infrastructure) and whether the data is merely not published yet.

use crate::config::DataConfig;
use chrono::{DateTime, Utc};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use wx_data::Field;
use wx_data::cache::{CacheError, CacheKey, DiskCache, DiskCacheOptions, FieldMemoryCache};
use wx_data::gfs::{GfsLayout, GfsSource, LocalGfsSource, S3GfsSource};
use wx_data::manifest::{
    FrozenManifest, ManifestClaim, SignaturePolicy, manifest_hash, verify_manifest,
};
use wx_data::sources::{ClimatologyReader, Era5Reader, MinerForecastReader};
use wx_data::transport::{
    BearerToken, CloudConfig, HttpStoreConfig, StoreHandle, TransportError, connect_miner_store,
    open_source,
};
use wx_data::verified::VerifiedStore;
use wx_data::zarr::{DynStorage, FormatHint, ReadOptions, ZarrError};
use wx_model::{Blame, ErrorKind, VarLevel};

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

/// A lazily opened truth store, re-opened when a requested time is not in it (its time axis
/// grows as ERA5 is published).
struct TrustedStore<R> {
    location: String,
    reader: Mutex<Option<(Arc<R>, Instant)>>,
}

impl<R> TrustedStore<R> {
    fn new(location: String) -> Self {
        TrustedStore {
            location,
            reader: Mutex::new(None),
        }
    }
}

/// The data access of a validator process, shared by all the steps it runs.
pub struct DataHub {
    config: DataConfig,
    gfs: Arc<dyn GfsSource>,
    era5: TrustedStore<Era5Reader>,
    climatology: TrustedStore<ClimatologyReader>,
    disk: DiskCache,
    memory: FieldMemoryCache,
    miner_http: HttpStoreConfig,
    cloud: CloudConfig,
    reopen_after: Duration,
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
        let gfs: Arc<dyn GfsSource> = if config.gfs.starts_with("s3://") {
            Arc::new(S3GfsSource::noaa().map_err(|e| DataError::infra(e.kind(), e))?)
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
            era5: TrustedStore::new(config.era5.clone()),
            climatology: TrustedStore::new(config.climatology.clone()),
            disk,
            memory: FieldMemoryCache::new(config.memory_cache_mib.saturating_mul(1 << 20)),
            miner_http,
            cloud: CloudConfig::default(),
            reopen_after: if test_mode {
                Duration::ZERO
            } else {
                Duration::from_secs(300)
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

    fn trusted_options(&self, name: &str) -> ReadOptions {
        let mut o = ReadOptions::new(name);
        o.max_metadata_bytes = self.config.truth_metadata_limit_mib << 20;
        o
    }

    fn open_storage(&self, location: &str) -> Result<DynStorage, DataError> {
        let handle: StoreHandle = open_source(location, &self.cloud, &HttpStoreConfig::default())
            .map_err(|e| DataError::infra(e.kind(), e))?;
        Ok(handle.zarr_storage())
    }

    async fn era5_reader(&self, valid_time: DateTime<Utc>) -> Result<Arc<Era5Reader>, DataError> {
        let mut slot = self.era5.reader.lock().await;
        if let Some((reader, opened)) = slot.as_ref()
            && (reader.has_time(valid_time) || opened.elapsed() < self.reopen_after)
        {
            return Ok(reader.clone());
        }
        let storage = self.open_storage(&self.era5.location)?;
        let reader = Arc::new(
            Era5Reader::open(storage, self.trusted_options("era5"))
                .await
                .map_err(truth_error)?,
        );
        *slot = Some((reader.clone(), Instant::now()));
        Ok(reader)
    }

    async fn climatology_reader(&self) -> Result<Arc<ClimatologyReader>, DataError> {
        let mut slot = self.climatology.reader.lock().await;
        if let Some((reader, _)) = slot.as_ref() {
            return Ok(reader.clone());
        }
        let storage = self.open_storage(&self.climatology.location)?;
        let reader = Arc::new(
            ClimatologyReader::open(storage, self.trusted_options("climatology"))
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

    /// Whether the ERA5 store holds `valid_time` (re-opening it if it may have grown).
    pub async fn era5_has(&self, valid_time: DateTime<Utc>) -> Result<bool, DataError> {
        Ok(self.era5_reader(valid_time).await?.has_time(valid_time))
    }

    /// ERA5 truth at `valid_time`.
    pub async fn era5(
        &self,
        v: VarLevel,
        valid_time: DateTime<Utc>,
    ) -> Result<Arc<Field>, DataError> {
        let key = DataHub::key("era5", v, valid_time)?;
        self.cached(key, || async {
            let reader = self.era5_reader(valid_time).await?;
            reader.read(v, valid_time).await.map_err(truth_error)
        })
        .await
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
            reader.read(v, valid_time).await.map_err(truth_error)
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

fn gfs_error(e: &wx_data::gfs::GfsError) -> DataError {
    let kind = e.kind();
    let mut d = DataError::infra(kind, e);
    d.not_ready = kind == ErrorKind::SourceUnavailable;
    d
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
