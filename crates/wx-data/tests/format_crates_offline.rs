//! wx-zarr and wx-grib are format crates: they do no network IO, so neither object_store nor the
//! HTTP client may be among their normal dependencies (docs/ARCHITECTURE.md, "Invariants"). Checked with
//! `cargo tree` on the workspace's lock file; wx-data, which does the transport, is the control
//! that the check sees those crates when they are there.

use std::process::Command;

/// The packages `package` links (normal dependencies, this platform), one name per line.
fn normal_dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["-p", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("cargo tree prints UTF-8")
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

const NETWORK: [&str; 2] = ["object_store", "reqwest"];

#[test]
fn format_crates_link_neither_object_store_nor_an_http_client() {
    for format in ["wx-zarr", "wx-grib"] {
        let deps = normal_dependencies(format);
        assert!(deps.iter().any(|d| d == "wx-model"), "{format}: {deps:?}");
        let network: Vec<&String> = deps
            .iter()
            .filter(|d| NETWORK.contains(&d.as_str()))
            .collect();
        assert!(network.is_empty(), "{format} depends on {network:?}");
    }

    // the control: the transport crate does link them, so the check sees them when they are there
    let transport = normal_dependencies("wx-data");
    for name in NETWORK {
        assert!(
            transport.iter().any(|d| d == name),
            "wx-data without {name}?"
        );
    }
}
