//! Miner store access over real HTTP on 127.0.0.1 (wx-testkit's server serving the signed
//! fixture stores): the correct verified read and every failure case of issue 4, each a
//! distinct error, with the token absent from every message.

mod http_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use http_common::*;
use wx_data::manifest::{ManifestError, SignaturePolicy, SignatureStatus};
use wx_data::transport::{
    BearerToken, ForbiddenReason, HttpStoreConfig, MIB, SizeLimits, StoreKind, TransportError,
    connect_miner_store,
};
use wx_data::verified::{IntegrityError, VerifiedStore, open_verified};
use wx_testkit::{Fault, Faults};

fn key(store: &str, k: &str) -> String {
    format!("{store}/{k}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_read_equals_the_local_read_and_the_written_values() {
    let server = server(Faults::new()).await;
    let info = manifest_info(STORE);
    let store = open(&server, STORE, &fast_config());
    assert_eq!(store.kind(), StoreKind::MinerHttp);
    let verified = Arc::new(open_verified(store, &claim(&info)).await.unwrap());
    assert_eq!(verified.manifest().manifest_sha256(), info.manifest_sha256);
    assert_eq!(
        verified.manifest().signature_status(),
        SignatureStatus::Verified
    );
    assert_eq!(verified.manifest().manifest().files.len(), info.files);

    for array in ["2t", "t", "lat", "lon", "time"] {
        let remote = match array {
            "time" => None,
            _ => Some(read_f32(Arc::clone(&verified), array).await.unwrap()),
        };
        if let Some(remote) = remote {
            let local = read_local_f32(STORE, array);
            assert_eq!(remote.shape(), local.shape(), "{array}");
            // bit-identical, NaN included
            assert!(
                remote
                    .iter()
                    .zip(local.iter())
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{array} differs from the local read"
            );
        }
    }

    // the probes: values numpy handed to the writer
    let probes: serde_json::Value = serde_json::from_slice(
        &std::fs::read(testdata().join(format!("stores/{STORE}.probes.json"))).unwrap(),
    )
    .unwrap();
    let t2 = read_f32(Arc::clone(&verified), "2t").await.unwrap();
    let mut checked = 0;
    for probe in probes["probes"].as_array().unwrap() {
        if probe["variable"] != "2t" {
            continue;
        }
        let valid: chrono::DateTime<chrono::Utc> =
            probe["valid_time"].as_str().unwrap().parse().unwrap();
        let first: chrono::DateTime<chrono::Utc> = "2024-12-30T06:00:00Z".parse().unwrap();
        let t = ((valid - first).num_hours() / 6) as usize;
        let (i, j) = (
            probe["lat_index"].as_u64().unwrap() as usize,
            probe["lon_index"].as_u64().unwrap() as usize,
        );
        let got = t2[[t, i, j]];
        match probe["value"].as_f64() {
            Some(v) => assert_eq!(got, v as f32, "probe {probe}"),
            None => assert!(got.is_nan(), "probe {probe}"),
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} 2t probes");

    // the chunk limit was learnt from the verified metadata: [1, 36, 72] float32
    let limits = SizeLimits::default();
    assert_eq!(
        verified.max_bytes_for("2t/0.0.0"),
        limits.chunk_limit(36 * 72, 4)
    );
    assert_eq!(
        verified.max_bytes_for("t/0.0.0.0"),
        limits.chunk_limit(13 * 36 * 72, 4)
    );
    assert_eq!(verified.max_bytes_for(".zmetadata"), MIB);
    assert!(verified.first_failure().is_none());
    // metadata is cached: .zarray of 2t was fetched once although 2t was opened twice
    assert_eq!(server.stats(&key(STORE, "2t/.zarray")).requests, 1);
    // zarr.json probes are answered from the manifest, without a request
    assert_eq!(server.stats(&key(STORE, "2t/zarr.json")).requests, 0);
    assert_eq!(server.stats(&key(STORE, "zarr.json")).requests, 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_v3_store_reads_like_the_local_copy() {
    let server = server(Faults::new()).await;
    let store_name = "miner_v3";
    let info = manifest_info(store_name);
    let verified = Arc::new(
        open_verified(open(&server, store_name, &fast_config()), &claim(&info))
            .await
            .unwrap(),
    );
    let remote = read_f32(Arc::clone(&verified), "t").await.unwrap();
    let local = read_local_f32(store_name, "t");
    assert_eq!(remote.shape(), local.shape());
    assert!(
        remote
            .iter()
            .zip(local.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    // v3 zarr.json (with consolidated metadata) taught the chunk limit of t
    assert_eq!(
        verified.max_bytes_for("t/c/0/0/0/0"),
        SizeLimits::default().chunk_limit(13 * 36 * 72, 4)
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_chunk_is_an_integrity_error_naming_the_key() {
    let server = server(Faults::new().with(&key(STORE, "2t/1.0.0"), Fault::Tamper)).await;
    let info = manifest_info(STORE);
    let verified = Arc::new(
        open_verified(open(&server, STORE, &fast_config()), &claim(&info))
            .await
            .unwrap(),
    );
    let err = read_f32(Arc::clone(&verified), "2t").await.unwrap_err();
    assert_no_token(err.as_ref());
    let found = verified.first_failure().expect("the failure is recorded");
    match &found {
        IntegrityError::HashMismatch { key, expected, .. } => {
            assert_eq!(key, "2t/1.0.0");
            assert_eq!(
                Some(expected.as_str()),
                verified.manifest().expected_hash("2t/1.0.0")
            );
        }
        other => panic!("expected HashMismatch, got {other}"),
    }
    assert_eq!(found.kind(), wx_model::ErrorKind::Integrity);
    assert!(err.to_string().contains("2t/1.0.0"), "{err}");
    // an untampered variable still reads
    assert!(read_f32(Arc::clone(&verified), "msl").await.is_ok());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_missing_from_the_manifest_is_refused_without_fetching_it() {
    // the store has 2t/3.0.0, the signed manifest does not list it
    let variant = "miner_v2_blosc_zstd.unlisted";
    let info = variant_info(variant);
    let faults = Faults::new()
        .with(
            &key(STORE, "manifest.json"),
            Fault::Replace(variant_file(variant, "manifest.json")),
        )
        .with(
            &key(STORE, "manifest.sig"),
            Fault::Replace(variant_file(variant, "manifest.sig")),
        );
    let server = server(faults).await;
    let verified = Arc::new(
        open_verified(open(&server, STORE, &fast_config()), &claim(&info))
            .await
            .unwrap(),
    );
    let err = read_f32(Arc::clone(&verified), "2t").await.unwrap_err();
    assert_no_token(err.as_ref());
    match verified.first_failure() {
        Some(IntegrityError::NotInManifest { key, .. }) => assert_eq!(key, "2t/3.0.0"),
        other => panic!("expected NotInManifest, got {other:?}"),
    }
    assert!(err.to_string().contains("2t/3.0.0"));
    assert_eq!(server.stats(&key(STORE, "2t/3.0.0")).requests, 0);
    // a non-metadata key that is not listed, asked directly
    let direct = verified.get_verified("manifest.sig").await.unwrap_err();
    assert!(matches!(direct, IntegrityError::NotInManifest { .. }));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_manifest_hash_is_refused() {
    let server = server(Faults::new()).await;
    let info = manifest_info(STORE);
    let other = manifest_info("miner_v2_zstd");
    let claim = wx_data::manifest::ManifestClaim {
        claimed_sha256: &other.manifest_sha256,
        ..claim(&info)
    };
    let err = open_verified(open(&server, STORE, &fast_config()), &claim)
        .await
        .unwrap_err();
    assert_no_token(&err);
    match &err {
        IntegrityError::Manifest {
            source: ManifestError::WrongManifestHash { claimed, computed },
            ..
        } => {
            assert_eq!(claimed, &other.manifest_sha256);
            assert_eq!(computed, &info.manifest_sha256);
        }
        other => panic!("expected WrongManifestHash, got {other}"),
    }
    assert_eq!(err.kind(), wx_model::ErrorKind::Integrity);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signature_and_missing_signature_are_refused() {
    let server = server(Faults::new().with(&key(STORE, "manifest.sig"), Fault::Tamper)).await;
    let info = manifest_info(STORE);
    let err = open_verified(open(&server, STORE, &fast_config()), &claim(&info))
        .await
        .unwrap_err();
    assert_no_token(&err);
    assert!(
        matches!(
            err,
            IntegrityError::Manifest {
                source: ManifestError::BadSignature { .. },
                ..
            }
        ),
        "{err}"
    );

    // a signature by another key over the right bytes: a different variant's signature
    server.set_fault(
        &key(STORE, "manifest.sig"),
        Fault::Replace(variant_file("miner_v2_blosc_zstd.unlisted", "manifest.sig")),
    );
    let err = open_verified(open(&server, STORE, &fast_config()), &claim(&info))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IntegrityError::Manifest {
                source: ManifestError::BadSignature { .. },
                ..
            }
        ),
        "{err}"
    );

    // no manifest.sig: refused when required, accepted (and recorded) when optional
    server.set_fault(&key(STORE, "manifest.sig"), Fault::Status(404));
    let err = open_verified(open(&server, STORE, &fast_config()), &claim(&info))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        IntegrityError::Manifest {
            source: ManifestError::MissingSignature,
            ..
        }
    ));
    let optional = wx_data::manifest::ManifestClaim {
        signature_policy: SignaturePolicy::IfPresent,
        ..claim(&info)
    };
    let verified = open_verified(open(&server, STORE, &fast_config()), &optional)
        .await
        .unwrap();
    assert_eq!(
        verified.manifest().signature_status(),
        SignatureStatus::Absent
    );

    // the manifest of another miner: signer mismatch
    server.clear_faults();
    let alice = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    let other_miner = wx_data::manifest::ManifestClaim {
        miner_hotkey_ss58: alice,
        ..claim(&info)
    };
    let err = open_verified(open(&server, STORE, &fast_config()), &other_miner)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IntegrityError::Manifest {
                source: ManifestError::SignerMismatch { .. },
                ..
            }
        ),
        "{err}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_is_unauthorized_and_not_retried() {
    let server = server(Faults::new()).await;
    let info = manifest_info(STORE);
    for token in [Some("tok-wrong-SECRET"), None] {
        let store = connect_miner_store(
            &server.url_for(STORE),
            token.map(|t| BearerToken::new(t).unwrap()),
            &fast_config(),
        )
        .unwrap();
        let err = open_verified(store, &claim(&info)).await.unwrap_err();
        assert_no_token(&err);
        assert!(
            !err.to_string().contains("tok-wrong"),
            "wrong token echoed: {err}"
        );
        match &err {
            IntegrityError::Transport(TransportError::Unauthorized { status, key, .. }) => {
                assert_eq!(*status, 401);
                assert_eq!(key, "manifest.json");
            }
            other => panic!("expected Unauthorized, got {other}"),
        }
        assert_eq!(err.kind(), wx_model::ErrorKind::Unauthorized);
    }
    let stats = server.stats(&key(STORE, "manifest.json"));
    assert_eq!(stats.requests, 2, "401 must not be retried");
    assert_eq!(stats.unauthorized, 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_to_the_metadata_address_is_not_followed() {
    let server = server(Faults::new().with(
        &key(STORE, "manifest.json"),
        Fault::RedirectTo("http://169.254.169.254/latest/meta-data/".to_owned()),
    ))
    .await;
    let info = manifest_info(STORE);
    let err = open_verified(open(&server, STORE, &fast_config()), &claim(&info))
        .await
        .unwrap_err();
    assert_no_token(&err);
    match &err {
        IntegrityError::Transport(TransportError::Redirect { status, key, .. }) => {
            assert_eq!(*status, 302);
            assert_eq!(key, "manifest.json");
        }
        other => panic!("expected Redirect, got {other}"),
    }
    assert!(!err.to_string().contains("169.254"), "{err}");
    assert_eq!(server.stats(&key(STORE, "manifest.json")).requests, 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_with_the_wrong_decoded_size_passes_integrity_and_fails_decoding() {
    let variant = "miner_v2_blosc_zstd.badsize";
    let info = variant_info(variant);
    let corrupt: bytes::Bytes =
        std::fs::read(testdata().join("corrupt/miner_v2_blosc_zstd.2t.0.0.0.short"))
            .unwrap()
            .into();
    let faults = Faults::new()
        .with(
            &key(STORE, "manifest.json"),
            Fault::Replace(variant_file(variant, "manifest.json")),
        )
        .with(
            &key(STORE, "manifest.sig"),
            Fault::Replace(variant_file(variant, "manifest.sig")),
        )
        .with(&key(STORE, "2t/0.0.0"), Fault::Replace(corrupt.clone()));
    let server = server(faults).await;
    let verified = Arc::new(
        open_verified(open(&server, STORE, &fast_config()), &claim(&info))
            .await
            .unwrap(),
    );
    // the bytes verify
    assert_eq!(
        verified.get_verified("2t/0.0.0").await.unwrap().unwrap(),
        corrupt
    );
    let err = read_f32(Arc::clone(&verified), "2t").await.unwrap_err();
    assert_no_token(err.as_ref());
    assert!(verified.first_failure().is_none());
    let text = err.to_string();
    assert!(
        text.contains("size") || text.contains("length") || text.contains("bytes"),
        "decoder error should be about the size: {text}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_megabyte_zmetadata_is_aborted_at_the_metadata_limit() {
    let size = 50 * 1024 * 1024;
    let server =
        server(Faults::new().with(&key(STORE, ".zmetadata"), Fault::Oversize { bytes: size }))
            .await;
    let info = manifest_info(STORE);
    let verified = open_verified(open(&server, STORE, &fast_config()), &claim(&info))
        .await
        .unwrap();
    let before = verified.transport().bytes_fetched();
    let err = verified.get_verified(".zmetadata").await.unwrap_err();
    assert_no_token(&err);
    match &err {
        IntegrityError::Transport(TransportError::TooLarge {
            key,
            limit,
            declared,
            ..
        }) => {
            assert_eq!(key, ".zmetadata");
            assert_eq!(*limit, MIB);
            assert_eq!(*declared, Some(size));
        }
        other => panic!("expected TooLarge, got {other}"),
    }
    assert_eq!(err.kind(), wx_model::ErrorKind::TooLarge);
    let read = verified.transport().bytes_fetched() - before;
    assert!(read <= 2 * MIB, "client read {read} bytes");
    // the server saw the connection dropped long before 50 MB
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = server.stats(&key(STORE, ".zmetadata"));
        if stats.bodies_abandoned >= 1 {
            assert!(
                stats.body_bytes_sent < 16 * MIB,
                "server pushed {} bytes",
                stats.body_bytes_sent
            );
            break;
        }
        assert!(Instant::now() < deadline, "server never saw the abort");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_chunk_is_refused_at_its_declared_size() {
    let server = server(Faults::new().with(
        &key(STORE, "2t/2.0.0"),
        Fault::Oversize {
            bytes: 5 * 1024 * 1024,
        },
    ))
    .await;
    let info = manifest_info(STORE);
    let verified = Arc::new(
        open_verified(open(&server, STORE, &fast_config()), &claim(&info))
            .await
            .unwrap(),
    );
    let err = read_f32(Arc::clone(&verified), "2t").await.unwrap_err();
    assert!(err.to_string().contains("2t/2.0.0"), "{err}");
    match verified.first_failure() {
        Some(IntegrityError::Transport(TransportError::TooLarge { key, limit, .. })) => {
            assert_eq!(key, "2t/2.0.0");
            assert_eq!(limit, SizeLimits::default().chunk_limit(36 * 72, 4));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    server.shutdown().await;
}

async fn expect_timeout(fault: Fault) {
    let server = server(Faults::new().with(&key(STORE, "manifest.json"), fault)).await;
    let info = manifest_info(STORE);
    let config = fast_config();
    let started = Instant::now();
    let err = open_verified(open(&server, STORE, &config), &claim(&info))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_no_token(&err);
    assert!(
        matches!(
            err,
            IntegrityError::Transport(TransportError::Timeout { .. })
        ),
        "{err}"
    );
    assert_eq!(err.kind(), wx_model::ErrorKind::Timeout);
    // read timeout 0.5 s, one retry, backoff 50 ms; the whole-fetch deadline is 4 s
    assert!(
        elapsed <= config.fetch_deadline + Duration::from_millis(500),
        "took {elapsed:?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stalling_before_headers_times_out() {
    expect_timeout(Fault::StallBeforeHeaders).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stalling_after_headers_times_out() {
    expect_timeout(Fault::StallAfterHeaders).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_slow_a_server_times_out_and_a_slow_one_does_not() {
    expect_timeout(Fault::Slow {
        bytes_per_second: 1000,
    })
    .await;
    let server = server(Faults::new().with(
        &key(STORE, "manifest.json"),
        Fault::Slow {
            bytes_per_second: 200_000,
        },
    ))
    .await;
    let info = manifest_info(STORE);
    assert!(
        open_verified(open(&server, STORE, &fast_config()), &claim(&info))
            .await
            .is_ok()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_body_is_reported_as_truncated() {
    let server =
        server(Faults::new().with(&key(STORE, "manifest.json"), Fault::Truncate { send: 100 }))
            .await;
    let info = manifest_info(STORE);
    let err = open_verified(open(&server, STORE, &fast_config()), &claim(&info))
        .await
        .unwrap_err();
    assert_no_token(&err);
    match &err {
        IntegrityError::Transport(TransportError::Truncated {
            key,
            received,
            declared,
            ..
        }) => {
            assert_eq!(key, "manifest.json");
            assert!(*received <= 100, "received {received}");
            assert_eq!(
                *declared,
                std::fs::metadata(testdata().join(format!("stores/{STORE}/manifest.json")))
                    .unwrap()
                    .len()
            );
        }
        other => panic!("expected Truncated, got {other}"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_a_bounded_number_of_times_client_errors_never() {
    let k = key(STORE, "manifest.json");
    let server = server(Faults::new().with(
        &k,
        Fault::FailThenOk {
            status: 500,
            times: 1,
        },
    ))
    .await;
    let info = manifest_info(STORE);
    // one 500 then OK: recovered by the single retry
    assert!(
        open_verified(open(&server, STORE, &fast_config()), &claim(&info))
            .await
            .is_ok()
    );
    assert_eq!(server.stats(&k).requests, 2);

    // always 503: 1 + max_retries requests, then a Status error
    server.set_fault(&k, Fault::Status(503));
    let before = server.stats(&k).requests;
    let err = open_verified(open(&server, STORE, &fast_config()), &claim(&info))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IntegrityError::Transport(TransportError::Status { status: 503, .. })
        ),
        "{err}"
    );
    assert_eq!(server.stats(&k).requests - before, 2);

    // 404 and 400: no retry
    for status in [404, 400] {
        server.set_fault(&k, Fault::Status(status));
        let before = server.stats(&k).requests;
        let err = open_verified(open(&server, STORE, &fast_config()), &claim(&info))
            .await
            .unwrap_err();
        assert_eq!(server.stats(&k).requests - before, 1, "status {status}");
        if status == 404 {
            assert!(
                matches!(
                    err,
                    IntegrityError::Transport(TransportError::NotFound { .. })
                ),
                "{err}"
            );
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_chunk_that_is_not_served_is_an_integrity_failure_not_nan() {
    let server = server(Faults::new().with(&key(STORE, "2t/4.0.0"), Fault::Status(404))).await;
    let info = manifest_info(STORE);
    let verified = Arc::new(
        open_verified(open(&server, STORE, &fast_config()), &claim(&info))
            .await
            .unwrap(),
    );
    let err = read_f32(Arc::clone(&verified), "2t").await.unwrap_err();
    assert!(err.to_string().contains("2t/4.0.0"), "{err}");
    match verified.first_failure() {
        Some(IntegrityError::ListedKeyMissing { key, .. }) => assert_eq!(key, "2t/4.0.0"),
        other => panic!("expected ListedKeyMissing, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_refused_unless_allowed() {
    let server = server(Faults::new()).await;
    let port = server.addr().port();
    let strict = HttpStoreConfig {
        address_policy: wx_data::transport::AddressPolicy::public_only(),
        ..fast_config()
    };
    // a host name resolving to 127.0.0.1/::1: refused by the resolver, nothing sent
    let store = connect_miner_store(
        &format!("http://localhost:{port}/{STORE}/"),
        Some(BearerToken::new(TOKEN).unwrap()),
        &strict,
    )
    .unwrap();
    let err = store.get_limited("manifest.json", MIB).await.unwrap_err();
    assert_no_token(&err);
    match &err {
        TransportError::Forbidden { refused, key, .. } => {
            assert_eq!(refused.reason, ForbiddenReason::Loopback);
            assert_eq!(refused.host, "localhost");
            assert_eq!(key, "manifest.json");
        }
        other => panic!("expected Forbidden, got {other}"),
    }
    assert_eq!(err.kind(), wx_model::ErrorKind::Forbidden);
    // an IP literal: refused when the handle is built
    let err = connect_miner_store(
        &format!("http://127.0.0.1:{port}/{STORE}/"),
        Some(BearerToken::new(TOKEN).unwrap()),
        &strict,
    )
    .unwrap_err();
    assert!(matches!(err, TransportError::Forbidden { .. }), "{err}");
    assert_eq!(server.total_requests(), 0);
    // allowed with the loopback allow-list
    let allowed = connect_miner_store(
        &format!("http://localhost:{port}/{STORE}/"),
        Some(BearerToken::new(TOKEN).unwrap()),
        &fast_config(),
    )
    .unwrap();
    assert!(allowed.get_limited("manifest.json", MIB).await.is_ok());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miner_stores_are_never_listed_or_written() {
    let server = server(Faults::new()).await;
    let store = open(&server, STORE, &fast_config());
    let listed: Vec<_> = store.object_store().list(None).collect().await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].is_err());
    let object_store = store.object_store();
    let put = object_store
        .put_opts(
            &object_store::path::Path::from("x"),
            object_store::PutPayload::from_static(b"x"),
            Default::default(),
        )
        .await;
    assert!(put.is_err());
    assert_eq!(server.total_requests(), 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_byte_budget_stops_a_store_that_is_too_large() {
    let server = server(Faults::new()).await;
    let info = manifest_info(STORE);
    let config = HttpStoreConfig {
        limits: SizeLimits {
            store_budget_bytes: 60_000,
            ..SizeLimits::default()
        },
        ..fast_config()
    };
    let verified = Arc::new(
        open_verified(open(&server, STORE, &config), &claim(&info))
            .await
            .unwrap(),
    );
    let mut error = None;
    for array in ["2t", "10u", "10v", "msl", "t"] {
        if let Err(e) = read_f32(Arc::clone(&verified), array).await {
            error = Some(e);
            break;
        }
    }
    let err = error.expect("the budget must run out");
    assert!(err.to_string().contains("budget"), "{err}");
    match verified.first_failure() {
        Some(IntegrityError::Transport(TransportError::BudgetExceeded { budget, .. })) => {
            assert_eq!(budget, 60_000)
        }
        other => panic!("expected BudgetExceeded, got {other:?}"),
    }
    assert!(verified.transport().bytes_fetched() <= 60_000);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_manifest_from_the_database_reads_the_same_store() {
    let server = server(Faults::new()).await;
    let info = manifest_info(STORE);
    let verified = open_verified(open(&server, STORE, &fast_config()), &claim(&info))
        .await
        .unwrap();
    let json = verified.manifest().to_db_json();
    let frozen = wx_data::manifest::FrozenManifest::from_db_json(&json).unwrap();
    let again = Arc::new(VerifiedStore::new(
        open(&server, STORE, &fast_config()),
        frozen,
    ));
    let a = read_f32(again, "msl").await.unwrap();
    assert_eq!(a, read_local_f32(STORE, "msl"));
    server.shutdown().await;
}
