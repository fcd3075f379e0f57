//! Read benchmark, the Rust side: read + verify + decode a whole miner store over HTTP.
//!
//! `read_bench --url URL --token TOKEN --info MANIFEST_INFO_JSON [--concurrency N]`
//!
//! Opens the store with the hardened miner transport (loopback allowed), fetches and verifies
//! the signed manifest, then reads every data variable (arrays of 3 or more dimensions listed in
//! the verified `.zmetadata`) one time step at a time — the way wx scores, lead by lead — through
//! [`VerifiedStore`] (every chunk hashed against the manifest before zarrs decodes it), N chunks
//! in flight, each in its own task. Prints one JSON line: seconds (manifest fetch included), decoded bytes, MB/s
//! (10^6 bytes of decoded data per second), peak RSS (VmHWM) and bytes fetched.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use serde::Deserialize;
use wx_data::manifest::{ManifestClaim, SignaturePolicy};
use wx_data::transport::{BearerToken, HttpStoreConfig, connect_miner_store};
use wx_data::verified::{VerifiedStore, open_verified};
use zarrs::array::{Array, ArraySubset};

/// The allocator the wx binaries use.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Deserialize)]
struct Info {
    manifest_sha256: String,
    signer_hotkey_ss58: String,
}

#[derive(Deserialize)]
struct Consolidated {
    metadata: std::collections::BTreeMap<String, serde_json::Value>,
}

fn vm_hwm_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn usage() -> ! {
    eprintln!(
        "usage: read_bench --url URL --token TOKEN --info MANIFEST_INFO_JSON [--concurrency N]"
    );
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let mut url = None;
    let mut token = None;
    let mut info = None;
    let mut concurrency = 4usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--url" => url = Some(value()),
            "--token" => token = Some(value()),
            "--info" => info = Some(value()),
            "--concurrency" => concurrency = value().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let (Some(url), Some(token), Some(info)) = (url, token, info) else {
        usage()
    };
    let info: Info = serde_json::from_slice(&std::fs::read(&info).expect("info file"))
        .expect("manifest info JSON");
    if let Err(e) = run(&url, &token, &info, concurrency).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(
    url: &str,
    token: &str,
    info: &Info,
    concurrency: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let transport = connect_miner_store(
        url,
        Some(BearerToken::new(token)?),
        &HttpStoreConfig::local_testing(),
    )?;
    let claim = ManifestClaim {
        claimed_sha256: &info.manifest_sha256,
        miner_hotkey_ss58: &info.signer_hotkey_ss58,
        signature_policy: SignaturePolicy::Required,
    };
    let store: Arc<VerifiedStore> = Arc::new(open_verified(transport, &claim).await?);
    let zmetadata = store
        .get_verified(".zmetadata")
        .await?
        .ok_or("no .zmetadata")?;
    let consolidated: Consolidated = serde_json::from_slice(&zmetadata)?;
    let mut variables = Vec::new();
    for (key, meta) in &consolidated.metadata {
        if let Some(name) = key.strip_suffix("/.zarray")
            && meta["shape"].as_array().is_some_and(|s| s.len() >= 3)
        {
            variables.push(name.to_owned());
        }
    }
    let mut tasks = Vec::new();
    for name in &variables {
        let array = Arc::new(Array::async_open(Arc::clone(&store), &format!("/{name}")).await?);
        let shape = array.shape().to_vec();
        for t in 0..shape[0] {
            let ranges: Vec<std::ops::Range<u64>> = std::iter::once(t..t + 1)
                .chain(shape[1..].iter().map(|&n| 0..n))
                .collect();
            tasks.push((Arc::clone(&array), ArraySubset::new_with_ranges(&ranges)));
        }
    }
    let n_chunks = tasks.len();
    // each chunk is its own task, so fetching, hashing and decoding spread over the runtime's
    // worker threads (one per core)
    let mut results = futures::stream::iter(tasks)
        .map(|(array, subset)| {
            tokio::spawn(async move {
                let data = array
                    .async_retrieve_array_subset::<ndarray::ArrayD<f32>>(&subset)
                    .await?;
                // the field would be scored here; the benchmark only counts it
                Ok::<u64, zarrs::array::ArrayError>(data.len() as u64 * 4)
            })
        })
        .buffer_unordered(concurrency.max(1));
    let mut decoded = 0u64;
    while let Some(joined) = results.next().await {
        decoded += joined??;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "tool": "wx-data",
            "variables": variables.len(),
            "chunks": n_chunks,
            "concurrency": concurrency,
            "seconds": (seconds * 1e4).round() / 1e4,
            "decoded_bytes": decoded,
            "mb_per_s": (decoded as f64 / seconds / 1e6 * 100.0).round() / 100.0,
            "peak_rss_bytes": vm_hwm_bytes(),
            "fetched_bytes": store.transport().bytes_fetched(),
        })
    );
    Ok(())
}
