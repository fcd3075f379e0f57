//! The minimum-throughput rule of miner reads (docs/data.md §1.3), against the real test
//! server on 127.0.0.1: a throttled or stalled body is aborted as "too slow" once a whole
//! window after the grace brought less than the minimum; a body above the minimum, a body that
//! ends within the first window, and any body with the rule off are read whole.

use std::path::Path;
use std::time::{Duration, Instant};

use wx_data::transport::{
    BearerToken, HttpStoreConfig, StoreHandle, ThroughputRule, TransportError, connect_miner_store,
};
use wx_testkit::{Fault, Faults, TestServer};

const TOKEN: &str = "tok-SECRET-throughput-0123456789";

/// A directory with `big.bin` of `len` bytes.
fn store_dir(len: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("store")).unwrap();
    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("store/big.bin"), bytes).unwrap();
    dir
}

async fn server(root: &Path, fault: Fault) -> TestServer {
    TestServer::start(
        root,
        Some(TOKEN),
        Faults::new().with("store/big.bin", fault),
    )
    .await
    .expect("test server starts")
}

/// Loopback allowed; the read timeouts are long, so that only the rule can stop a slow body.
fn config(rule: ThroughputRule) -> HttpStoreConfig {
    HttpStoreConfig {
        read_timeout: Duration::from_secs(30),
        request_timeout: Duration::from_secs(120),
        fetch_deadline: Duration::from_secs(120),
        max_retries: 0,
        min_throughput: rule,
        ..HttpStoreConfig::local_testing()
    }
}

fn open(server: &TestServer, config: &HttpStoreConfig) -> StoreHandle {
    connect_miner_store(
        &server.url_for("store"),
        Some(BearerToken::new(TOKEN).unwrap()),
        config,
    )
    .expect("store handle")
}

/// 100 kB/s over 1 s windows after 0.5 s.
fn rule() -> ThroughputRule {
    ThroughputRule {
        min_bytes_per_second: 100_000,
        window: Duration::from_secs(1),
        grace: Duration::from_millis(500),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_body_is_aborted_as_too_slow() {
    // 400 kB at 20 kB/s would take 20 s; the rule stops it after the first window (1.5 s)
    let dir = store_dir(400_000);
    let server = server(
        dir.path(),
        Fault::Slow {
            bytes_per_second: 20_000,
        },
    )
    .await;
    let handle = open(&server, &config(rule()));
    let started = Instant::now();
    let err = handle.get_limited("big.bin", 1 << 20).await.unwrap_err();
    let elapsed = started.elapsed();
    let TransportError::TooSlow {
        bytes_per_second,
        minimum,
        window_seconds,
        ..
    } = &err
    else {
        panic!("expected TooSlow, got {err:?}");
    };
    assert!(*bytes_per_second < 100_000, "{err}");
    assert_eq!((*minimum, *window_seconds), (100_000, 1));
    let text = err.to_string();
    assert!(text.contains("too slow:"), "{text}");
    assert!(text.contains("below the minimum 100000 bytes/s"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
    // a miner's transport failure like a timeout: retried, and the miner's fault upstream
    assert_eq!(err.kind(), wx_model::ErrorKind::Timeout);
    assert!(err.is_transient());
    // well before the 20 s the whole body would take (a ratio, not a tight bound)
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_caught_at_the_end_of_a_window_not_at_the_read_timeout() {
    let dir = store_dir(100_000);
    let server = server(dir.path(), Fault::StallAfterHeaders).await;
    let config = config(rule());
    let handle = open(&server, &config);
    let started = Instant::now();
    let err = handle.get_limited("big.bin", 1 << 20).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(
            err,
            TransportError::TooSlow {
                bytes_per_second: 0,
                ..
            }
        ),
        "{err:?}"
    );
    // grace + window = 1.5 s; the read timeout (30 s) would have taken 20× longer
    assert!(elapsed < config.read_timeout / 3, "took {elapsed:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_above_the_minimum_or_within_a_window_or_without_a_rule_are_read_whole() {
    // 1.2 MB at 400 kB/s: three seconds, judged twice, four times the minimum
    let dir = store_dir(1_200_000);
    let fast_enough = server(
        dir.path(),
        Fault::Slow {
            bytes_per_second: 400_000,
        },
    )
    .await;
    let body = open(&fast_enough, &config(rule()))
        .get_limited("big.bin", 2 << 20)
        .await
        .expect("a body above the minimum is read");
    assert_eq!(body.len(), 1_200_000);
    fast_enough.shutdown().await;

    // 40 kB at 40 kB/s (below the minimum) ends within grace + window (3 s): never judged
    let dir = store_dir(40_000);
    let short = server(
        dir.path(),
        Fault::Slow {
            bytes_per_second: 40_000,
        },
    )
    .await;
    let body = open(
        &short,
        &config(ThroughputRule {
            grace: Duration::from_secs(2),
            ..rule()
        }),
    )
    .get_limited("big.bin", 1 << 20)
    .await
    .expect("a short body is not judged");
    assert_eq!(body.len(), 40_000);
    short.shutdown().await;

    // the same slow body as above with the rule off: read whole
    let dir = store_dir(60_000);
    let slow = server(
        dir.path(),
        Fault::Slow {
            bytes_per_second: 20_000,
        },
    )
    .await;
    let body = open(&slow, &config(ThroughputRule::OFF))
        .get_limited("big.bin", 1 << 20)
        .await
        .expect("no rule, no abort");
    assert_eq!(body.len(), 60_000);
    slow.shutdown().await;
}
