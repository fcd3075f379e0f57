//! Read benchmark, the Rust side: read + verify + decode a whole miner store over HTTP.
//!
//! `read_bench --url URL --token TOKEN --info MANIFEST_INFO_JSON [--concurrency N]`
//!
//! Opens the store with the hardened miner transport (loopback allowed), fetches and verifies
//! the signed manifest, opens it with wx's own reader ([`MinerForecastReader`], the one the
//! validator scores with) over [`VerifiedStore`] (every chunk hashed against the manifest before
//! it is decoded), then reads every scored variable at every valid time — the way wx scores,
//! lead by lead — N fields in flight, each in its own task. Prints one JSON line: seconds
//! (manifest fetch and store validation included, also given alone as `open_seconds`), decoded
//! bytes, MB/s (10^6 bytes of decoded data per second), peak RSS (VmHWM) and bytes fetched.

use std::sync::Arc;
use std::time::Instant;

use chrono::DateTime;
use futures::StreamExt;
use serde::Deserialize;
use wx_data::manifest::{ManifestClaim, SignaturePolicy};
use wx_data::sources::miner::MinerForecastReader;
use wx_data::transport::{BearerToken, HttpStoreConfig, connect_miner_store};
use wx_data::verified::{VerifiedStore, open_verified};
use wx_model::VarLevel;
use wx_zarr::{DynStorage, FormatHint, ReadOptions};

/// The allocator the wx binaries use.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Deserialize)]
struct Info {
    manifest_sha256: String,
    signer_hotkey_ss58: String,
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
    let storage: DynStorage = store.clone();
    let mut options = ReadOptions::new("bench miner");
    options.format = FormatHint::V2;
    // Any init before the store's first valid time: every time step is then a lead.
    let reader = Arc::new(MinerForecastReader::open(storage, options, DateTime::UNIX_EPOCH).await?);
    let variables = reader.usable_variables();
    let mut tasks = Vec::new();
    for &variable in &variables {
        for &time in reader.valid_times() {
            tasks.push((variable, time));
        }
    }
    let n_fields = tasks.len();
    let opened = start.elapsed().as_secs_f64();
    // each field is its own task, so fetching, hashing and decoding spread over the runtime's
    // worker threads (one per core)
    let mut results = futures::stream::iter(tasks)
        .map(|(variable, time)| {
            let reader = Arc::clone(&reader);
            tokio::spawn(async move {
                let field = reader.read(VarLevel::all(variable), time).await?;
                // the field would be scored here; the benchmark only counts it
                Ok::<u64, wx_zarr::ZarrError>(field.nbytes() as u64)
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
            "fields": n_fields,
            "concurrency": concurrency,
            "seconds": (seconds * 1e4).round() / 1e4,
            "open_seconds": (opened * 1e4).round() / 1e4,
            "decoded_bytes": decoded,
            "mb_per_s": (decoded as f64 / seconds / 1e6 * 100.0).round() / 100.0,
            "peak_rss_bytes": vm_hwm_bytes(),
            "fetched_bytes": store.transport().bytes_fetched(),
        })
    );
    Ok(())
}
