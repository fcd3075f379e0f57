//! The bearer token never appears in logs (every level, including the HTTP stack's own `log`
//! records) nor in any error's `Display`/`Debug`, across successful reads and every failure.
//! A separate test binary so that the global log capture sees only this test.

mod http_common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use http_common::*;
use wx_data::transport::{AddressPolicy, BearerToken, HttpStoreConfig, connect_miner_store};
use wx_data::verified::open_verified;
use wx_testkit::{Fault, Faults};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_absent_from_logs_and_errors() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the only subscriber in this test binary");

    let info = manifest_info(STORE);
    let server = server(Faults::new()).await;
    let mut errors: Vec<String> = Vec::new();
    let mut record = |e: &dyn std::error::Error| {
        errors.push(format!("{e} | {e:?}"));
    };

    // a good read
    let verified = Arc::new(
        open_verified(open(&server, STORE, &fast_config()), &claim(&info))
            .await
            .unwrap(),
    );
    read_f32(Arc::clone(&verified), "2t").await.unwrap();
    let debug_of_everything = format!("{:?} {:?}", verified, verified.transport());
    assert!(!debug_of_everything.contains(TOKEN));

    // every failure mode
    let k = |key: &str| format!("{STORE}/{key}");
    let faults = [
        (
            k("manifest.json"),
            Fault::RedirectTo("http://169.254.169.254/".into()),
        ),
        (k("manifest.json"), Fault::Status(500)),
        (k("manifest.json"), Fault::Status(403)),
        (k("manifest.json"), Fault::StallBeforeHeaders),
        (k("manifest.json"), Fault::Truncate { send: 10 }),
        (k("manifest.sig"), Fault::Tamper),
        (k(".zmetadata"), Fault::Oversize { bytes: 3 << 20 }),
        (k("2t/0.0.0"), Fault::Tamper),
    ];
    for (path, fault) in faults {
        server.clear_faults();
        server.set_fault(&path, fault.clone());
        match open_verified(open(&server, STORE, &fast_config()), &claim(&info)).await {
            Err(e) => record(&e),
            Ok(store) => {
                let store = Arc::new(store);
                let e1 = store.get_verified(".zmetadata").await.err();
                let e2 = read_f32(Arc::clone(&store), "2t").await.err();
                assert!(e1.is_some() || e2.is_some(), "{fault:?} caused no error");
                if let Some(e) = e1 {
                    record(&e);
                }
                if let Some(e) = e2 {
                    record(e.as_ref());
                }
            }
        }
    }
    server.clear_faults();
    // wrong token, loopback refused
    let wrong = connect_miner_store(
        &server.url_for(STORE),
        Some(BearerToken::new("other-token-value").unwrap()),
        &fast_config(),
    )
    .unwrap();
    record(&open_verified(wrong, &claim(&info)).await.unwrap_err());
    let strict = HttpStoreConfig {
        address_policy: AddressPolicy::public_only(),
        ..fast_config()
    };
    let refused = connect_miner_store(
        &format!("http://localhost:{}/{STORE}/", server.addr().port()),
        Some(BearerToken::new(TOKEN).unwrap()),
        &strict,
    )
    .unwrap();
    record(&open_verified(refused, &claim(&info)).await.unwrap_err());
    server.shutdown().await;

    assert!(errors.len() >= 10, "{errors:#?}");
    for e in &errors {
        assert!(
            !e.contains(TOKEN) && !e.contains("SECRET"),
            "token in error: {e}"
        );
    }
    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    // the capture works: the HTTP stack and object_store's retry logged something
    assert!(
        logs.len() > 1000,
        "captured only {} bytes of logs",
        logs.len()
    );
    assert!(!logs.contains(TOKEN), "token in logs");
    assert!(!logs.contains("SECRET"), "token fragment in logs");
}
