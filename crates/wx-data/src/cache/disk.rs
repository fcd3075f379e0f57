//! The disk cache: entries under a root directory, filled single-flight across threads and
//! processes.

use super::CacheError;
use super::entry::{self, ReadError};
use super::key::{CacheKey, validate_source};
use super::lock::{self, LockGuard, Owner};
use crate::field::Field;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Name of the directory where removed entries are moved before deletion.
const TRASH: &str = ".trash";

/// Settings of a [`DiskCache`].
#[derive(Debug, Clone, PartialEq)]
pub struct DiskCacheOptions {
    /// A lock not refreshed for this long (owner on another host, or unknown) is taken over.
    /// The owner refreshes it every quarter of this while it fills.
    pub stale_lock_after: Duration,
    /// How long a caller waits for another filler before giving up with
    /// [`CacheError::WaitTimeout`].
    pub wait_timeout: Duration,
    /// First poll interval while waiting (doubles up to `max_poll`).
    pub initial_poll: Duration,
    /// Longest poll interval.
    pub max_poll: Duration,
}

impl Default for DiskCacheOptions {
    fn default() -> Self {
        DiskCacheOptions {
            stale_lock_after: Duration::from_secs(10 * 60),
            wait_timeout: Duration::from_secs(30 * 60),
            initial_poll: Duration::from_millis(20),
            max_poll: Duration::from_secs(1),
        }
    }
}

/// What [`DiskCache::purge_older_than`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Entries removed.
    pub entries: usize,
    /// Leftover temporary directories (crashed writers) and trash removed.
    pub leftovers: usize,
    /// Stale lock files removed.
    pub locks: usize,
}

/// A directory of cached fields. See the [module documentation](super) for the layout and the
/// concurrency protocol. Cheap to clone; clones share nothing but the directory.
#[derive(Debug, Clone)]
pub struct DiskCache {
    root: PathBuf,
    options: DiskCacheOptions,
    host: String,
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> CacheError {
    CacheError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Runs blocking filesystem work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CacheError> + Send + 'static,
) -> Result<T, CacheError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CacheError::Io {
            path: String::new(),
            message: format!("a cache task failed: {e}"),
        })?
}

/// Aborts the heartbeat task when the fill ends, however it ends.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl DiskCache {
    /// A cache rooted at `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>, options: DiskCacheOptions) -> Result<Self, CacheError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| io_error(&root, e))?;
        let host = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "unknown-host".to_owned());
        Ok(DiskCache {
            root,
            options,
            host,
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory an entry is stored in (it exists only once the entry is complete).
    pub fn entry_path(&self, key: &CacheKey) -> PathBuf {
        self.root
            .join(key.relative_dir())
            .join(format!("{}.zarr", key.entry_stem()))
    }

    /// The lock file guarding the fill of an entry (for operators: it names its owner).
    pub fn lock_path(&self, key: &CacheKey) -> PathBuf {
        self.root
            .join(key.relative_dir())
            .join(format!(".{}.lock", key.entry_stem()))
    }

    /// The cached field, or `None` if it is not cached (or the entry is damaged: a damaged
    /// entry is left for the next filler to replace, under its lock).
    pub async fn get(&self, key: &CacheKey) -> Result<Option<Field>, CacheError> {
        let path = self.entry_path(key);
        let key = key.clone();
        blocking(move || match entry::read(&path, &key) {
            Ok(field) => Ok(Some(field)),
            Err(ReadError::Missing) => Ok(None),
            Err(ReadError::Corrupt(reason)) => {
                tracing::warn!(%key, %reason, "damaged cache entry ignored");
                Ok(None)
            }
        })
        .await
    }

    /// The cached field, or `fill()`'s result, stored for everyone else.
    ///
    /// Single flight across tasks, threads and processes sharing the directory: the caller
    /// that creates the lock file fills; the others poll (with backoff, up to
    /// `wait_timeout`) until the entry appears or the lock goes away (then one of them fills).
    /// A stale lock is taken over. `fill` runs at most once per call. If `fill` fails its
    /// error is returned and the lock released. If storing the filled field fails, the field is
    /// still returned (and the failure logged): the cache is an optimisation.
    pub async fn get_or_fill<F, Fut, E>(&self, key: &CacheKey, fill: F) -> Result<Field, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Field, E>>,
        E: From<CacheError>,
    {
        let entry_path = self.entry_path(key);
        let lock_path = self.lock_path(key);
        let started = Instant::now();
        let mut poll = self.options.initial_poll;
        let mut fill = Some(fill);
        loop {
            if let Some(field) = self.get(key).await? {
                return Ok(field);
            }
            let dir = entry_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let (lp, host) = (lock_path.clone(), self.host.clone());
            let acquired = blocking(move || {
                let owner = lock::me(&host);
                // a concurrent purge may remove the (empty) directory between the two calls
                let mut attempts = 0;
                loop {
                    std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
                    match lock::try_acquire(&lp, &owner) {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 3 => {
                            attempts += 1;
                        }
                        other => return other.map_err(|e| io_error(&lp, e)),
                    }
                }
            })
            .await?;
            if let Some(guard) = acquired {
                let fill = fill.take().ok_or_else(|| CacheError::Io {
                    path: entry_path.display().to_string(),
                    message: "internal: fill already used".to_owned(),
                })?;
                return self.fill_locked(key, guard, fill).await;
            }
            // someone else holds the lock
            let (lp, host, stale_after) = (
                lock_path.clone(),
                self.host.clone(),
                self.options.stale_lock_after,
            );
            let holder: Option<Owner> = blocking(move || {
                let Some(observed) = lock::observe(&lp).map_err(|e| io_error(&lp, e))? else {
                    return Ok(None); // released meanwhile: try again at once
                };
                if lock::is_stale(&observed, &host, stale_after) {
                    let broken = lock::break_stale(&lp, &observed).map_err(|e| io_error(&lp, e))?;
                    if broken {
                        tracing::warn!(lock = %lp.display(), owner = ?observed.owner, "took over a stale cache lock");
                    }
                    return Ok(None);
                }
                Ok(Some(observed.owner.unwrap_or(Owner {
                    pid: 0,
                    start: None,
                    host: "(lock being written)".to_owned(),
                    nonce: String::new(),
                })))
            })
            .await?;
            let Some(holder) = holder else { continue };
            if started.elapsed() >= self.options.wait_timeout {
                return Err(CacheError::WaitTimeout {
                    key: key.to_string(),
                    holder: holder.describe(),
                    waited: started.elapsed(),
                }
                .into());
            }
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(self.options.max_poll);
        }
    }

    async fn fill_locked<F, Fut, E>(
        &self,
        key: &CacheKey,
        guard: LockGuard,
        fill: F,
    ) -> Result<Field, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Field, E>>,
        E: From<CacheError>,
    {
        let entry_path = self.entry_path(key);
        // the entry may have been completed between our read and our lock; a damaged one is
        // moved away now that we hold the lock
        let (ep, k, trash) = (entry_path.clone(), key.clone(), self.root.join(TRASH));
        let existing = blocking(move || match entry::read(&ep, &k) {
            Ok(field) => Ok(Some(field)),
            Err(ReadError::Missing) => Ok(None),
            Err(ReadError::Corrupt(reason)) => {
                tracing::warn!(key = %k, %reason, "replacing a damaged cache entry");
                remove_via_trash(&ep, &trash)?;
                Ok(None)
            }
        })
        .await?;
        if let Some(field) = existing {
            return Ok(field);
        }
        let heartbeat = {
            let path = guard.path().to_owned();
            let every = (self.options.stale_lock_after / 4).max(Duration::from_millis(10));
            Heartbeat(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let p = path.clone();
                    let _ = tokio::task::spawn_blocking(move || LockGuard::touch(&p)).await;
                }
            }))
        };
        let field = fill().await?;
        if let Err(mismatch) = key.check_field(&field) {
            return Err(mismatch.into());
        }
        let (k, f) = (key.clone(), field.clone());
        let written = blocking(move || write_atomically(&entry_path, &k, &f)).await;
        drop(heartbeat);
        drop(guard);
        if let Err(e) = written {
            tracing::warn!(%key, error = %e, "could not store a cache entry; returning the field uncached");
        }
        Ok(field)
    }

    /// Removes every entry of a source id or a prefix of it (whole segments: `clim/run-17`
    /// removes `clim/run-17/...`, not `clim/run-170`). Returns whether anything was there.
    pub async fn remove_group(&self, prefix: &str) -> Result<bool, CacheError> {
        let segments = validate_source(prefix)?;
        let mut dir = self.root.clone();
        for s in segments {
            dir.push(s);
        }
        let trash = self.root.join(TRASH);
        blocking(move || {
            if !dir.exists() {
                return Ok(false);
            }
            remove_via_trash(&dir, &trash)?;
            Ok(true)
        })
        .await
    }

    /// Deletes entries created more than `age` ago, temporary directories of crashed writers
    /// and trash older than `age`, and stale lock files; then empty directories.
    pub async fn purge_older_than(&self, age: Duration) -> Result<PurgeReport, CacheError> {
        let root = self.root.clone();
        let host = self.host.clone();
        let stale_after = self.options.stale_lock_after;
        blocking(move || {
            let mut report = PurgeReport::default();
            let trash = root.join(TRASH);
            if trash.exists() {
                for e in std::fs::read_dir(&trash).map_err(|e| io_error(&trash, e))? {
                    let e = e.map_err(|e| io_error(&trash, e))?;
                    if older_than(&e.path(), age) {
                        std::fs::remove_dir_all(e.path()).map_err(|x| io_error(&e.path(), x))?;
                        report.leftovers += 1;
                    }
                }
            }
            purge_dir(&root, &root, age, &host, stale_after, &mut report)?;
            Ok(report)
        })
        .await
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn older_than(path: &Path, age: Duration) -> bool {
    modified(path)
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|a| a > age)
}

fn purge_dir(
    root: &Path,
    dir: &Path,
    age: Duration,
    host: &str,
    stale_after: Duration,
    report: &mut PurgeReport,
) -> Result<(), CacheError> {
    let trash = root.join(TRASH);
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(dir, e)),
    };
    for e in entries {
        let e = e.map_err(|e| io_error(dir, e))?;
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let is_dir = e.file_type().map_err(|x| io_error(&path, x))?.is_dir();
        if path == trash {
            continue;
        }
        if is_dir && name.ends_with(".zarr") && !name.starts_with('.') {
            // an entry: its age is that of its group metadata, written last
            if older_than(&path.join("zarr.json"), age)
                || !path.join("zarr.json").exists() && older_than(&path, age)
            {
                remove_via_trash(&path, &trash)?;
                report.entries += 1;
            }
        } else if is_dir && name.starts_with('.') && name.contains(".tmp-") {
            if older_than(&path, age) {
                std::fs::remove_dir_all(&path).map_err(|x| io_error(&path, x))?;
                report.leftovers += 1;
            }
        } else if is_dir {
            purge_dir(root, &path, age, host, stale_after, report)?;
            let _ = std::fs::remove_dir(&path); // only succeeds when empty
        } else if name.starts_with('.')
            && (name.ends_with(".lock") || name.contains(".lock.stale-"))
            && let Ok(Some(observed)) = lock::observe(&path)
            && (name.contains(".lock.stale-") || lock::is_stale(&observed, host, stale_after))
        {
            let _ = std::fs::remove_file(&path);
            report.locks += 1;
        }
    }
    Ok(())
}

/// Renames a path into the trash (atomic: readers see the entry or nothing), then deletes it.
fn remove_via_trash(path: &Path, trash: &Path) -> Result<(), CacheError> {
    std::fs::create_dir_all(trash).map_err(|e| io_error(trash, e))?;
    let aside = trash.join(lock::nonce());
    match std::fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(path, e)),
    }
    std::fs::remove_dir_all(&aside).map_err(|e| io_error(&aside, e))
}

/// Writes an entry under a temporary name in the same directory and renames it into place (not
/// flushed to disk: see `entry::write`). If a complete entry appeared meanwhile, ours is
/// discarded.
fn write_atomically(final_path: &Path, key: &CacheKey, field: &Field) -> Result<(), CacheError> {
    let dir = final_path
        .parent()
        .ok_or_else(|| io_error(final_path, "no parent directory"))?;
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        key.entry_stem(),
        std::process::id(),
        lock::nonce()
    ));
    let result = (|| {
        entry::write(&tmp, key, field).map_err(|e| io_error(&tmp, e))?;
        match std::fs::rename(&tmp, final_path) {
            Ok(()) => {}
            // a complete entry is already there (another writer won): keep it
            Err(_) if final_path.join("zarr.json").exists() => {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            Err(e) => return Err(io_error(final_path, e)),
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}
