//! The in-memory LRU field cache: budget, eviction order, single flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use wx_data::cache::{MemoryCache, Weigh};

/// A value of a given weight.
#[derive(Debug, PartialEq)]
struct Blob(usize);

impl Weigh for Blob {
    fn weight(&self) -> usize {
        self.0
    }
}

#[test]
fn budget_is_respected_and_the_least_recently_used_goes_first() {
    let cache: MemoryCache<&str, Blob> = MemoryCache::new(100);
    cache.insert("a", Arc::new(Blob(40)));
    cache.insert("b", Arc::new(Blob(40)));
    assert_eq!(cache.bytes(), 80);
    // touch a: b becomes the least recently used
    assert!(cache.get(&"a").is_some());
    cache.insert("c", Arc::new(Blob(40)));
    assert!(cache.bytes() <= 100);
    assert!(cache.get(&"b").is_none(), "b was least recently used");
    assert!(cache.get(&"a").is_some());
    assert!(cache.get(&"c").is_some());
    // a value heavier than the whole budget is not kept, and evicts nothing
    cache.insert("huge", Arc::new(Blob(101)));
    assert!(cache.get(&"huge").is_none());
    assert_eq!(cache.len(), 2);
    // replacing a key re-weighs it
    cache.insert("a", Arc::new(Blob(10)));
    assert_eq!(cache.bytes(), 50);
    // one big insert evicts several, oldest first: c (touched before a's replacement) goes
    cache.insert("d", Arc::new(Blob(85)));
    assert_eq!(cache.bytes(), 95);
    assert!(cache.get(&"c").is_none());
    assert!(cache.get(&"a").is_some());
    cache.clear();
    assert_eq!((cache.len(), cache.bytes()), (0, 0));
}

#[test]
fn many_inserts_never_exceed_the_budget() {
    let cache: MemoryCache<u32, Blob> = MemoryCache::new(1000);
    for i in 0..500u32 {
        cache.insert(i, Arc::new(Blob((i as usize * 37) % 300 + 1)));
        assert!(cache.bytes() <= 1000, "after {i}: {}", cache.bytes());
        if i % 3 == 0 {
            cache.get(&(i / 2));
        }
    }
    assert!(cache.get(&499).is_some(), "the newest value stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_share_one_load() {
    let cache: Arc<MemoryCache<&str, Blob>> = Arc::new(MemoryCache::new(1 << 20));
    let loads = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..255 {
        let (cache, loads) = (cache.clone(), loads.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_load("truth-2t-12h", || async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok::<_, String>(Blob(1000))
                })
                .await
                .unwrap()
        }));
    }
    let values: Vec<Arc<Blob>> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1,
        "decoded once for 255 callers"
    );
    assert!(values.iter().all(|v| Arc::ptr_eq(v, &values[0])));
    // later callers hit the cache
    let again = cache
        .get_or_load("truth-2t-12h", || async {
            Err::<Blob, String>("must not load".into())
        })
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&again, &values[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_load_is_shared_with_its_waiters_and_not_cached() {
    let cache: Arc<MemoryCache<&str, Blob>> = Arc::new(MemoryCache::new(1 << 20));
    let loads = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (cache, loads) = (cache.clone(), loads.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_load("k", || async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Err::<Blob, String>("GFS not published yet".into())
                })
                .await
        }));
    }
    for t in futures::future::join_all(tasks).await {
        assert_eq!(t.unwrap().unwrap_err(), "GFS not published yet");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    // the error was not cached: the next call loads again
    let v = cache
        .get_or_load("k", || async { Ok::<_, String>(Blob(5)) })
        .await
        .unwrap();
    assert_eq!(*v, Blob(5));
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_loader_hands_over_to_a_waiter() {
    let cache: Arc<MemoryCache<&str, Blob>> = Arc::new(MemoryCache::new(1 << 20));
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load("k", || async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok::<_, String>(Blob(1))
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load("k", || async { Ok::<_, String>(Blob(2)) })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    leader.abort();
    let v = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        *v,
        Blob(2),
        "the waiter loaded after the leader was cancelled"
    );
}

#[test]
fn fields_weigh_their_values_and_coordinates() {
    let t = "2025-01-01T00:00:00Z".parse().unwrap();
    let f = wx_data::Field::new(
        wx_model::Variable::T,
        vec![500, 850],
        vec![0.0; 3],
        vec![0.0; 4],
        t,
        ndarray::Array3::zeros((2, 3, 4)),
    )
    .unwrap();
    assert_eq!(f.weight(), 2 * 3 * 4 * 4 + 7 * 8 + 2 * 2);
}
