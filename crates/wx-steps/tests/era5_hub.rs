//! The DataHub's ERA5 path on the public-layout fixture (`era5_arco_published`): what the
//! pipeline asks before scoring a lead, a store growing under an open hub, final ERA5 only,
//! and the memory cache holding the 13 scored levels of a 37-level chunk.

use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use wx_data::sources::{ExtentBasis, PendingReason, Publication};
use wx_model::{VarLevel, Variable};
use wx_steps::{DataConfig, DataHub};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn stores() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/stores")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn hub(era5: &Path, dir: &Path, final_only: bool) -> DataHub {
    let config = DataConfig {
        era5: era5.display().to_string(),
        climatology: stores().join("clim_wb2").display().to_string(),
        gfs: dir.display().to_string(),
        era5_final_only: final_only,
        ..DataConfig::default()
    };
    // test mode: the extent is read again at every check
    DataHub::new(&config, &dir.join("cache"), true).unwrap()
}

const VARS: [Variable; 2] = [Variable::T2m, Variable::T];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_checks_publication_and_caches_13_levels() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("era5");
    copy_dir(&stores().join("era5_arco_published"), &store);
    let hub = hub(&store, dir.path(), false);
    let times = [t("2024-12-31T18:00:00Z"), t("2025-01-01T00:00:00Z")];
    let check = hub.era5_publication(&times, &VARS).await.unwrap();
    assert_eq!(check.extent.basis, ExtentBasis::StopEra5t);
    assert_eq!(
        check.extent.published_until,
        Some(t("2024-12-31T23:59:59Z"))
    );
    assert_eq!(check.times[0].1, Publication::Published);
    assert_eq!(
        check.times[1].1,
        Publication::Pending(PendingReason::AfterExtent)
    );

    // the truth read keeps 13 of 37 levels, in the memory cache too
    assert_eq!(hub.memory_cache_bytes(), 0);
    let field = hub
        .era5(VarLevel::all(Variable::T), times[0])
        .await
        .unwrap();
    assert_eq!(field.levels.len(), 13);
    let cached = hub.memory_cache_bytes();
    let data_13 = 13 * 19 * 36 * 4;
    assert!(
        cached >= data_13 && cached < 2 * data_13,
        "{cached} bytes cached: 13 levels ({data_13} bytes of data), not 37"
    );

    // the store grows under the open hub: the attributes first, then the chunks (2025-01-01T00Z
    // is axis index 72)
    for (file, pointer) in [(".zattrs", ""), (".zmetadata", "/metadata/.zattrs")] {
        let path = store.join(file);
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        json.pointer_mut(pointer).unwrap()["valid_time_stop_era5t"] = "2025-01-01".into();
        std::fs::write(&path, json.to_string()).unwrap();
    }
    let check = hub.era5_publication(&times[1..], &VARS).await.unwrap();
    assert_eq!(
        check.extent.published_until,
        Some(t("2025-01-01T23:59:59Z"))
    );
    assert!(matches!(
        check.times[0].1,
        Publication::Pending(PendingReason::ChunkAbsent { .. })
    ));
    for (var, suffix) in [("2m_temperature", ".0.0"), ("temperature", ".0.0.0")] {
        std::fs::copy(
            store.join(var).join(format!("24{suffix}")),
            store.join(var).join(format!("72{suffix}")),
        )
        .unwrap();
    }
    let check = hub.era5_publication(&times[1..], &VARS).await.unwrap();
    assert_eq!(check.times[0].1, Publication::Published);
    assert!(
        hub.era5(VarLevel::all(Variable::T2m), times[1])
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_only_waits_for_final_era5_and_caches_it_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = stores().join("era5_arco_published");
    let hub = hub(&store, dir.path(), true);
    let check = hub
        .era5_publication(
            &[t("2024-12-30T18:00:00Z"), t("2024-12-31T00:00:00Z")],
            &VARS,
        )
        .await
        .unwrap();
    assert_eq!(check.extent.basis, ExtentBasis::Stop);
    assert_eq!(check.times[0].1, Publication::Published);
    assert_eq!(
        check.times[1].1,
        Publication::Pending(PendingReason::AfterExtent)
    );
    hub.era5(VarLevel::all(Variable::T2m), t("2024-12-30T18:00:00Z"))
        .await
        .unwrap();
    assert!(
        dir.path().join("cache").join("era5-final").is_dir(),
        "final ERA5 is cached under its own source id"
    );
    assert!(!dir.path().join("cache").join("era5").exists());
}
