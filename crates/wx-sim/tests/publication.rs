//! A progressive world's ERA5 as wx's reader sees it: withheld days pending, published days
//! readable, the schedule following a clock, stalls holding it.

use chrono::{NaiveDate, TimeDelta};
use std::sync::Arc;
use std::time::Duration;
use wx_data::sources::{Era5Flavour, Era5Reader, PendingReason, Publication};
use wx_data::transport::{SizeLimits, local_dir};
use wx_model::{Clock, OffsetClock, Variable};
use wx_sim::{Era5Publication, Era5Schedule, World, WorldSpec};
use wx_zarr::ReadOptions;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

async fn answer(reader: &Era5Reader, world: &World, lead: u32) -> Publication {
    reader
        .publication(
            world.valid_time(lead),
            Variable::ALL,
            Era5Flavour::Preliminary,
        )
        .await
        .unwrap()
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_appear_as_the_clock_goes_and_not_while_stalled() {
    let dir = tempfile::tempdir().unwrap();
    let spec = WorldSpec {
        era5_publication: Era5Publication::Progressive {
            published_through: day("2025-01-01"),
            padding_days: 3,
        },
        ..WorldSpec::small(1)
    };
    let world = World::generate(spec, dir.path().join("world"))
        .await
        .unwrap();
    let storage = local_dir(&world.paths.era5, SizeLimits::default())
        .unwrap()
        .zarr_storage();
    let reader = Era5Reader::open(storage, ReadOptions::trusted("era5"))
        .await
        .unwrap();
    assert_eq!(
        reader.times().len(),
        (world.spec.steps as usize + 1) + 3 * 4,
        "the axis is padded"
    );
    let extent = reader.extent(Era5Flavour::Preliminary).await.unwrap();
    assert_eq!(
        extent.published_until.unwrap().date_naive(),
        day("2025-01-01")
    );
    assert_eq!(answer(&reader, &world, 18).await, Publication::Published);
    assert_eq!(
        answer(&reader, &world, 24).await,
        Publication::Pending(PendingReason::AfterExtent)
    );
    assert!(
        world
            .paths
            .era5_unpublished()
            .join("temperature/4.0.0.0")
            .is_file(),
        "withheld chunks wait beside the store"
    );
    assert!(!world.paths.era5.join("temperature/4.0.0.0").exists());

    // the schedule follows the injected clock: one day per 10 minutes of clock time
    let publisher = Arc::new(world.era5_publisher().unwrap());
    let clock = Arc::new(OffsetClock::new());
    let schedule = Era5Schedule {
        first_day: day("2025-01-02"),
        every: TimeDelta::minutes(10),
    };
    let handle = publisher.follow(
        clock.clone() as Arc<dyn Clock>,
        schedule,
        Duration::from_millis(20),
        false,
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(publisher.published_through(), day("2025-01-01"));
    clock.advance(TimeDelta::minutes(10));
    wait_for(|| publisher.published_through() == day("2025-01-02")).await;
    assert_eq!(answer(&reader, &world, 24).await, Publication::Published);
    assert_eq!(
        answer(&reader, &world, 48).await,
        Publication::Pending(PendingReason::AfterExtent)
    );
    // stalled: the clock runs, nothing is published
    handle.stall();
    tokio::time::sleep(Duration::from_millis(100)).await;
    clock.advance(TimeDelta::minutes(30));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(publisher.published_through(), day("2025-01-02"));
    // resumed: the schedule goes on where it stopped
    handle.resume();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(publisher.published_through(), day("2025-01-02"));
    clock.advance(TimeDelta::minutes(10));
    wait_for(|| publisher.published_through() == day("2025-01-03")).await;
    assert_eq!(answer(&reader, &world, 48).await, Publication::Published);
    handle.shutdown().await.unwrap();
    // nothing beyond the world's data is ever published: inside the last day's extent, the
    // hours after the world's last valid time have no chunk
    assert!(
        !publisher.publish_all().unwrap(),
        "the world ends on 2025-01-03"
    );
    let beyond = world.valid_time(48) + TimeDelta::hours(6);
    let (answer, _) = reader
        .publication(beyond, Variable::ALL, Era5Flavour::Preliminary)
        .await
        .unwrap();
    assert_eq!(
        answer,
        Publication::Pending(PendingReason::ChunkAbsent {
            key: "2m_temperature/9.0.0".into()
        })
    );
}

async fn wait_for(mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
