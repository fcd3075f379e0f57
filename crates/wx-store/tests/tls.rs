//! PostgreSQL over TLS, against a real server started here with `ssl = on`, a test CA and a
//! server certificate made here, and a `pg_hba.conf` that accepts TCP connections only over
//! TLS (so every successful connection below is encrypted).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use wx_store::testing::cluster::{ClusterSetup, PrivateCluster};
use wx_store::{Db, StoreError};

struct TlsServer {
    cluster: PrivateCluster,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
    /// A CA that signed nothing the server has.
    other_ca: PathBuf,
    _files: tempfile::TempDir,
}

fn make_ca(name: &str) -> (rcgen::Issuer<'static, rcgen::KeyPair>, String) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (rcgen::Issuer::new(params, key), cert.pem())
}

fn start_server() -> TlsServer {
    let (ca, ca_pem) = make_ca("wx test CA");
    let (_, other_pem) = make_ca("another CA");
    // the certificate names the host 127.0.0.1 and localhost, nothing else
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "wx test server");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let setup = ClusterSetup {
        conf: vec![
            "ssl = on".into(),
            "ssl_cert_file = 'server.crt'".into(),
            "ssl_key_file = 'server.key'".into(),
        ],
        hba: Some("local all all trust\nhostssl all all 127.0.0.1/32 trust\n".into()),
        files: vec![
            ("server.crt".into(), cert.pem(), false),
            ("server.key".into(), key.serialize_pem(), true),
        ],
    };
    let cluster = PrivateCluster::start(&setup).unwrap_or_else(|e| panic!("{e}"));
    let files = tempfile::tempdir().unwrap();
    let ca_path = files.path().join("ca.pem");
    let other_path = files.path().join("other-ca.pem");
    std::fs::write(&ca_path, ca_pem).unwrap();
    std::fs::write(&other_path, other_pem).unwrap();
    TlsServer {
        cluster,
        ca: ca_path,
        other_ca: other_path,
        _files: files,
    }
}

/// One server for the tests that run together; the last one to finish stops it.
fn server() -> Arc<TlsServer> {
    static SHARED: Mutex<Weak<TlsServer>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = shared.upgrade() {
        return server;
    }
    let server = Arc::new(start_server());
    *shared = Arc::downgrade(&server);
    server
}

impl TlsServer {
    fn url(&self, host: &str, params: &str) -> String {
        format!(
            "postgres://postgres@{host}:{}/postgres?{params}",
            self.cluster.port()
        )
    }
}

/// A query through the pool (not only the first connection).
async fn pooled_query_works(db: &Db) {
    db.runs().latest().await.expect("a query over the pool");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_encrypts_without_checking_the_certificate() {
    let s = server();
    let db = Db::open(&s.url("127.0.0.1", "sslmode=require"))
        .await
        .unwrap();
    pooled_query_works(&db).await;
    // libpq's default, prefer, takes TLS when the server offers it
    let db = Db::open(&s.url("127.0.0.1", "")).await.unwrap();
    pooled_query_works(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_server_refuses_plain_connections() {
    let s = server();
    let err = Db::open(&s.url("127.0.0.1", "sslmode=disable"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("no encryption"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_connects_with_the_right_ca_and_host() {
    let s = server();
    let ca = s.ca.display().to_string();
    let url = s.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let db = Db::open(&url).await.unwrap();
    pooled_query_works(&db).await;
    // the read-only open goes through the same TLS
    let db = Db::open_existing(&url).await.unwrap();
    pooled_query_works(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_another_ca_fails_with_a_clear_error() {
    let s = server();
    let other = s.other_ca.display().to_string();
    let err = Db::open(&s.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={other}"),
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Tls { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("not signed by a CA in") && msg.contains(&other),
        "{msg}"
    );
    // require with a CA checks the chain too (libpq: as verify-ca)
    let err = Db::open(&s.url("127.0.0.1", &format!("sslmode=require&sslrootcert={other}")))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Tls { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_wrong_host_name_fails_with_a_clear_error() {
    let s = server();
    let ca = s.ca.display().to_string();
    // connect to 127.0.0.1, but by a name the certificate does not list
    let params = format!("hostaddr=127.0.0.1&sslrootcert={ca}");
    let err = Db::open(&s.url("db.wrong.example", &format!("{params}&sslmode=verify-full")))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Tls { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("not valid for the host name `db.wrong.example`"),
        "{msg}"
    );
    // verify-ca checks the chain only: the same connection is accepted
    let db = Db::open(&s.url("db.wrong.example", &format!("{params}&sslmode=verify-ca")))
        .await
        .unwrap();
    pooled_query_works(&db).await;
}
