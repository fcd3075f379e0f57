//! [`MinerNetwork`]: every simulated miner served over HTTP on 127.0.0.1.
//!
//! Each miner with a store gets its own wx-testkit [`TestServer`] (so each has its own bearer
//! token), rooted at the world's `miners/` directory; its store URL is
//! `http://127.0.0.1:PORT/miner-NNN/`. Behaviours become server faults:
//!
//! * [`Behaviour::FlakyThenOk`]`{ failures }`: `manifest.json` is answered 503 for the first
//!   `failures × requests_per_attempt` requests ([`NetworkOptions::requests_per_attempt`] =
//!   the transport's retries + 1, so exactly `failures` verify attempts fail), then served;
//! * [`Behaviour::Tampered`]: every chunk of `2t` is served with one byte flipped
//!   ([`Fault::Tamper`]), so it no longer matches the signed manifest;
//! * [`Behaviour::Offline`]: no file server; a listener on the port accepts connections and
//!   closes them at once (the port stays taken, so no other server can appear there).
//!
//! Every other miner is served as it is. [`MinerNetwork::shutdown`] stops everything.

use crate::SimError;
use crate::spec::Behaviour;
use crate::world::World;
use serde::Serialize;
use std::collections::HashMap;
use wx_data::transport::HttpStoreConfig;
use wx_testkit::{Fault, Faults, PathStats, TestServer};

/// The coordinate arrays of a simulated miner store (`miners.rs`).
const COORDINATES: [&str; 4] = ["time", "plev", "lat", "lon"];

/// Options of the simulated network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkOptions {
    /// Requests one verify attempt makes for `manifest.json` when it is answered 503: the
    /// validator transport's `max_retries + 1`.
    pub requests_per_attempt: u32,
}

impl Default for NetworkOptions {
    /// Matches `HttpStoreConfig::default()` (and `local_testing()`): 2 retries → 3 requests.
    fn default() -> Self {
        NetworkOptions::for_transport(&HttpStoreConfig::default())
    }
}

impl NetworkOptions {
    /// Options matching a validator transport configuration.
    pub fn for_transport(config: &HttpStoreConfig) -> NetworkOptions {
        NetworkOptions {
            requests_per_attempt: u32::try_from(config.max_retries)
                .unwrap_or(u32::MAX - 1)
                .saturating_add(1),
        }
    }
}

/// How to reach one simulated miner: what the `miners` table needs (uid, hotkey, store URL,
/// token) plus its behaviour and the manifest hash it would claim.
#[derive(Clone, Serialize)]
pub struct MinerEndpoint {
    /// Uid.
    pub uid: u16,
    /// SS58 hotkey.
    pub hotkey: String,
    /// Store base URL, `http://127.0.0.1:PORT/miner-NNN/`.
    pub store_url: String,
    /// Bearer token (a secret: serialised for import files, never in `Debug`).
    pub access_token: String,
    /// What it does.
    pub behaviour: Behaviour,
    /// sha256 of its `manifest.json`, if it has a store.
    pub manifest_sha256: Option<String>,
}

impl std::fmt::Debug for MinerEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinerEndpoint")
            .field("uid", &self.uid)
            .field("hotkey", &self.hotkey)
            .field("store_url", &self.store_url)
            .field("access_token", &"[redacted]")
            .field("behaviour", &self.behaviour)
            .field("manifest_sha256", &self.manifest_sha256)
            .finish()
    }
}

/// The running simulated network.
#[derive(Debug)]
pub struct MinerNetwork {
    endpoints: Vec<MinerEndpoint>,
    servers: HashMap<u16, (String, TestServer)>,
    refusers: Vec<tokio::task::JoinHandle<()>>,
    /// The behaviours' faults that count requests (uid, key, fault), for [`Self::rearm_faults`].
    counted: Vec<(u16, String, Fault)>,
    /// The directory the servers are rooted at (the world's `miners/`).
    root: std::path::PathBuf,
}

impl MinerNetwork {
    /// Serves every miner of `world` on 127.0.0.1 (call from a Tokio runtime).
    pub async fn start(world: &World, options: NetworkOptions) -> Result<MinerNetwork, SimError> {
        let mut network = MinerNetwork {
            endpoints: Vec::new(),
            servers: HashMap::new(),
            refusers: Vec::new(),
            counted: Vec::new(),
            root: world.paths.miners.clone(),
        };
        for miner in &world.miners {
            let name = &miner.store_name;
            let store_url = if miner.store_dir.is_none() {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                    .await
                    .map_err(|e| SimError::Network(format!("binding a port: {e}")))?;
                let port = listener
                    .local_addr()
                    .map_err(|e| SimError::Network(e.to_string()))?
                    .port();
                network.refusers.push(tokio::spawn(async move {
                    loop {
                        match listener.accept().await {
                            Ok((stream, _)) => drop(stream),
                            Err(_) => {
                                tokio::time::sleep(std::time::Duration::from_millis(10)).await
                            }
                        }
                    }
                }));
                format!("http://127.0.0.1:{port}/{name}/")
            } else {
                let mut faults = Faults::new();
                match &miner.behaviour {
                    Behaviour::FlakyThenOk { failures } => {
                        let fault = Fault::FailThenOk {
                            status: 503,
                            times: failures.saturating_mul(options.requests_per_attempt),
                        };
                        network.counted.push((
                            miner.uid,
                            "manifest.json".to_owned(),
                            fault.clone(),
                        ));
                        faults = faults.with(&format!("{name}/manifest.json"), fault);
                    }
                    Behaviour::Tampered => {
                        for step in 0..world.spec.steps {
                            faults = faults.with(&format!("{name}/2t/{step}.0.0"), Fault::Tamper);
                        }
                    }
                    _ => {}
                }
                let server =
                    TestServer::start(&world.paths.miners, Some(miner.token.as_str()), faults)
                        .await
                        .map_err(|e| SimError::Network(format!("starting a server: {e}")))?;
                let url = server.url_for(name);
                network.servers.insert(miner.uid, (name.clone(), server));
                url
            };
            network.endpoints.push(MinerEndpoint {
                uid: miner.uid,
                hotkey: miner.hotkey.clone(),
                store_url,
                access_token: miner.token.clone(),
                behaviour: miner.behaviour.clone(),
                manifest_sha256: miner.manifest_sha256.clone(),
            });
        }
        tracing::info!(
            miners = network.endpoints.len(),
            servers = network.servers.len(),
            "wx-sim miner network started on 127.0.0.1"
        );
        Ok(network)
    }

    /// Every miner, in the world's order.
    pub fn endpoints(&self) -> &[MinerEndpoint] {
        &self.endpoints
    }

    /// The miner with `uid`.
    pub fn endpoint(&self, uid: u16) -> Option<&MinerEndpoint> {
        self.endpoints.iter().find(|e| e.uid == uid)
    }

    /// What the server of miner `uid` saw for `key` (relative to the store, e.g.
    /// `manifest.json`); `None` for an offline or unknown miner.
    pub fn stats(&self, uid: u16, key: &str) -> Option<PathStats> {
        self.servers
            .get(&uid)
            .map(|(name, server)| server.stats(&format!("{name}/{key}")))
    }

    /// Total requests the server of miner `uid` received.
    pub fn total_requests(&self, uid: u16) -> Option<u64> {
        self.servers.get(&uid).map(|(_, s)| s.total_requests())
    }

    /// Sets an extra fault on `key` of miner `uid`'s store (tests); false if it has no server.
    pub fn set_fault(&self, uid: u16, key: &str, fault: Fault) -> bool {
        match self.servers.get(&uid) {
            Some((name, server)) => {
                server.set_fault(&format!("{name}/{key}"), fault);
                true
            }
            None => false,
        }
    }

    /// Sets the behaviours' request-counting faults back to their start (a flaky miner fails
    /// its first verify attempts again), so that the same network can serve a second run
    /// exactly as it served the first.
    pub fn rearm_faults(&self) {
        for (uid, key, fault) in &self.counted {
            self.set_fault(*uid, key, fault.clone());
        }
    }

    /// Makes miner `uid`'s server answer every request only after `delay` (a slow but valid
    /// miner; tests); false if it has no server.
    pub fn set_response_delay(&self, uid: u16, delay: std::time::Duration) -> bool {
        match self.servers.get(&uid) {
            Some((_, server)) => {
                server.set_response_delay(delay);
                true
            }
            None => false,
        }
    }

    /// Makes miner `uid`'s server answer every chunk of a forecast variable (a file whose name
    /// starts with a digit, e.g. `2t/3.0.0`, outside the coordinate arrays `time`, `plev`,
    /// `lat`, `lon`) only after `delay`, while its manifest, metadata and coordinates are
    /// answered at once: a miner that is verified as fast as any other and slow exactly where
    /// the scoring reads (tests). Returns how many chunks were delayed (0: no server or store).
    pub fn delay_chunks(&self, uid: u16, delay: std::time::Duration) -> usize {
        let Some((name, server)) = self.servers.get(&uid) else {
            return 0;
        };
        let store = self.root.join(name);
        let mut pending = vec![store.clone()];
        let mut delayed = 0;
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    let coordinate = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| COORDINATES.contains(&n));
                    if !coordinate {
                        pending.push(path);
                    }
                    continue;
                }
                let is_chunk = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()));
                let Ok(relative) = path.strip_prefix(&self.root) else {
                    continue;
                };
                if is_chunk {
                    let key = relative.to_string_lossy().replace('\\', "/");
                    server.set_fault(&key, Fault::Delay(delay));
                    delayed += 1;
                }
            }
        }
        delayed
    }

    /// Stops every server and listener and waits for the servers to close their connections.
    pub async fn shutdown(self) {
        for task in &self.refusers {
            task.abort();
        }
        for (_, (_, server)) in self.servers {
            server.shutdown().await;
        }
        for task in self.refusers {
            let _ = task.await;
        }
    }
}
