//! The in-process field cache: a byte budget, least-recently-used eviction, and single flight
//! per key (255 miners asking for the same truth lead decode it once).
//!
//! Why not `moka` (already in the dependency graph through zarrs): its weighted capacity fits,
//! but its policy does not. moka admits entries by TinyLFU frequency, so a new truth lead can be
//! refused in favour of an older, more often read one (here the newest lead is the one every
//! miner's step is about to read), and it applies evictions and weights lazily, so the budget
//! may be exceeded and `bytes()` lags until pending maintenance runs. This cache guarantees,
//! and `tests/cache_memory.rs` asserts, strict LRU order, the budget after every insert, and
//! an exact byte count at once (the ERA5 hub test checks the 13 cached levels by it).

use crate::field::Field;
use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The memory a cached value accounts for.
pub trait Weigh {
    /// Bytes held.
    fn weight(&self) -> usize;
}

impl Weigh for Field {
    fn weight(&self) -> usize {
        self.nbytes()
            + (self.lats.len() + self.lons.len()) * std::mem::size_of::<f64>()
            + self.levels.len() * std::mem::size_of::<wx_model::Level>()
    }
}

/// The outcome of a load shared with the callers that waited for it: the value, or the
/// loader's error (type-erased, recovered by the waiters' downcast).
type Shared<V> = Option<Result<Arc<V>, Arc<dyn Any + Send + Sync>>>;

struct Slot<V> {
    value: Arc<V>,
    weight: usize,
    tick: u64,
}

struct Inner<K, V> {
    slots: HashMap<K, Slot<V>>,
    /// tick → key, oldest first.
    order: BTreeMap<u64, K>,
    tick: u64,
    bytes: usize,
    in_flight: HashMap<K, Arc<watch::Sender<Shared<V>>>>,
}

/// A bounded, thread-safe LRU cache of `Arc<V>` with per-key single-flight loading.
///
/// Share it with `Arc<MemoryCache<…>>` across every step of a process. Values heavier than the
/// whole budget are returned to their callers but not kept.
pub struct MemoryCache<K, V> {
    budget: usize,
    inner: Mutex<Inner<K, V>>,
}

/// The memory cache of decoded fields, keyed like the disk cache.
pub type FieldMemoryCache = MemoryCache<super::CacheKey, Field>;

impl<K, V> std::fmt::Debug for MemoryCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryCache")
            .field("budget", &self.budget)
            .field("bytes", &inner.bytes)
            .field("entries", &inner.slots.len())
            .finish()
    }
}

impl<K, V> MemoryCache<K, V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        // a panic while holding the lock leaves consistent data (no partial updates span awaits)
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Removes the in-flight marker if the loading caller goes away before finishing (its future
/// dropped), so that a waiter takes over.
struct FlightGuard<'a, K: Eq + Hash + Clone, V> {
    cache: &'a MemoryCache<K, V>,
    key: K,
    sender: Arc<watch::Sender<Shared<V>>>,
    done: bool,
}

impl<K: Eq + Hash + Clone, V> Drop for FlightGuard<'_, K, V> {
    fn drop(&mut self) {
        if !self.done {
            let mut inner = self.cache.lock();
            if inner
                .in_flight
                .get(&self.key)
                .is_some_and(|s| Arc::ptr_eq(s, &self.sender))
            {
                inner.in_flight.remove(&self.key);
            }
        }
    }
}

impl<K: Eq + Hash + Clone, V: Weigh> MemoryCache<K, V> {
    /// An empty cache holding at most `budget_bytes` of values.
    pub fn new(budget_bytes: usize) -> Self {
        MemoryCache {
            budget: budget_bytes,
            inner: Mutex::new(Inner {
                slots: HashMap::new(),
                order: BTreeMap::new(),
                tick: 0,
                bytes: 0,
                in_flight: HashMap::new(),
            }),
        }
    }

    /// The byte budget.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Bytes currently held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Number of values held.
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value, marking it most recently used.
    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        let mut inner = self.lock();
        Self::touch(&mut inner, key)
    }

    fn touch(inner: &mut Inner<K, V>, key: &K) -> Option<Arc<V>> {
        inner.tick += 1;
        let tick = inner.tick;
        let slot = inner.slots.get_mut(key)?;
        let old = std::mem::replace(&mut slot.tick, tick);
        let value = slot.value.clone();
        if let Some(k) = inner.order.remove(&old) {
            inner.order.insert(tick, k);
        }
        Some(value)
    }

    /// Stores a value (replacing any under the key), evicting least recently used values
    /// until the budget holds. A value heavier than the budget is not stored.
    pub fn insert(&self, key: K, value: Arc<V>) {
        let mut inner = self.lock();
        Self::insert_locked(&mut inner, self.budget, key, value);
    }

    fn insert_locked(inner: &mut Inner<K, V>, budget: usize, key: K, value: Arc<V>) {
        Self::remove_locked(inner, &key);
        let weight = value.weight();
        if weight > budget {
            return;
        }
        while inner.bytes + weight > budget {
            let Some((_, oldest)) = inner.order.pop_first() else {
                break;
            };
            if let Some(slot) = inner.slots.remove(&oldest) {
                inner.bytes -= slot.weight;
            }
        }
        inner.tick += 1;
        let tick = inner.tick;
        inner.order.insert(tick, key.clone());
        inner.bytes += weight;
        inner.slots.insert(
            key,
            Slot {
                value,
                weight,
                tick,
            },
        );
    }

    fn remove_locked(inner: &mut Inner<K, V>, key: &K) -> Option<Arc<V>> {
        let slot = inner.slots.remove(key)?;
        inner.order.remove(&slot.tick);
        inner.bytes -= slot.weight;
        Some(slot.value)
    }

    /// Removes a value.
    pub fn remove(&self, key: &K) -> Option<Arc<V>> {
        Self::remove_locked(&mut self.lock(), key)
    }

    /// Removes every value.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.slots.clear();
        inner.order.clear();
        inner.bytes = 0;
    }

    /// The cached value, or the result of `load`, run once for all concurrent callers of the
    /// same key: the first caller loads; the others wait and receive its value or a clone of
    /// its error. Errors are not cached (the next call loads again). If the loading caller is
    /// cancelled, a waiting caller takes over.
    pub async fn get_or_load<F, Fut, E>(&self, key: K, load: F) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Clone + Send + Sync + 'static,
    {
        enum Step<V> {
            Hit(Arc<V>),
            Wait(watch::Receiver<Shared<V>>),
            Lead(Arc<watch::Sender<Shared<V>>>),
        }
        let mut load = Some(load);
        loop {
            // decide under the lock, await outside it
            let step = {
                let mut inner = self.lock();
                if let Some(value) = Self::touch(&mut inner, &key) {
                    Step::Hit(value)
                } else if let Some(sender) = inner.in_flight.get(&key) {
                    Step::Wait(sender.subscribe())
                } else {
                    let sender = Arc::new(watch::channel(None).0);
                    inner.in_flight.insert(key.clone(), sender.clone());
                    Step::Lead(sender)
                }
            };
            match step {
                Step::Hit(value) => return Ok(value),
                Step::Lead(sender) => {
                    let Some(load) = load.take() else {
                        unreachable!("a caller that leads returns; it never loops")
                    };
                    return self.lead(key, sender, load).await;
                }
                Step::Wait(mut receiver) => {
                    let outcome = receiver
                        .wait_for(|v| v.is_some())
                        .await
                        .ok()
                        .and_then(|v| v.clone());
                    match outcome {
                        Some(Ok(value)) => return Ok(value),
                        Some(Err(any)) => {
                            if let Some(e) = any.downcast_ref::<E>() {
                                return Err(e.clone());
                            }
                            // another error type loaded this key: load it ourselves
                        }
                        None => {} // the loading caller was cancelled: try again
                    }
                }
            }
        }
    }

    async fn lead<F, Fut, E>(
        &self,
        key: K,
        sender: Arc<watch::Sender<Shared<V>>>,
        load: F,
    ) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Clone + Send + Sync + 'static,
    {
        let mut guard = FlightGuard {
            cache: self,
            key: key.clone(),
            sender: sender.clone(),
            done: false,
        };
        let result = load().await.map(Arc::new);
        {
            let mut inner = self.lock();
            if let Ok(value) = &result {
                Self::insert_locked(&mut inner, self.budget, key.clone(), value.clone());
            }
            inner.in_flight.remove(&key);
            guard.done = true;
        }
        let shared: Shared<V> = Some(match &result {
            Ok(v) => Ok(v.clone()),
            Err(e) => Err(Arc::new(e.clone()) as Arc<dyn Any + Send + Sync>),
        });
        sender.send_replace(shared);
        result
    }
}
