//! Fill locks: a file created exclusively next to the entry, naming its owner.
//!
//! Content (text, one `key=value` a line): `pid`, `start` (the process start time from
//! `/proc/<pid>/stat` on Linux, guarding against pid reuse), `host`, `time` (RFC 3339) and a
//! random `nonce`. The lock's age is its modification time, refreshed by the owner's
//! heartbeat while it fills.
//!
//! A lock is stale when its owner is on this host and no longer runs (same pid and start
//! time), immediately; otherwise when it was not refreshed for the stale timeout; an
//! unreadable lock (a crash between create and write) after a short grace period. Taking over
//! renames the stale lock to a unique name first (only one contender can), checks that the
//! renamed lock is the one judged stale, and puts it back if not.

use chrono::Utc;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Grace period for a lock file whose content cannot be parsed.
const UNREADABLE_GRACE: Duration = Duration::from_secs(5);

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub pid: u32,
    pub start: Option<u64>,
    pub host: String,
    pub nonce: String,
}

impl Owner {
    fn to_text(&self) -> String {
        format!(
            "pid={}\nstart={}\nhost={}\ntime={}\nnonce={}\n",
            self.pid,
            self.start.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            self.host,
            Utc::now().to_rfc3339(),
            self.nonce
        )
    }

    fn parse(text: &str) -> Option<Owner> {
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
        };
        Some(Owner {
            pid: get("pid")?.parse().ok()?,
            start: get("start").and_then(|s| s.parse().ok()),
            host: get("host")?.to_owned(),
            nonce: get("nonce")?.to_owned(),
        })
    }

    /// Describes the owner for messages.
    pub fn describe(&self) -> String {
        format!("pid {} on {}", self.pid, self.host)
    }
}

/// This process as a lock owner, with a fresh nonce.
pub(crate) fn me(host: &str) -> Owner {
    let pid = std::process::id();
    Owner {
        pid,
        start: process_start(pid),
        host: host.to_owned(),
        nonce: nonce(),
    }
}

/// A random token (no extra dependency: the std hasher is randomly keyed per process).
pub(crate) fn nonce() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// The start time of a running process (clock ticks since boot, `/proc/<pid>/stat` field
/// 22), Linux only; `None` when the process does not exist, has exited (zombie) or elsewhere.
pub(crate) fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after the command name, which is in parentheses and may contain spaces
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    rest.nth(18)?.parse().ok()
}

/// Whether a process of this host still runs. Without `/proc` the answer is "yes" (the
/// timeout then decides).
fn alive(owner: &Owner) -> bool {
    if !Path::new("/proc/self/stat").exists() {
        return true;
    }
    match (process_start(owner.pid), owner.start) {
        (None, _) => false,
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
    }
}

/// A held lock; dropping it removes the lock file if it is still ours.
#[derive(Debug)]
pub(crate) struct LockGuard {
    path: PathBuf,
    nonce: String,
}

impl LockGuard {
    /// Refreshes the lock's modification time (the heartbeat).
    pub fn touch(path: &Path) -> std::io::Result<()> {
        OpenOptions::new()
            .append(true)
            .open(path)?
            .set_modified(SystemTime::now())
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(&self.path)
            && Owner::parse(&text).is_some_and(|o| o.nonce == self.nonce)
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Tries to create the lock exclusively.
pub(crate) fn try_acquire(path: &Path, owner: &Owner) -> std::io::Result<Option<LockGuard>> {
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(mut file) => {
            let guard = LockGuard {
                path: path.to_owned(),
                nonce: owner.nonce.clone(),
            };
            file.write_all(owner.to_text().as_bytes())?;
            file.sync_all()?;
            Ok(Some(guard))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(e),
    }
}

/// The state of an existing lock.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    /// Raw content (compared on takeover).
    pub text: String,
    /// Parsed owner, if readable.
    pub owner: Option<Owner>,
    /// Time since the last heartbeat.
    pub age: Duration,
}

/// Reads a lock; `None` if there is none.
pub(crate) fn observe(path: &Path) -> std::io::Result<Option<Observed>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => String::new(),
        Err(e) => return Err(e),
    };
    let age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    Ok(Some(Observed {
        owner: Owner::parse(&text),
        text,
        age,
    }))
}

/// Whether an observed lock may be taken over.
pub(crate) fn is_stale(observed: &Observed, this_host: &str, stale_after: Duration) -> bool {
    match &observed.owner {
        None => observed.age > UNREADABLE_GRACE.min(stale_after),
        Some(owner) if owner.host == this_host && !alive(owner) => true,
        Some(_) => observed.age > stale_after,
    }
}

/// Removes a lock judged stale, if it is still the same lock. Returns whether it was removed.
pub(crate) fn break_stale(path: &Path, observed: &Observed) -> std::io::Result<bool> {
    let aside = path.with_file_name(format!(
        "{}.stale-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("lock"),
        nonce()
    ));
    match std::fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    let text = std::fs::read_to_string(&aside).unwrap_or_default();
    if text == observed.text {
        std::fs::remove_file(&aside)?;
        Ok(true)
    } else {
        // another contender replaced it in between: put the live lock back (unless a third
        // one was created meanwhile, in which case that one stands)
        let _ = std::fs::hard_link(&aside, path);
        let _ = std::fs::remove_file(&aside);
        Ok(false)
    }
}
