//! A trusted source over HTTP, as the public ARCO-ERA5 bucket is read: a read of a few of a
//! chunk's 37 levels fetches only the Blosc blocks they overlap, by `Range` requests to a real
//! server on 127.0.0.1, and gives the same values as the chunk read whole from disk.

mod common;
mod http_common;

use common::{local, write_arco_like};
use http_common::fast_config;
use wx_data::transport::{CloudConfig, open_source};
use wx_testkit::{Faults, TestServer};
use wx_zarr::{DynStorage, ReadOptions, Selection, ZarrDataset};

async fn read_levels(storage: DynStorage, levels: &[u64]) -> ndarray::ArrayD<f32> {
    // chunks of 9.6 MB: ranged from 1 MiB on (the default waits for 32 MiB)
    let mut options = ReadOptions::trusted("era5");
    options.min_ranged_fetch_bytes = 1 << 20;
    let dataset = ZarrDataset::open(storage, options).await.unwrap();
    let t = dataset.array("t").await.unwrap().expect("t exists");
    t.read_f32(&[
        Selection::Index(1),
        Selection::Indices(levels.to_vec()),
        Selection::All,
        Selection::All,
    ])
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_levels_over_http_fetch_only_their_blocks() {
    let dir = tempfile::tempdir().unwrap();
    // levels of about 260 kB: the ranges of levels far apart are not merged into one request
    // (object_store merges ranges less than 1 MiB apart, as the public chunks' never are)
    write_arco_like(dir.path(), 181, 360);
    let chunk = std::fs::metadata(dir.path().join("t/1.0.0.0"))
        .unwrap()
        .len();
    let server = TestServer::start(dir.path(), None, Faults::new())
        .await
        .unwrap();
    let handle = open_source(&server.url(), &CloudConfig::default(), &fast_config()).unwrap();
    let levels = [3u64, 20, 21, 36];
    let remote = read_levels(handle.zarr_storage(), &levels).await;
    let whole = read_levels(local(dir.path()), &levels).await;
    assert_eq!(remote.shape(), &[4, 181, 360]);
    assert_eq!(remote, whole, "the same values as the chunk read whole");
    let stats = server.stats("t/1.0.0.0");
    assert!(
        stats.body_bytes_sent < chunk / 4,
        "{} of the chunk's {chunk} bytes sent",
        stats.body_bytes_sent
    );
    // 589 blocks: the header's request does not hold the whole table, which comes next
    assert!(stats.requests >= 3, "header, table, blocks: {stats:?}");
    // the other time's chunk was never asked for
    assert_eq!(server.stats("t/0.0.0.0").requests, 0);
    server.shutdown().await;
}
