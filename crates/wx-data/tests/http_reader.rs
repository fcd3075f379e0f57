//! The data-zarr reader (`MinerForecastReader`) over the verified HTTP storage: the same fields
//! as a local-disk read, and the reader's errors keep the integrity layer's kind and key.

mod http_common;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use http_common::*;
use wx_data::sources::miner::MinerForecastReader;
use wx_data::verified::{VerifiedStore, open_verified};
use wx_model::{ErrorKind, VarLevel, Variable};
use wx_testkit::{Fault, Faults};
use wx_zarr::{DynStorage, ReadOptions};

fn init() -> DateTime<Utc> {
    "2024-12-30T00:00:00Z".parse().unwrap()
}

fn local_storage(store: &str) -> DynStorage {
    let fs = object_store::local::LocalFileSystem::new_with_prefix(
        testdata().join("stores").join(store),
    )
    .unwrap();
    Arc::new(zarrs_object_store::AsyncObjectStore::new(fs))
}

async fn verified_reader(
    server: &wx_testkit::TestServer,
    info: &ManifestInfo,
) -> (Arc<VerifiedStore>, MinerForecastReader) {
    let verified = Arc::new(
        open_verified(open(server, STORE, &fast_config()), &claim(info))
            .await
            .unwrap(),
    );
    let storage: DynStorage = verified.clone();
    let reader = MinerForecastReader::open(storage, ReadOptions::new("miner 7"), init())
        .await
        .unwrap();
    (verified, reader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_over_verified_http_gives_the_local_fields() {
    let server = server(Faults::new()).await;
    let info = manifest_info(STORE);
    let (verified, remote) = verified_reader(&server, &info).await;
    let local = MinerForecastReader::open(local_storage(STORE), ReadOptions::new("local"), init())
        .await
        .unwrap();
    assert_eq!(remote.usable_variables(), local.usable_variables());
    assert_eq!(remote.usable_variables().len(), 9);
    let mut fields = 0;
    for variable in remote.usable_variables() {
        for lead in remote.lead_hours() {
            let a = remote
                .read_lead(VarLevel::all(variable), lead)
                .await
                .unwrap();
            let b = local
                .read_lead(VarLevel::all(variable), lead)
                .await
                .unwrap();
            assert_eq!(a.levels, b.levels);
            assert_eq!(a.lats, b.lats);
            assert_eq!(a.valid_time, b.valid_time);
            assert!(
                a.data
                    .iter()
                    .zip(b.data.iter())
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{variable:?} +{lead}h differs"
            );
            fields += 1;
        }
    }
    assert_eq!(fields, 9 * 8);
    assert!(verified.first_failure().is_none());
    assert!(verified.transport().bytes_fetched() > 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_chunk_is_an_integrity_error_for_the_reader() {
    let server = server(Faults::new().with(&format!("{STORE}/t/2.0.0.0"), Fault::Tamper)).await;
    let info = manifest_info(STORE);
    let (_verified, reader) = verified_reader(&server, &info).await;
    let err = reader
        .read_lead(VarLevel::all(Variable::T), 18)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert!(err.to_string().contains("t/2.0.0.0"), "{err}");
    assert_no_token(&err);
    // the neighbouring leads still verify
    assert!(
        reader
            .read_lead(VarLevel::all(Variable::T), 12)
            .await
            .is_ok()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_chunk_with_the_wrong_decoded_size_is_a_format_error_for_the_reader() {
    let variant = "miner_v2_blosc_zstd.badsize";
    let info = variant_info(variant);
    let corrupt: bytes::Bytes =
        std::fs::read(testdata().join("corrupt/miner_v2_blosc_zstd.2t.0.0.0.short"))
            .unwrap()
            .into();
    let faults = Faults::new()
        .with(
            &format!("{STORE}/manifest.json"),
            Fault::Replace(variant_file(variant, "manifest.json")),
        )
        .with(
            &format!("{STORE}/manifest.sig"),
            Fault::Replace(variant_file(variant, "manifest.sig")),
        )
        .with(&format!("{STORE}/2t/0.0.0"), Fault::Replace(corrupt));
    let server = server(faults).await;
    let (verified, reader) = verified_reader(&server, &info).await;
    let err = reader
        .read_lead(VarLevel::all(Variable::T2m), 6)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Format, "{err}");
    assert!(err.to_string().contains("2t/0.0.0"), "{err}");
    assert!(verified.first_failure().is_none(), "integrity passed");
    assert!(
        reader
            .read_lead(VarLevel::all(Variable::T2m), 12)
            .await
            .is_ok()
    );
    server.shutdown().await;
}
