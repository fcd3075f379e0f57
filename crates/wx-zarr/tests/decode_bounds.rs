//! Hostile chunks cost no memory beyond the declared chunk: the largest single allocation made
//! while reading a zlib bomb, an LZ4 chunk whose header claims 1 GiB, and a shard whose index
//! claims a terabyte-long inner chunk, measured by a counting global allocator. (One test in
//! its own binary, so no other test allocates meanwhile.)

mod common;

use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use wx_zarr::{ReadOptions, Selection, ZarrDataset};

/// The system allocator, remembering the largest single allocation since the last reset.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// Reads the whole `name` of the store at `path`; returns the error message and the largest
/// allocation made by the read (the store is opened before measuring).
async fn read_measured(path: &Path, name: &str) -> (String, usize) {
    let ds = ZarrDataset::open(local(path), ReadOptions::new("m"))
        .await
        .unwrap();
    let array = ds.array(name).await.unwrap().unwrap();
    let selection = vec![Selection::All; array.dims().len()];
    LARGEST.store(0, Ordering::Relaxed);
    let result = array.read_f32(&selection).await;
    let largest = LARGEST.load(Ordering::Relaxed);
    (result.unwrap_err().to_string(), largest)
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn hostile_chunks_allocate_no_more_than_the_declared_chunk() {
    const MIB: usize = 1 << 20;

    // the counter sees a good read allocate its output (2 × 10 368 bytes of float32)
    let ds = ZarrDataset::open(fixture("interop_v2_zlib"), ReadOptions::new("m"))
        .await
        .unwrap();
    let array = ds.array("2t").await.unwrap().unwrap();
    LARGEST.store(0, Ordering::Relaxed);
    array.read_f32(&vec![Selection::All; 3]).await.unwrap();
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest >= 2 * 10_368,
        "largest allocation of a good read {largest}"
    );

    // a zlib chunk of 10 KB inflating to 10 MiB; the chunk is 10 368 bytes
    let (_dir, path) = temp_copy("interop_v2_zlib");
    std::fs::write(path.join("2t/0.0.0"), zlib(&vec![0u8; 10 * MIB])).unwrap();
    let (err, largest) = read_measured(&path, "2t").await;
    assert!(err.contains("more than the 10368 bytes"), "{err}");
    assert!(
        largest < MIB / 4,
        "zlib bomb: largest allocation {largest} bytes"
    );

    // an LZ4 size header claiming 1 GiB
    let (_dir, path) = temp_copy("interop_v2_lz4");
    let mut chunk = std::fs::read(path.join("2t/0.0.0")).unwrap();
    chunk[..4].copy_from_slice(&(1u32 << 30).to_le_bytes());
    std::fs::write(path.join("2t/0.0.0"), chunk).unwrap();
    let (err, largest) = read_measured(&path, "2t").await;
    assert!(err.contains("1073741824"), "{err}");
    assert!(
        largest < MIB / 4,
        "lz4 header: largest allocation {largest} bytes"
    );

    // a shard index entry claiming a 1 TiB inner chunk (checksum fixed so the entry is read)
    let (_dir, path) = temp_copy("interop_v3");
    let file = path.join("2t/c/0/0/0");
    let mut shard = std::fs::read(&file).unwrap();
    let start = shard.len() - (8 * 16 + 4);
    shard[start + 8..start + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let end = shard.len();
    let crc = crc32c::crc32c(&shard[start..end - 4]);
    shard[end - 4..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&file, shard).unwrap();
    let (err, largest) = read_measured(&path, "2t").await;
    assert!(err.contains("outside the shard's data"), "{err}");
    assert!(
        largest < MIB / 4,
        "shard index: largest allocation {largest} bytes"
    );
}
