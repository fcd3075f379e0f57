//! A generated world read back from its `world.json` (what `wx-validator simulate` does on a
//! restart): the same miners with the same tokens, hotkeys and stores; another spec in the same
//! directory is refused.

use wx_sim::{World, WorldSpec, standard_mix};

fn tiny(seed: u64) -> WorldSpec {
    WorldSpec {
        resolution_deg: 30.0,
        steps: 4,
        era5_leads: vec![24],
        seed,
        miners: standard_mix(4, seed),
        ..WorldSpec::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_world_reloads_with_its_miners_and_refuses_another_spec() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("world");
    let generated = World::generate(tiny(3), &root).await.unwrap();
    let description = root.join("world.json");
    let written = std::fs::metadata(&description).unwrap().modified().unwrap();

    let loaded = World::load_or_generate(tiny(3), &root).await.unwrap();
    assert_eq!(loaded.spec, generated.spec);
    assert_eq!(loaded.paths.era5, generated.paths.era5);
    assert_eq!(loaded.miners.len(), generated.miners.len());
    for (a, b) in loaded.miners.iter().zip(&generated.miners) {
        assert_eq!(
            (
                a.uid,
                &a.hotkey,
                &a.store_dir,
                &a.manifest_sha256,
                &a.behaviour
            ),
            (
                b.uid,
                &b.hotkey,
                &b.store_dir,
                &b.manifest_sha256,
                &b.behaviour
            )
        );
        assert!(
            !a.token.is_empty() && a.token == b.token,
            "the token is derived again"
        );
    }
    assert_eq!(loaded.summary.miner_bytes, generated.summary.miner_bytes);
    assert_eq!(
        std::fs::metadata(&description).unwrap().modified().unwrap(),
        written,
        "nothing was generated again"
    );

    let err = World::load_or_generate(tiny(4), &root)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds another world"), "{err}");
    let missing = World::load(dir.path().join("nothing"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("world.json"), "{missing}");
}
