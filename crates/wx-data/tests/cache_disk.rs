//! The disk cache: single flight across tasks and OS processes, stale-lock takeover, crash
//! safety, corruption detection, retention.
//!
//! Multi-process tests run this test binary again as a helper process (`helper_process`,
//! ignored in normal runs) with the work described in environment variables.

use chrono::{DateTime, TimeDelta, Utc};
use ndarray::Array3;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};
use wx_data::Field;
use wx_data::cache::{CacheError, CacheKey, DiskCache, DiskCacheOptions};
use wx_model::{ErrorKind, Variable};

#[derive(Debug, Clone, PartialEq)]
enum TestError {
    Cache(CacheError),
    Fill(String),
}

impl From<CacheError> for TestError {
    fn from(e: CacheError) -> Self {
        TestError::Cache(e)
    }
}

fn base_time() -> DateTime<Utc> {
    "2025-01-01T00:00:00Z".parse().unwrap()
}

/// A deterministic field for key number `i` (`levels` > 0: temperature on that many levels).
fn field(i: u32, levels: usize, nlat: usize, nlon: usize) -> Field {
    let valid = base_time() + TimeDelta::hours(i64::from(i));
    let lats: Vec<f64> = (0..nlat)
        .map(|j| 90.0 - 180.0 * j as f64 / (nlat - 1) as f64)
        .collect();
    let lons: Vec<f64> = (0..nlon).map(|k| 360.0 * k as f64 / nlon as f64).collect();
    let (variable, lv) = if levels == 0 {
        (Variable::T2m, vec![])
    } else {
        (
            Variable::T,
            wx_model::catalogue::PRESSURE_LEVELS_HPA[..levels].to_vec(),
        )
    };
    let data = Array3::from_shape_fn((levels.max(1), nlat, nlon), |(l, j, k)| {
        if (j, k) == (1, 1) {
            f32::NAN
        } else {
            200.0 + i as f32 + l as f32 * 3.0 + j as f32 * 0.5 + k as f32 * 0.01
        }
    });
    Field::new(variable, lv, lats, lons, valid, data).unwrap()
}

fn key_of(source: &str, f: &Field) -> CacheKey {
    CacheKey::for_field(source, f).unwrap()
}

fn same(a: &Field, b: &Field) -> bool {
    a.variable == b.variable
        && a.levels == b.levels
        && a.lats == b.lats
        && a.lons == b.lons
        && a.valid_time == b.valid_time
        && a.data.shape() == b.data.shape()
        && a.data
            .iter()
            .zip(b.data.iter())
            .all(|(x, y)| x.to_bits() == y.to_bits())
}

fn options() -> DiskCacheOptions {
    DiskCacheOptions {
        stale_lock_after: Duration::from_secs(3600),
        wait_timeout: Duration::from_secs(60),
        initial_poll: Duration::from_millis(5),
        max_poll: Duration::from_millis(50),
    }
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

fn append_line(path: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

fn set_mtime(path: &Path, ago: Duration) {
    std::fs::File::open(path)
        .unwrap()
        .set_modified(SystemTime::now() - ago)
        .unwrap();
}

fn hostname() -> String {
    hostname::get().unwrap().into_string().unwrap()
}

// ---------------------------------------------------------------------------------------------
// the helper process

fn spawn_helper(mode: &str, root: &Path, counter: &Path, arg: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "helper_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WX_CACHE_HELPER", mode)
        .env("WX_CACHE_ROOT", root)
        .env("WX_CACHE_COUNTER", counter)
        .env("WX_CACHE_ARG", arg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
#[ignore = "helper process of the multi-process tests; does nothing on its own"]
fn helper_process() {
    let Ok(mode) = std::env::var("WX_CACHE_HELPER") else {
        return;
    };
    let root = PathBuf::from(std::env::var("WX_CACHE_ROOT").unwrap());
    let counter = PathBuf::from(std::env::var("WX_CACHE_COUNTER").unwrap());
    let arg = std::env::var("WX_CACHE_ARG").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let cache = DiskCache::new(&root, options()).unwrap();
        match mode.as_str() {
            // fill key 0 after sleeping `arg` ms inside the fill
            "fill" => {
                let f = field(0, 0, 19, 36);
                let sleep: u64 = arg.parse().unwrap();
                let got = cache
                    .get_or_fill(&key_of("race", &f), || async {
                        append_line(&counter, &format!("fill by {}", std::process::id()));
                        tokio::time::sleep(Duration::from_millis(sleep)).await;
                        Ok::<_, TestError>(f.clone())
                    })
                    .await
                    .unwrap();
                assert!(same(&got, &f));
                println!("helper done");
            }
            // write large entries one after the other until killed
            "write-many" => {
                for i in 0..10_000 {
                    let f = field(i, 13, 91, 180);
                    cache
                        .get_or_fill(&key_of("crash", &f), || async {
                            Ok::<_, TestError>(f.clone())
                        })
                        .await
                        .unwrap();
                    append_line(&counter, &i.to_string());
                }
            }
            other => panic!("unknown helper mode {other}"),
        }
    });
}

fn wait_for_file(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn finish(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("helper done"),
        "helper failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// single flight

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_tasks_fill_once() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::new(dir.path(), options()).unwrap();
    let fills = Arc::new(AtomicUsize::new(0));
    let f = field(3, 2, 19, 36);
    let key = key_of("gfs-anl", &f);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (cache, fills, f, key) = (cache.clone(), fills.clone(), f.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_fill(&key, || async {
                    fills.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, TestError>(f)
                })
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert!(same(&t.await.unwrap(), &f));
    }
    assert_eq!(fills.load(Ordering::SeqCst), 1);
    assert!(same(&cache.get(&key).await.unwrap().unwrap(), &f));
    assert!(!cache.lock_path(&key).exists(), "the lock is released");
}

#[test]
fn racing_processes_fill_once() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("fills.log");
    let root = dir.path().join("cache");
    let a = spawn_helper("fill", &root, &counter, "500");
    let b = spawn_helper("fill", &root, &counter, "500");
    finish(a);
    finish(b);
    assert_eq!(
        lines(&counter),
        1,
        "{}",
        std::fs::read_to_string(&counter).unwrap()
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cache = DiskCache::new(&root, options()).unwrap();
    let f = field(0, 0, 19, 36);
    assert!(same(
        &rt.block_on(cache.get(&key_of("race", &f)))
            .unwrap()
            .unwrap(),
        &f
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_process_holding_the_lock_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("fills.log");
    let root = dir.path().join("cache");
    let f = field(0, 0, 19, 36);
    let key = key_of("race", &f);
    let child = spawn_helper("fill", &root, &counter, "1500");
    let cache = DiskCache::new(&root, options()).unwrap();
    wait_for_file(&cache.lock_path(&key));
    let ours = AtomicUsize::new(0);
    let got = cache
        .get_or_fill(&key, || async {
            ours.fetch_add(1, Ordering::SeqCst);
            Ok::<_, TestError>(field(99, 0, 19, 36))
        })
        .await
        .unwrap();
    finish(child);
    assert_eq!(
        ours.load(Ordering::SeqCst),
        0,
        "we waited instead of filling"
    );
    assert!(same(&got, &f), "we got the other process's field");
    assert_eq!(lines(&counter), 1);
}

// ---------------------------------------------------------------------------------------------
// stale locks

fn write_lock(path: &Path, pid: u32, start: &str, host: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        format!("pid={pid}\nstart={start}\nhost={host}\ntime=2025-01-01T00:00:00Z\nnonce=feed\n"),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_of_a_dead_process_on_this_host_is_taken_over_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::new(dir.path(), options()).unwrap(); // stale timeout: one hour
    let f = field(1, 0, 19, 36);
    let key = key_of("gfs-anl", &f);
    let mut gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    write_lock(&cache.lock_path(&key), dead_pid, "1", &hostname());
    let start = Instant::now();
    let got = cache
        .get_or_fill(&key, || async { Ok::<_, TestError>(f.clone()) })
        .await
        .unwrap();
    assert!(same(&got, &f));
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took over without waiting for the timeout"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_killed_while_filling_leaves_a_lock_that_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("fills.log");
    let root = dir.path().join("cache");
    let f = field(0, 0, 19, 36);
    let key = key_of("race", &f);
    let mut child = spawn_helper("fill", &root, &counter, "3600000");
    let cache = DiskCache::new(&root, options()).unwrap();
    wait_for_file(&cache.lock_path(&key));
    wait_for_file(&counter); // the child is inside its fill
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        cache.lock_path(&key).exists(),
        "the dead filler's lock is left behind"
    );
    let start = Instant::now();
    let got = cache
        .get_or_fill(&key, || async { Ok::<_, TestError>(f.clone()) })
        .await
        .unwrap();
    assert!(same(&got, &f));
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_from_another_host_is_waited_for_until_it_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let f = field(2, 0, 19, 36);
    // young lock, short wait: we give up with a clear error
    let cache = DiskCache::new(
        dir.path(),
        DiskCacheOptions {
            wait_timeout: Duration::from_millis(300),
            ..options()
        },
    )
    .unwrap();
    let key = key_of("gfs-anl", &f);
    write_lock(&cache.lock_path(&key), 4242, "7", "other-host");
    let e = cache
        .get_or_fill(&key, || async { Ok::<_, TestError>(f.clone()) })
        .await
        .unwrap_err();
    let TestError::Cache(e) = e else {
        panic!("{e:?}")
    };
    assert_eq!(e.kind(), ErrorKind::Cache);
    assert!(e.to_string().contains("pid 4242 on other-host"), "{e}");
    assert!(cache.get(&key).await.unwrap().is_none());
    // the same lock without a heartbeat for longer than the stale timeout is taken over
    set_mtime(&cache.lock_path(&key), Duration::from_secs(2 * 3600));
    let cache = DiskCache::new(dir.path(), options()).unwrap();
    let got = cache
        .get_or_fill(&key, || async { Ok::<_, TestError>(f.clone()) })
        .await
        .unwrap();
    assert!(same(&got, &f));
}

// ---------------------------------------------------------------------------------------------
// crashes and damage

#[tokio::test(flavor = "multi_thread")]
async fn a_writer_killed_mid_write_never_leaves_a_visible_partial_entry() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("written.log");
    let root = dir.path().join("cache");
    let mut child = spawn_helper("write-many", &root, &counter, "");
    // let it write a few entries, then kill it at whatever point it is
    let start = Instant::now();
    while lines(&counter) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the writer made no progress"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(37));
    child.kill().unwrap();
    child.wait().unwrap();
    let cache = DiskCache::new(&root, options()).unwrap();
    // every entry directory that is visible reads back complete and correct
    let mut visible = 0;
    for i in 0..10_000u32 {
        let key = CacheKey::new(
            "crash",
            Variable::T,
            wx_model::catalogue::PRESSURE_LEVELS_HPA.to_vec(),
            base_time() + TimeDelta::hours(i64::from(i)),
        )
        .unwrap();
        if cache.entry_path(&key).exists() {
            visible += 1;
            let got = cache
                .get(&key)
                .await
                .unwrap()
                .expect("a visible entry is complete");
            assert!(same(&got, &field(i, 13, 91, 180)), "entry {i}");
        }
    }
    assert!(visible >= 3, "{visible} entries visible");
    // leftovers of the killed writer (temporary directory, lock) are not entries; purge
    // removes them once old
    for e in walk(&root) {
        let name = e.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains(".tmp-") || name.ends_with(".lock") {
            set_mtime(&e, Duration::from_secs(3 * 86400));
        }
    }
    let report = cache
        .purge_older_than(Duration::from_secs(86400))
        .await
        .unwrap();
    assert_eq!(report.entries, 0, "entries are younger than a day");
    assert!(
        walk(&root)
            .iter()
            .all(|p| !p.to_string_lossy().contains(".tmp-"))
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.path());
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leftover_temporary_directory_is_not_an_entry() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::new(dir.path(), options()).unwrap();
    let f = field(4, 0, 19, 36);
    let key = key_of("gfs-anl", &f);
    let entry = cache.entry_path(&key);
    let parent = entry.parent().unwrap();
    let tmp = parent.join(".2t-sfc.tmp-999-dead");
    std::fs::create_dir_all(tmp.join("data")).unwrap();
    std::fs::write(
        tmp.join("zarr.json"),
        b"{\"zarr_format\": 3, \"node_type\": \"gr",
    )
    .unwrap();
    assert!(cache.get(&key).await.unwrap().is_none());
    let fills = AtomicUsize::new(0);
    let got = cache
        .get_or_fill(&key, || async {
            fills.fetch_add(1, Ordering::SeqCst);
            Ok::<_, TestError>(f.clone())
        })
        .await
        .unwrap();
    assert!(same(&got, &f));
    assert_eq!(fills.load(Ordering::SeqCst), 1);
    set_mtime(&tmp, Duration::from_secs(10 * 86400));
    let report = cache
        .purge_older_than(Duration::from_secs(86400))
        .await
        .unwrap();
    assert_eq!((report.entries, report.leftovers), (0, 1));
    assert!(!tmp.exists());
    assert!(cache.get(&key).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_entries_are_detected_and_refilled() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::new(dir.path(), options()).unwrap();
    let f = field(5, 3, 19, 36);
    let key = key_of("era5", &f);
    let fills = AtomicUsize::new(0);
    let fill = || async {
        fills.fetch_add(1, Ordering::SeqCst);
        Ok::<_, TestError>(f.clone())
    };
    cache.get_or_fill(&key, fill).await.unwrap();
    let entry = cache.entry_path(&key);
    let chunk = entry.join("data/c/1/0/0");
    assert!(chunk.exists(), "chunk layout changed: {:?}", walk(&entry));
    type Damage = Box<dyn Fn(&Path)>;
    let damages: Vec<(&str, Damage)> = vec![
        (
            "flipped byte in a chunk",
            Box::new(|e: &Path| {
                let p = e.join("data/c/1/0/0");
                let mut b = std::fs::read(&p).unwrap();
                let n = b.len() / 2;
                b[n] ^= 0x40;
                std::fs::write(&p, b).unwrap();
            }),
        ),
        (
            "missing chunk (zarrs would read NaN)",
            Box::new(|e: &Path| {
                std::fs::remove_file(e.join("data/c/2/0/0")).unwrap();
            }),
        ),
        (
            "truncated coordinate",
            Box::new(|e: &Path| {
                let p = e.join("lat/c/0");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() - 8]).unwrap();
            }),
        ),
        (
            "garbage group metadata",
            Box::new(|e: &Path| {
                std::fs::write(e.join("zarr.json"), b"\x00\x01 not json").unwrap();
            }),
        ),
        (
            "another field's metadata",
            Box::new(|e: &Path| {
                let p = e.join("zarr.json");
                let s = std::fs::read_to_string(&p).unwrap();
                std::fs::write(&p, s.replace("\"era5\"", "\"gfs\"")).unwrap();
            }),
        ),
    ];
    for (what, damage) in damages {
        damage(&entry);
        assert!(
            cache.get(&key).await.unwrap().is_none(),
            "{what}: damage not detected"
        );
        let before = fills.load(Ordering::SeqCst);
        let got = cache.get_or_fill(&key, fill).await.unwrap();
        assert!(same(&got, &f), "{what}");
        assert_eq!(
            fills.load(Ordering::SeqCst),
            before + 1,
            "{what}: refilled once"
        );
        assert!(
            same(&cache.get(&key).await.unwrap().unwrap(), &f),
            "{what}: replaced"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// errors, retention, groups

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_fill_releases_the_lock_and_a_wrong_field_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::new(dir.path(), options()).unwrap();
    let f = field(6, 0, 19, 36);
    let key = key_of("gfs-anl", &f);
    let e = cache
        .get_or_fill(&key, || async {
            Err::<Field, _>(TestError::Fill("not yet".into()))
        })
        .await
        .unwrap_err();
    assert_eq!(e, TestError::Fill("not yet".into()));
    assert!(!cache.lock_path(&key).exists());
    assert!(cache.get(&key).await.unwrap().is_none());
    let e = cache
        .get_or_fill(&key, || async { Ok::<_, TestError>(field(7, 0, 19, 36)) })
        .await
        .unwrap_err();
    assert!(
        matches!(e, TestError::Cache(CacheError::KeyMismatch { .. })),
        "{e:?}"
    );
    assert!(
        cache.get(&key).await.unwrap().is_none(),
        "nothing stored under the wrong key"
    );
    let got = cache
        .get_or_fill(&key, || async { Ok::<_, TestError>(f.clone()) })
        .await
        .unwrap();
    assert!(same(&got, &f));
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_removes_old_entries_only() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::new(dir.path(), options()).unwrap();
    let old = field(8, 0, 19, 36);
    let new = field(9, 0, 19, 36);
    for f in [&old, &new] {
        cache
            .get_or_fill(&key_of("gfs-anl", f), || async {
                Ok::<_, TestError>(f.clone())
            })
            .await
            .unwrap();
    }
    set_mtime(
        &cache.entry_path(&key_of("gfs-anl", &old)).join("zarr.json"),
        Duration::from_secs(10 * 86400),
    );
    let report = cache
        .purge_older_than(Duration::from_secs(7 * 86400))
        .await
        .unwrap();
    assert_eq!(report.entries, 1);
    assert!(cache.get(&key_of("gfs-anl", &old)).await.unwrap().is_none());
    assert!(cache.get(&key_of("gfs-anl", &new)).await.unwrap().is_some());
    assert!(
        !cache
            .entry_path(&key_of("gfs-anl", &old))
            .parent()
            .unwrap()
            .exists(),
        "empty directories go too"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn remove_group_removes_whole_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::new(dir.path(), options()).unwrap();
    let f = field(10, 0, 19, 36);
    for source in ["clim/run-17", "clim/run-170", "gfs-anl"] {
        cache
            .get_or_fill(&key_of(source, &f), || async {
                Ok::<_, TestError>(f.clone())
            })
            .await
            .unwrap();
    }
    assert!(cache.remove_group("clim/run-17").await.unwrap());
    assert!(
        cache
            .get(&key_of("clim/run-17", &f))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        cache
            .get(&key_of("clim/run-170", &f))
            .await
            .unwrap()
            .is_some()
    );
    assert!(cache.get(&key_of("gfs-anl", &f)).await.unwrap().is_some());
    assert!(
        !cache.remove_group("clim/run-17").await.unwrap(),
        "already gone"
    );
    for bad in ["..", "../x", "/", "clim/../gfs-anl", ""] {
        assert!(
            matches!(
                cache.remove_group(bad).await,
                Err(CacheError::InvalidKey { .. })
            ),
            "{bad}"
        );
    }
    assert!(cache.get(&key_of("gfs-anl", &f)).await.unwrap().is_some());
    assert!(cache.remove_group("clim").await.unwrap());
    assert!(
        cache
            .get(&key_of("clim/run-170", &f))
            .await
            .unwrap()
            .is_none()
    );
}
