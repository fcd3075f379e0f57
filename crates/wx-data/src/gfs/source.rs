//! GFS sources over object_store: NOAA Open Data on S3 and local directories with the same
//! key layout, sharing one code path ([`ObjectStoreGfs`]).

use super::{GfsError, GfsSource, validate_cycle};
use crate::field::Field;
use crate::transport::{Credentials, SourceAccess};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use futures::{StreamExt, TryStreamExt};
use ndarray::Array3;
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectStore};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use wx_grib::GfsLayout;
use wx_grib::catalog::MessageRequest;
use wx_grib::grib::{self, LatLonGrid};
use wx_grib::idx::{GribIndex, MAX_IDX_BYTES, MessageRange};
use wx_model::{ErrorKind, Level, VarLevel, sanitize_message};

/// Largest single GRIB message fetched by default (a 0.25° field packs to about 1 MB);
/// [`GfsLimits::max_message_bytes`] configures it per source.
pub const MAX_MESSAGE_BYTES: u64 = 64 * 1024 * 1024;

/// Read limits of a GFS source (trusted, but bounded all the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GfsLimits {
    /// Largest GRIB message fetched when the inventory gives no end (the last message of a
    /// file), bytes; default [`MAX_MESSAGE_BYTES`].
    pub max_message_bytes: u64,
}

impl Default for GfsLimits {
    fn default() -> Self {
        GfsLimits {
            max_message_bytes: MAX_MESSAGE_BYTES,
        }
    }
}
/// Longest lead GFS publishes, hours.
pub const MAX_LEAD_HOURS: u32 = 384;
/// Byte-range requests in flight per file.
const FETCH_CONCURRENCY: usize = 4;

/// The NOAA Open Data bucket.
pub const NOAA_GFS_BUCKET: &str = "noaa-gfs-bdp-pds";
/// Its region.
pub const NOAA_GFS_REGION: &str = "us-east-1";
/// A grid every decoded field must have (checked against the GRIB grid definition).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedGrid {
    /// Points per row.
    pub ni: usize,
    /// Rows.
    pub nj: usize,
    /// First latitude (degrees).
    pub lat_first: f64,
    /// Latitude step between rows (negative: north to south).
    pub lat_step: f64,
    /// First longitude (degrees).
    pub lon_first: f64,
    /// Longitude step between columns.
    pub lon_step: f64,
}

wx_model::message_error! {
    /// A decoded GRIB2 grid that is not the one expected, described.
    struct GridMismatch;
}

impl ExpectedGrid {
    /// GFS 0.25°: 721 × 1440, 90 → −90, 0 → 359.75.
    pub const GFS_0P25: ExpectedGrid = ExpectedGrid {
        ni: 1440,
        nj: 721,
        lat_first: 90.0,
        lat_step: -0.25,
        lon_first: 0.0,
        lon_step: 0.25,
    };

    fn check(&self, grid: &LatLonGrid) -> Result<(), GridMismatch> {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        let ok = grid.ni == self.ni
            && grid.nj == self.nj
            && grid
                .lats
                .iter()
                .enumerate()
                .all(|(j, v)| close(*v, self.lat_first + self.lat_step * j as f64))
            && grid
                .lons
                .iter()
                .enumerate()
                .all(|(i, v)| close(*v, self.lon_first + self.lon_step * i as f64));
        if ok {
            Ok(())
        } else {
            Err(GridMismatch(format!(
                "grid {} x {} from ({}, {}) to ({}, {}) is not the expected {} x {} from ({}, {}) \
                 in steps ({}, {})",
                grid.nj,
                grid.ni,
                grid.lats.first().copied().unwrap_or(f64::NAN),
                grid.lons.first().copied().unwrap_or(f64::NAN),
                grid.lats.last().copied().unwrap_or(f64::NAN),
                grid.lons.last().copied().unwrap_or(f64::NAN),
                self.nj,
                self.ni,
                self.lat_first,
                self.lon_first,
                self.lat_step,
                self.lon_step
            )))
        }
    }
}

/// The GFS reader over any object store with the GFS key layout: reads the `.idx`, fetches the
/// needed messages by byte range (adjacent ranges coalesced), decodes them and assembles
/// [`Field`]s. [`S3GfsSource`] and [`LocalGfsSource`] are this reader over S3 and a local
/// directory.
#[derive(Debug, Clone)]
pub struct ObjectStoreGfs {
    store: Arc<dyn ObjectStore>,
    description: String,
    layout: GfsLayout,
    expected_grid: Option<ExpectedGrid>,
    source_id: String,
    limits: GfsLimits,
}

impl ObjectStoreGfs {
    /// A reader over `store`. `description` names the store in errors (no secrets);
    /// `source_id` identifies it in cache keys.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        description: impl Into<String>,
        source_id: impl Into<String>,
        layout: GfsLayout,
    ) -> Self {
        ObjectStoreGfs {
            store,
            description: sanitize_message(&description.into(), &[]),
            layout,
            expected_grid: None,
            source_id: source_id.into(),
            limits: GfsLimits::default(),
        }
    }

    /// Replaces the read limits.
    pub fn with_limits(mut self, limits: GfsLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Requires every decoded field to be on `grid` (an error otherwise).
    pub fn with_expected_grid(mut self, grid: ExpectedGrid) -> Self {
        self.expected_grid = Some(grid);
        self
    }

    /// The key layout.
    pub fn layout(&self) -> &GfsLayout {
        &self.layout
    }

    /// Reads the variables of cycle `init` at `lead_hours`.
    pub async fn read(
        &self,
        init: DateTime<Utc>,
        lead_hours: u32,
        vars: &[VarLevel],
    ) -> Result<Vec<Field>, GfsError> {
        validate_cycle(init, lead_hours)?;
        let key = self.layout.key(init, lead_hours);
        let idx_key = self.layout.idx_key(init, lead_hours);
        // 1. the requests, each with the message that holds it
        let mut requests: Vec<Vec<MessageRequest>> = Vec::with_capacity(vars.len());
        for var in vars {
            let levels: Vec<Option<Level>> = if var.variable.is_surface() {
                if var.level.is_some() {
                    return Err(GfsError::InvalidRequest(format!(
                        "{} is a surface variable and has no level",
                        var.variable
                    )));
                }
                vec![None]
            } else {
                var.levels().into_iter().map(Some).collect()
            };
            let reqs = levels
                .into_iter()
                .map(|l| {
                    MessageRequest::new(var.variable, l).ok_or_else(|| {
                        GfsError::InvalidRequest(format!("no GFS message for {var}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            requests.push(reqs);
        }
        // ask for one byte more than accepted: getting it means the inventory is too large
        let idx_bytes = self
            .fetch(
                &idx_key,
                GetRange::Bounded(0..MAX_IDX_BYTES as u64 + 1),
                MAX_IDX_BYTES as u64 + 1,
                "an inventory",
                false,
            )
            .await?;
        if idx_bytes.len() > MAX_IDX_BYTES {
            return Err(self.too_large(
                &idx_key,
                "an inventory",
                idx_bytes.len() as u64,
                MAX_IDX_BYTES as u64,
            ));
        }
        let text = std::str::from_utf8(&idx_bytes).map_err(|e| GfsError::Index {
            store: self.description.clone(),
            key: idx_key.clone(),
            reason: format!("not UTF-8 text ({e})"),
        })?;
        let index = GribIndex::parse(text).map_err(|e| GfsError::Index {
            store: self.description.clone(),
            key: idx_key.clone(),
            reason: e.to_string(),
        })?;
        // 2. message ranges per request
        let mut by_message: BTreeMap<MessageRange, Vec<(usize, usize)>> = BTreeMap::new();
        for (v, reqs) in requests.iter().enumerate() {
            for (l, req) in reqs.iter().enumerate() {
                let found = index.find(req.idx_variable(), &req.idx_level());
                let entry = match found.as_slice() {
                    [one] => *one,
                    [] => {
                        return Err(GfsError::MissingMessage {
                            store: self.description.clone(),
                            key: idx_key.clone(),
                            wanted: req.describe(),
                        });
                    }
                    many => {
                        return Err(GfsError::AmbiguousMessage {
                            store: self.description.clone(),
                            key: idx_key.clone(),
                            wanted: req.describe(),
                            count: many.len(),
                        });
                    }
                };
                if entry.reference_time != init {
                    return Err(GfsError::Index {
                        store: self.description.clone(),
                        key: idx_key.clone(),
                        reason: format!(
                            "{} is listed with d={} but the cycle is {}",
                            req.describe(),
                            entry.reference_time.format("%Y%m%d%H"),
                            init.format("%Y%m%d%H")
                        ),
                    });
                }
                let range = index.range_of(entry);
                if let Some(end) = range.end
                    && end - range.start > MAX_MESSAGE_BYTES
                {
                    return Err(self.too_large(
                        &key,
                        &format!("the message of {}", req.describe()),
                        end - range.start,
                        MAX_MESSAGE_BYTES,
                    ));
                }
                by_message.entry(range).or_default().push((v, l));
            }
        }
        // 3. fetch: adjacent message ranges are coalesced into one request
        let spans = coalesce(by_message.keys().copied());
        let fetched: Vec<(MessageRange, Bytes)> = futures::stream::iter(spans)
            .map(|span| self.fetch_span(&key, span))
            .buffer_unordered(FETCH_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .flatten()
            .collect();
        // 4. decode each message (blocking work, in parallel), keep only requested fields
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut decoded: Vec<Vec<Option<LevelData>>> =
            requests.iter().map(|r| vec![None; r.len()]).collect();
        let jobs = fetched.into_iter().map(|(range, bytes)| {
            let wanted: Vec<(usize, usize, MessageRequest)> = by_message[&range]
                .iter()
                .map(|(v, l)| (*v, *l, requests[*v][*l].clone()))
                .collect();
            let key = key.clone();
            let store = self.description.clone();
            let expected = self.expected_grid.clone();
            tokio::task::spawn_blocking(move || {
                decode_requested(
                    &store,
                    &key,
                    range,
                    &bytes,
                    init,
                    lead_hours,
                    wanted,
                    expected.as_ref(),
                )
            })
        });
        let results: Vec<_> = futures::stream::iter(jobs)
            .buffer_unordered(parallel)
            .collect()
            .await;
        for result in results {
            let fields = result.map_err(|e| {
                GfsError::InvalidRequest(format!("a GRIB decoding task failed: {e}"))
            })??;
            for (v, l, grid, values) in fields {
                decoded[v][l] = Some((grid, values));
            }
        }
        // 5. assemble one Field per requested variable
        let valid_time = init + TimeDelta::hours(i64::from(lead_hours));
        vars.iter()
            .zip(decoded)
            .map(|(var, levels)| self.assemble(&key, *var, levels, valid_time))
            .collect()
    }

    fn assemble(
        &self,
        key: &str,
        var: VarLevel,
        levels: Vec<Option<LevelData>>,
        valid_time: DateTime<Utc>,
    ) -> Result<Field, GfsError> {
        let levels: Vec<LevelData> = levels
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| GfsError::InvalidRequest(format!("{var}: a level was not decoded")))?;
        let grid = levels[0].0.clone();
        if let Some(other) = levels.iter().find(|(g, _)| *g != grid) {
            return Err(GfsError::Message {
                store: self.description.clone(),
                key: key.to_owned(),
                offset: 0,
                reason: format!(
                    "{var}: levels come on different grids ({} x {} and {} x {})",
                    grid.nj, grid.ni, other.0.nj, other.0.ni
                ),
            });
        }
        let n = levels.len();
        let mut data = Vec::with_capacity(n * grid.ni * grid.nj);
        for (_, values) in &levels {
            data.extend_from_slice(values);
        }
        let data = Array3::from_shape_vec((n, grid.nj, grid.ni), data)
            .map_err(|e| GfsError::InvalidRequest(format!("{var}: {e}")))?;
        let level_list = if var.variable.is_surface() {
            Vec::new()
        } else {
            var.levels()
        };
        Field::new(
            var.variable,
            level_list,
            grid.lats,
            grid.lons,
            valid_time,
            data,
        )
        .map_err(|e| GfsError::InvalidRequest(e.to_string()))
    }

    async fn fetch_span(
        &self,
        key: &str,
        span: Span,
    ) -> Result<Vec<(MessageRange, Bytes)>, GfsError> {
        let last_start = span.messages.last().map_or(span.start, |m| m.start);
        let (range, limit) = match span.end {
            Some(end) => (GetRange::Bounded(span.start..end), end - span.start),
            None => (
                GetRange::Offset(span.start),
                last_start - span.start + self.limits.max_message_bytes,
            ),
        };
        let bytes = self.fetch(key, range, limit, "GRIB messages", true).await?;
        let mut out = Vec::with_capacity(span.messages.len());
        for m in span.messages {
            let from = (m.start - span.start) as usize;
            let to = match m.end {
                Some(end) => (end - span.start) as usize,
                None => bytes.len(),
            };
            if to > bytes.len() || from >= to {
                return Err(GfsError::Message {
                    store: self.description.clone(),
                    key: key.to_owned(),
                    offset: m.start,
                    reason: format!(
                        "the file ends at byte {} but the inventory places a message at {}..{}",
                        span.start + bytes.len() as u64,
                        m.start,
                        m.end.map_or("end".to_owned(), |e| e.to_string())
                    ),
                });
            }
            out.push((m, bytes.slice(from..to)));
        }
        Ok(out)
    }

    /// One GET of a bounded range or of everything from an offset, refused before the body
    /// is read when the object store reports more than `limit` bytes. With `exact`, a bounded
    /// range must come back whole (a shorter file than the inventory says is an error).
    async fn fetch(
        &self,
        key: &str,
        range: GetRange,
        limit: u64,
        what: &str,
        exact: bool,
    ) -> Result<Bytes, GfsError> {
        let path = StorePath::parse(key).map_err(|e| {
            GfsError::InvalidRequest(format!("`{key}` is not a valid object key: {e}"))
        })?;
        let options = GetOptions {
            range: Some(range.clone()),
            ..Default::default()
        };
        let result = self
            .store
            .get_opts(&path, options)
            .await
            .map_err(|e| self.fetch_error(key, e))?;
        let len = result.range.end.saturating_sub(result.range.start);
        if len > limit {
            return Err(self.too_large(key, what, len, limit));
        }
        let bytes = result.bytes().await.map_err(|e| self.fetch_error(key, e))?;
        if bytes.len() as u64 > limit {
            return Err(self.too_large(key, what, bytes.len() as u64, limit));
        }
        if let GetRange::Bounded(r) = range
            && exact
            && bytes.len() as u64 != r.end - r.start
        {
            return Err(GfsError::Message {
                store: self.description.clone(),
                key: key.to_owned(),
                offset: r.start,
                reason: format!(
                    "asked for bytes {}..{} but got {} bytes (the file is shorter than its inventory says)",
                    r.start,
                    r.end,
                    bytes.len()
                ),
            });
        }
        Ok(bytes)
    }

    fn too_large(&self, key: &str, what: &str, size: u64, limit: u64) -> GfsError {
        GfsError::TooLarge {
            store: self.description.clone(),
            key: key.to_owned(),
            what: what.to_owned(),
            size,
            limit,
        }
    }

    fn fetch_error(&self, key: &str, e: object_store::Error) -> GfsError {
        if let object_store::Error::NotFound { .. } = e {
            return GfsError::NotAvailable {
                store: self.description.clone(),
                key: key.to_owned(),
            };
        }
        let text = sanitize_message(&e.to_string(), &[]);
        let lower = text.to_ascii_lowercase();
        if lower.contains("range")
            && (lower.contains("invalid")
                || lower.contains("not satisfiable")
                || lower.contains("416"))
        {
            // a byte range from the inventory that the file does not have
            return GfsError::Message {
                store: self.description.clone(),
                key: key.to_owned(),
                offset: 0,
                reason: format!(
                    "the inventory points past the end of the file (the file is shorter \
                     than its inventory says): {text}"
                ),
            };
        }
        let kind = if lower.contains("timed out") || lower.contains("timeout") {
            ErrorKind::Timeout
        } else {
            ErrorKind::Network
        };
        GfsError::Fetch {
            store: self.description.clone(),
            key: key.to_owned(),
            message: text,
            kind,
        }
    }
}

/// Consecutive message ranges fetched with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Span {
    start: u64,
    end: Option<u64>,
    messages: Vec<MessageRange>,
}

/// Merges sorted message ranges whose end is the next one's start.
fn coalesce(ranges: impl Iterator<Item = MessageRange>) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    for r in ranges {
        match spans.last_mut() {
            Some(span) if span.end == Some(r.start) => {
                span.end = r.end;
                span.messages.push(r);
            }
            _ => spans.push(Span {
                start: r.start,
                end: r.end,
                messages: vec![r],
            }),
        }
    }
    spans
}

/// (variable index, level index, grid, values) of one decoded level.
type DecodedLevel = (usize, usize, LatLonGrid, Vec<f32>);
/// A decoded level's grid and values.
type LevelData = (LatLonGrid, Vec<f32>);

/// Decodes the requested fields of one message, checking that each is what the inventory
/// said, at the cycle and lead asked for, on the expected grid.
#[allow(clippy::too_many_arguments)]
fn decode_requested(
    store: &str,
    key: &str,
    range: MessageRange,
    bytes: &[u8],
    init: DateTime<Utc>,
    lead_hours: u32,
    wanted: Vec<(usize, usize, MessageRequest)>,
    expected: Option<&ExpectedGrid>,
) -> Result<Vec<DecodedLevel>, GfsError> {
    let fail = |reason: String| GfsError::Message {
        store: store.to_owned(),
        key: key.to_owned(),
        offset: range.start,
        reason,
    };
    let fields = grib::split_fields(bytes).map_err(|e| fail(e.reason))?;
    let identities = fields
        .iter()
        .map(|f| f.identity())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.reason))?;
    let mut out = Vec::with_capacity(wanted.len());
    for (v, l, req) in wanted {
        let matching: Vec<usize> = identities
            .iter()
            .enumerate()
            .filter(|(_, id)| req.matches(id))
            .map(|(k, _)| k)
            .collect();
        let k = match matching.as_slice() {
            [k] => *k,
            [] => {
                let held: Vec<String> = identities
                    .iter()
                    .map(|id| format!("{}:{}", id.parameter, id.surface))
                    .collect();
                return Err(fail(format!(
                    "the inventory lists {} here but the message holds {}",
                    req.describe(),
                    held.join(", ")
                )));
            }
            many => {
                return Err(fail(format!(
                    "the message holds {} fields that are {}",
                    many.len(),
                    req.describe()
                )));
            }
        };
        let id = &identities[k];
        if id.product_template != 0 {
            return Err(fail(format!(
                "{} uses product template 4.{}, not 4.0 (an instantaneous field)",
                req.describe(),
                id.product_template
            )));
        }
        if id.reference_time != init || id.forecast_minutes != i64::from(lead_hours) * 60 {
            return Err(fail(format!(
                "{} is for reference {} + {} min, not cycle {} + {lead_hours} h",
                req.describe(),
                id.reference_time.format("%Y-%m-%dT%H:%MZ"),
                id.forecast_minutes,
                init.format("%Y-%m-%dT%H:%MZ")
            )));
        }
        let decoded = fields[k]
            .decode()
            .map_err(|e| fail(format!("{}: {}", req.describe(), e.reason)))?;
        if let Some(expected) = expected {
            expected
                .check(&decoded.grid)
                .map_err(|e| fail(format!("{}: {e}", req.describe())))?;
        }
        let mut values = decoded.values;
        if req.scale != 1.0 {
            for x in &mut values {
                *x = (f64::from(*x) * req.scale) as f32;
            }
        }
        out.push((v, l, decoded.grid, values));
    }
    Ok(out)
}

#[async_trait]
impl GfsSource for ObjectStoreGfs {
    fn source_id(&self) -> &str {
        &self.source_id
    }

    async fn forecast(
        &self,
        init: DateTime<Utc>,
        lead_hours: u32,
        vars: &[VarLevel],
    ) -> Result<Vec<Field>, GfsError> {
        self.read(init, lead_hours, vars).await
    }
}

/// Settings of [`S3GfsSource`].
#[derive(Debug, Clone, PartialEq)]
pub struct S3GfsConfig {
    /// Bucket, `noaa-gfs-bdp-pds`.
    pub bucket: String,
    /// Key prefix inside the bucket under which the `gfs.YYYYMMDD/` tree lies (a mirror
    /// sharing a bucket); empty for NOAA's bucket.
    pub prefix: String,
    /// Region, `us-east-1`.
    pub region: String,
    /// Another S3-compatible endpoint (a mirror), `None` for AWS.
    pub endpoint: Option<String>,
    /// Anonymous (NOAA's public bucket, the default) or from the environment (a private
    /// mirror).
    pub credentials: Credentials,
    /// Further object_store S3 options (see [`SourceAccess::options`]).
    pub options: BTreeMap<String, String>,
    /// Read limits.
    pub limits: GfsLimits,
    /// Key layout.
    pub layout: GfsLayout,
    /// Grid every field must have (`Some(GFS_0P25)` for the default product).
    pub expected_grid: Option<ExpectedGrid>,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Retries of a failed request (object_store's retry with backoff).
    pub max_retries: usize,
    /// Source id used in cache keys.
    pub source_id: String,
}

impl Default for S3GfsConfig {
    fn default() -> Self {
        S3GfsConfig {
            bucket: NOAA_GFS_BUCKET.to_owned(),
            prefix: String::new(),
            region: NOAA_GFS_REGION.to_owned(),
            endpoint: None,
            credentials: Credentials::Anonymous,
            options: BTreeMap::new(),
            limits: GfsLimits::default(),
            layout: GfsLayout::default(),
            expected_grid: Some(ExpectedGrid::GFS_0P25),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_retries: 3,
            source_id: "gfs-noaa-s3".to_owned(),
        }
    }
}

/// GFS from NOAA Open Data on S3, read anonymously (no credentials are looked up), or from a
/// mirror bucket (another endpoint, a prefix, credentials from the environment).
#[derive(Debug, Clone)]
pub struct S3GfsSource {
    reader: ObjectStoreGfs,
    config: S3GfsConfig,
}

impl S3GfsSource {
    /// Builds the S3 client (no network access happens here).
    pub fn new(config: S3GfsConfig) -> Result<S3GfsSource, GfsError> {
        let access = SourceAccess {
            credentials: config.credentials,
            endpoint: config.endpoint.clone(),
            region: Some(config.region.clone()),
            options: config.options.clone(),
        };
        let configure_error = |detail: String| {
            GfsError::InvalidRequest(format!(
                "cannot configure S3 bucket `{}`: {}",
                config.bucket,
                sanitize_message(&detail, &[])
            ))
        };
        access
            .validate_for(&format!("s3://{}", config.bucket))
            .map_err(|e| configure_error(e.to_string()))?;
        let store = access
            .s3_builder(&config.bucket)
            .map_err(|e| configure_error(e.to_string()))?
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_timeout(config.request_timeout)
                    .with_connect_timeout(config.connect_timeout)
                    .with_allow_http(access.allows_http()),
            )
            .with_retry(object_store::RetryConfig {
                max_retries: config.max_retries,
                retry_timeout: config.request_timeout * (config.max_retries as u32 + 1),
                ..Default::default()
            })
            .build()
            .map_err(|e| configure_error(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = match config.prefix.trim_matches('/') {
            "" => Arc::new(store),
            prefix => Arc::new(object_store::prefix::PrefixStore::new(store, prefix)),
        };
        let mut reader = ObjectStoreGfs::new(
            store,
            format!("s3://{}/{}", config.bucket, config.prefix.trim_matches('/'))
                .trim_end_matches('/')
                .to_owned(),
            config.source_id.clone(),
            config.layout.clone(),
        )
        .with_limits(config.limits);
        if let Some(grid) = &config.expected_grid {
            reader = reader.with_expected_grid(grid.clone());
        }
        Ok(S3GfsSource { reader, config })
    }

    /// NOAA's bucket with the defaults (0.25°, anonymous, us-east-1).
    pub fn noaa() -> Result<S3GfsSource, GfsError> {
        S3GfsSource::new(S3GfsConfig::default())
    }

    /// `s3://bucket/key` of the GRIB2 file of a cycle and lead.
    pub fn s3_url(&self, init: DateTime<Utc>, lead_hours: u32) -> String {
        format!("s3://{}/{}", self.config.bucket, self.key(init, lead_hours))
    }

    /// The object key in the bucket (prefix included).
    fn key(&self, init: DateTime<Utc>, lead_hours: u32) -> String {
        let key = self.config.layout.key(init, lead_hours);
        match self.config.prefix.trim_matches('/') {
            "" => key,
            prefix => format!("{prefix}/{key}"),
        }
    }

    /// The public HTTPS URL of the same object (virtual-hosted style on AWS, path style on a
    /// custom endpoint).
    pub fn https_url(&self, init: DateTime<Utc>, lead_hours: u32) -> String {
        let key = self.key(init, lead_hours);
        match &self.config.endpoint {
            Some(endpoint) => format!(
                "{}/{}/{key}",
                endpoint.trim_end_matches('/'),
                self.config.bucket
            ),
            None => format!(
                "https://{}.s3.{}.amazonaws.com/{key}",
                self.config.bucket, self.config.region
            ),
        }
    }

    /// The reader.
    pub fn reader(&self) -> &ObjectStoreGfs {
        &self.reader
    }
}

#[async_trait]
impl GfsSource for S3GfsSource {
    fn source_id(&self) -> &str {
        self.reader.source_id()
    }

    async fn forecast(
        &self,
        init: DateTime<Utc>,
        lead_hours: u32,
        vars: &[VarLevel],
    ) -> Result<Vec<Field>, GfsError> {
        self.reader.read(init, lead_hours, vars).await
    }
}

/// GFS from a local directory with the S3 key layout (files + `.idx`), read through
/// object_store's `LocalFileSystem` with the same byte-range code path as S3.
#[derive(Debug, Clone)]
pub struct LocalGfsSource {
    reader: ObjectStoreGfs,
}

impl LocalGfsSource {
    /// A source over `dir` (which must exist). The source id is `gfs-local`.
    pub fn new(dir: impl AsRef<std::path::Path>, layout: GfsLayout) -> Result<Self, GfsError> {
        let dir = dir.as_ref();
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|e| {
            GfsError::NotAvailable {
                store: dir.display().to_string(),
                key: format!(
                    "(the directory itself: {})",
                    sanitize_message(&e.to_string(), &[])
                ),
            }
        })?;
        Ok(LocalGfsSource {
            reader: ObjectStoreGfs::new(
                Arc::new(store),
                dir.display().to_string(),
                "gfs-local",
                layout,
            ),
        })
    }

    /// Requires every field to be on `grid`.
    pub fn with_expected_grid(mut self, grid: ExpectedGrid) -> Self {
        self.reader = self.reader.with_expected_grid(grid);
        self
    }

    /// Uses another source id in cache keys.
    pub fn with_source_id(mut self, id: impl Into<String>) -> Self {
        self.reader.source_id = id.into();
        self
    }

    /// The reader.
    pub fn reader(&self) -> &ObjectStoreGfs {
        &self.reader
    }
}

#[async_trait]
impl GfsSource for LocalGfsSource {
    fn source_id(&self) -> &str {
        self.reader.source_id()
    }

    async fn forecast(
        &self,
        init: DateTime<Utc>,
        lead_hours: u32,
        vars: &[VarLevel],
    ) -> Result<Vec<Field>, GfsError> {
        self.reader.read(init, lead_hours, vars).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_ranges_are_coalesced_and_gaps_are_not() {
        let r = |start, end| MessageRange { start, end };
        let spans = coalesce(
            [
                r(0, Some(10)),
                r(10, Some(25)),
                r(40, Some(50)),
                r(50, None),
            ]
            .into_iter(),
        );
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[0].start, spans[0].end), (0, Some(25)));
        assert_eq!(spans[0].messages.len(), 2);
        assert_eq!((spans[1].start, spans[1].end), (40, None));
    }
}
