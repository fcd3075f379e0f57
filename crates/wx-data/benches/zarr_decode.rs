//! Decode throughput of the fixture stores read lead by lead from local disk through
//! object_store (the same async path as HTTP), in decoded MB/s.
//!
//! `cargo bench -p wx-data --bench zarr_decode`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;
use std::sync::Arc;
use wx_data::sources::MinerForecastReader;
use wx_model::{VarLevel, Variable};
use wx_zarr::{DynStorage, ReadOptions};

fn storage(name: &str) -> DynStorage {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/stores")
        .join(name);
    let fs = object_store::local::LocalFileSystem::new_with_prefix(dir).expect("fixture");
    Arc::new(zarrs_object_store::AsyncObjectStore::new(fs))
}

fn bench_store(c: &mut Criterion, rt: &tokio::runtime::Runtime, store: &str) {
    let init = "2024-12-30T00:00:00Z".parse().unwrap();
    let reader = rt
        .block_on(MinerForecastReader::open(
            storage(store),
            ReadOptions::new(store),
            init,
        ))
        .expect("open");
    let variables = reader.usable_variables();
    let leads = reader.lead_hours();
    let read_all = || async {
        let mut bytes = 0usize;
        for lead in &leads {
            for v in &variables {
                let f = reader
                    .read_lead(VarLevel::all(*v), *lead)
                    .await
                    .expect("read");
                bytes += f.nbytes();
            }
        }
        bytes
    };
    let decoded = rt.block_on(read_all());
    let mut group = c.benchmark_group("read_lead_by_lead");
    group.throughput(Throughput::Bytes(decoded as u64));
    group.bench_function(store, |b| b.iter(|| rt.block_on(read_all())));
    group.finish();
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for store in [
        "miner_v2_blosc_zstd",
        "miner_v2_blosc_lz4",
        "miner_v2_zstd",
        "miner_v2_gzip",
        "miner_v2_none",
        "miner_2p5deg",
    ] {
        bench_store(c, &rt, store);
    }
    // keep the variable list honest: the main store has every scored variable
    assert_eq!(Variable::ALL.len(), 9);
}

criterion_group!(decode, benches);
criterion_main!(decode);
