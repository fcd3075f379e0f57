//! Unit tests of the chunk, shard and partial decoders.

use super::chunk::*;
use super::runs::*;
use super::shard::*;
use super::*;
use std::io::Write;

#[test]
fn raw_length_must_match() {
    assert!(precheck(Compression::None, &[0; 16], 16).is_ok());
    assert!(precheck(Compression::None, &[0; 15], 16).is_err());
}

#[test]
fn zstd_frames_are_checked_without_decoding() {
    let data = vec![7u8; 4000];
    let enc = zstd::bulk::compress(&data, 3).unwrap();
    assert!(precheck(Compression::Zstd, &enc, 4000).is_ok());
    let err = precheck(Compression::Zstd, &enc, 4004)
        .unwrap_err()
        .to_string();
    assert!(err.contains("4000") && err.contains("4004"), "{err}");
    let truncated = &enc[..enc.len() - 3];
    assert!(precheck(Compression::Zstd, truncated, 4000).is_err());
    let mut two = enc.clone();
    two.extend_from_slice(&enc);
    assert!(
        precheck(Compression::Zstd, &two, 8000)
            .unwrap_err()
            .to_string()
            .contains("frame")
    );
    assert!(precheck(Compression::Zstd, b"not zstd at all", 4000).is_err());
}

#[test]
fn gzip_bombs_stop_one_byte_past_the_declared_size() {
    let data = vec![0u8; 1 << 20];
    let enc = gzip(&data);
    assert!(enc.len() < 5000, "a 1 MiB bomb compresses to {}", enc.len());
    assert!(
        precheck(Compression::Gzip, &enc, 4096).is_ok(),
        "gzip has no header size"
    );
    let err = decode_chunk::<f32>(Compression::Gzip, &enc, 1024, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than the 4096 bytes"), "{err}");
    let whole = decode_chunk::<f32>(Compression::Gzip, &enc, 1 << 18, false).unwrap();
    assert!(whole.iter().all(|v| v.to_bits() == 0));
    let err = decode_chunk::<f32>(Compression::Gzip, &enc[..enc.len() / 2], 1 << 18, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("gzip"), "{err}");
}

/// Values with every kind of bit pattern the decoders must keep: NaN (the fill value),
/// infinities, signed zero, subnormals.
fn values() -> Vec<f32> {
    (0..10_000)
        .map(|i| match i % 7 {
            0 => f32::NAN,
            1 => -0.0,
            2 => f32::INFINITY,
            3 => f32::MIN_POSITIVE / 3.0,
            _ => (i as f32 * 0.37).sin() * 1e3,
        })
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// numcodecs' LZ4: the decoded size (u32, little-endian), then one block.
fn lz4(data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_le_bytes().to_vec();
    out.extend(lz4_flex::block::compress(data));
    out
}

#[test]
fn checksums_are_checked_and_stripped() {
    let values = values();
    let raw: &[u8] = bytemuck::cast_slice(&values);
    let mut encoded = zstd::bulk::compress(raw, 3).unwrap();
    encoded.extend(crc32c::crc32c(&encoded).to_le_bytes());
    let encoding = ChunkEncoding {
        compression: Compression::Zstd,
        checksum: true,
        big_endian: false,
    };
    let got = decode_encoded::<f32>(&encoding, &encoded, values.len()).unwrap();
    assert_eq!(bits(&got), bits(&values));
    let last = encoded.len() - 1;
    encoded[last] ^= 1;
    let err = decode_encoded::<f32>(&encoding, &encoded, values.len())
        .unwrap_err()
        .to_string();
    assert!(err.contains("crc32c"), "{err}");
    assert!(decode_encoded::<f32>(&encoding, &[1, 2], values.len()).is_err());
}

#[test]
fn shards_place_inner_chunks_and_fill_empty_ones() {
    // a 4 × 6 shard of 2 × 3 inner chunks: inner chunk k holds k*10 + 0..6; chunk 2 is empty
    let sharding = Sharding {
        inner_shape: vec![2, 3],
        inner: ChunkEncoding {
            compression: Compression::None,
            checksum: false,
            big_endian: false,
        },
        index_checksum: true,
        index_at_start: true,
    };
    let mut data = Vec::new();
    let mut index = Vec::new();
    for k in 0..4u64 {
        if k == 2 {
            index.extend([u64::MAX, u64::MAX]);
            continue;
        }
        let chunk: Vec<u8> = (0..6)
            .flat_map(|i| (k as i32 * 10 + i).to_le_bytes())
            .collect();
        index.extend([(4 * 16 + 4 + data.len()) as u64, chunk.len() as u64]);
        data.extend(chunk);
    }
    let mut shard: Vec<u8> = index.iter().flat_map(|v| v.to_le_bytes()).collect();
    shard.extend(crc32c::crc32c(&shard).to_le_bytes());
    shard.extend(&data);
    let got = decode_shard::<i32>(&sharding, &[4, 6], &shard, -1).unwrap();
    assert_eq!(
        got,
        vec![
            0, 1, 2, 10, 11, 12, //
            3, 4, 5, 13, 14, 15, //
            -1, -1, -1, 30, 31, 32, //
            -1, -1, -1, 33, 34, 35,
        ]
    );
    let err = decode_shard::<i32>(&sharding, &[4, 7], &shard, -1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not divide"), "{err}");
}

/// Blosc with zstd and bitshuffle, as numcodecs writes miner stores.
fn blosc(data: &[u8], typesize: usize) -> Vec<u8> {
    let mut out = vec![0u8; data.len() + blosc_src::BLOSC_MAX_OVERHEAD as usize];
    // SAFETY: `out` has room for `data.len()` + the maximum overhead, as blosc.h asks.
    let n = unsafe {
        blosc_src::blosc_compress_ctx(
            5,
            blosc_src::BLOSC_BITSHUFFLE as i32,
            typesize,
            data.len(),
            data.as_ptr().cast(),
            out.as_mut_ptr().cast(),
            out.len(),
            c"zstd".as_ptr(),
            0,
            1,
        )
    };
    assert!(n > 0, "blosc_compress_ctx: {n}");
    out.truncate(n as usize);
    out
}

pub(super) fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn every_compression_decodes_into_exactly_the_declared_elements() {
    let values = values();
    let raw: &[u8] = bytemuck::cast_slice(&values);
    let encodings = [
        (Compression::None, raw.to_vec()),
        (Compression::Blosc, blosc(raw, 4)),
        (Compression::Zstd, zstd::bulk::compress(raw, 3).unwrap()),
        (Compression::Gzip, gzip(raw)),
        (Compression::Zlib, zlib(raw)),
        (Compression::Lz4, lz4(raw)),
    ];
    for (compression, encoded) in &encodings {
        let name = compression.name();
        precheck(*compression, encoded, raw.len() as u64).unwrap();
        let got = decode_chunk::<f32>(*compression, encoded, values.len(), false).unwrap();
        assert_eq!(bits(&got), bits(&values), "{name}");
        for wrong in [values.len() - 1, values.len() + 1] {
            let err = decode_chunk::<f32>(*compression, encoded, wrong, false)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&(wrong * 4).to_string()),
                "{name} {wrong}: {err}"
            );
        }
    }
}

#[test]
fn big_endian_elements_are_byte_swapped() {
    let values: Vec<f64> = (0..1000).map(|i| f64::from(i) * -1.5e-3).collect();
    let big: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    for (compression, encoded) in [
        (Compression::None, big.clone()),
        (Compression::Blosc, blosc(&big, 8)),
        (Compression::Zstd, zstd::bulk::compress(&big, 1).unwrap()),
        (Compression::Gzip, gzip(&big)),
        (Compression::Zlib, zlib(&big)),
        (Compression::Lz4, lz4(&big)),
    ] {
        let got = decode_chunk::<f64>(compression, &encoded, values.len(), true).unwrap();
        assert_eq!(got, values, "{}", compression.name());
    }
}

#[test]
fn damaged_payloads_are_errors_or_values_never_a_crash() {
    let values = values();
    let raw: &[u8] = bytemuck::cast_slice(&values);
    for (compression, encoded) in [
        (Compression::Blosc, blosc(raw, 4)),
        (Compression::Zstd, zstd::bulk::compress(raw, 3).unwrap()),
        (Compression::Gzip, gzip(raw)),
    ] {
        let mut failures = 0;
        // keep the headers, damage the payload at many places
        for at in (32..encoded.len()).step_by(97) {
            let mut damaged = encoded.clone();
            damaged[at] ^= 0x5a;
            if decode_chunk::<f32>(compression, &damaged, values.len(), false).is_err() {
                failures += 1;
            }
        }
        // gzip's CRC and zstd's/blosc's block structure catch most damage
        assert!(failures > 0, "{}: no damage detected", compression.name());
    }
}

/// Blosc with a given inner compressor, shuffle and block size (0: c-blosc's choice).
pub(super) fn blosc_with(
    data: &[u8],
    typesize: usize,
    cname: &std::ffi::CStr,
    shuffle: u32,
    blocksize: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; data.len() + blosc_src::BLOSC_MAX_OVERHEAD as usize];
    // SAFETY: `out` has room for `data.len()` + the maximum overhead, as blosc.h asks.
    let n = unsafe {
        blosc_src::blosc_compress_ctx(
            5,
            shuffle as i32,
            typesize,
            data.len(),
            data.as_ptr().cast(),
            out.as_mut_ptr().cast(),
            out.len(),
            cname.as_ptr(),
            blocksize,
            1,
        )
    };
    assert!(n > 0, "blosc_compress_ctx: {n}");
    out.truncate(n as usize);
    out
}

/// Inner compressors and shuffles of the Blosc tests: byte, bit and no shuffle.
pub(super) const BLOSC_FLAVOURS: [(&std::ffi::CStr, u32); 3] = [
    (c"lz4", blosc_src::BLOSC_SHUFFLE),
    (c"zstd", blosc_src::BLOSC_BITSHUFFLE),
    (c"blosclz", blosc_src::BLOSC_NOSHUFFLE),
];

/// 100,000 values (400 kB): several Blosc blocks even where c-blosc enlarges them (LZ4
/// and BloscLZ split blocks of at least 64 kB).
pub(super) fn many() -> Vec<f32> {
    (0..10).flat_map(|_| values()).collect()
}

pub(super) fn gathered(values: &[f32], runs: &[Run]) -> Vec<u32> {
    runs.iter()
        .flat_map(|r| bits(&values[r.chunk..r.chunk + r.len]))
        .collect()
}

pub(super) fn run(chunk: usize, len: usize) -> Run {
    Run { chunk, out: 0, len }
}

#[test]
fn blosc_runs_decode_exactly_the_elements_of_their_blocks() {
    let values = many();
    let raw: &[u8] = bytemuck::cast_slice(&values);
    let plain = ChunkEncoding {
        compression: Compression::Blosc,
        checksum: false,
        big_endian: false,
    };
    // runs inside one block, across block edges, the last (short) block, unordered
    let runs = [
        run(10, 5),
        run(20_000, 1000),
        run(99_990, 10),
        run(50_000, 1),
    ];
    for (cname, shuffle) in BLOSC_FLAVOURS {
        let encoded = blosc_with(raw, 4, cname, shuffle, 4096);
        let got = decode_runs::<f32>(&plain, &encoded, values.len(), &runs)
            .unwrap()
            .expect("a few blocks of many are decoded in part");
        assert_eq!(bits(&got), gathered(&values, &runs), "{cname:?}");
    }
    // incompressible data is stored as a plain copy (BLOSC_MEMCPYED)
    let noise: Vec<f32> = (0..100_000u32)
        .map(|i| f32::from_bits(i.wrapping_mul(2_654_435_761) >> 1))
        .collect();
    let encoded = blosc_with(bytemuck::cast_slice(&noise), 4, c"lz4", 0, 4096);
    let got = decode_runs::<f32>(&plain, &encoded, noise.len(), &runs)
        .unwrap()
        .unwrap();
    assert_eq!(bits(&got), gathered(&noise, &runs));
    // with a checksum, and big-endian elements
    let encoded = blosc_with(raw, 4, c"lz4", blosc_src::BLOSC_SHUFFLE, 4096);
    let mut checked = encoded.clone();
    checked.extend(crc32c::crc32c(&encoded).to_le_bytes());
    let with_checksum = ChunkEncoding {
        checksum: true,
        ..plain
    };
    let got = decode_runs::<f32>(&with_checksum, &checked, values.len(), &runs)
        .unwrap()
        .unwrap();
    assert_eq!(bits(&got), gathered(&values, &runs));
    let last = checked.len() - 1;
    checked[last] ^= 1;
    assert!(decode_runs::<f32>(&with_checksum, &checked, values.len(), &runs).is_err());
    let big: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let encoded = blosc_with(&big, 4, c"lz4", blosc_src::BLOSC_SHUFFLE, 4096);
    let big_endian = ChunkEncoding {
        big_endian: true,
        ..plain
    };
    let got = decode_runs::<f32>(&big_endian, &encoded, values.len(), &runs)
        .unwrap()
        .unwrap();
    assert_eq!(bits(&got), gathered(&values, &runs));
}

#[test]
fn blosc_runs_fall_back_to_the_whole_chunk_when_they_save_nothing() {
    let values = many();
    let raw: &[u8] = bytemuck::cast_slice(&values);
    let plain = ChunkEncoding {
        compression: Compression::Blosc,
        checksum: false,
        big_endian: false,
    };
    let small = blosc_with(raw, 4, c"lz4", blosc_src::BLOSC_SHUFFLE, 4096);
    // one run per block touches every block
    let every_block: Vec<Run> = (0..7).map(|b| run(b * 16_384, 1)).collect();
    assert!(
        decode_runs::<f32>(&plain, &small, values.len(), &every_block)
            .unwrap()
            .is_none()
    );
    // one block holding the whole chunk
    let one_block = blosc_with(raw, 4, c"lz4", blosc_src::BLOSC_SHUFFLE, raw.len());
    assert!(
        decode_runs::<f32>(&plain, &one_block, values.len(), &[run(0, 10)])
            .unwrap()
            .is_none()
    );
    // an element size other than the header's, another codec
    let bytes_typed = blosc_with(raw, 1, c"lz4", blosc_src::BLOSC_SHUFFLE, 4096);
    assert!(
        decode_runs::<f32>(&plain, &bytes_typed, values.len(), &[run(0, 10)])
            .unwrap()
            .is_none()
    );
    let zstd = ChunkEncoding {
        compression: Compression::Zstd,
        ..plain
    };
    let encoded = zstd::bulk::compress(raw, 3).unwrap();
    assert!(
        decode_runs::<f32>(&zstd, &encoded, values.len(), &[run(0, 10)])
            .unwrap()
            .is_none()
    );
}

#[test]
fn blosc_runs_refuse_bad_headers_runs_and_damaged_blocks() {
    let values = many();
    let raw: &[u8] = bytemuck::cast_slice(&values);
    let plain = ChunkEncoding {
        compression: Compression::Blosc,
        checksum: false,
        big_endian: false,
    };
    let encoded = blosc_with(raw, 4, c"lz4", blosc_src::BLOSC_SHUFFLE, 4096);
    let n = values.len();
    // the chunk shape disagrees with the header; truncated; a run past the chunk
    let err = decode_runs::<f32>(&plain, &encoded, n + 1, &[run(0, 10)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("400004"), "{err}");
    assert!(decode_runs::<f32>(&plain, &encoded[..encoded.len() - 1], n, &[run(0, 10)]).is_err());
    assert!(decode_runs::<f32>(&plain, &encoded[..8], n, &[run(0, 10)]).is_err());
    let err = decode_runs::<f32>(&plain, &encoded, n, &[run(n - 5, 10)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside"), "{err}");
    assert!(decode_runs::<f32>(&plain, &encoded, n, &[run(usize::MAX, 2)]).is_err());
    // block offsets pointing anywhere, damaged payloads: errors or values, never a crash
    let mut failures = 0;
    for at in (0..encoded.len()).step_by(7) {
        for flip in [0x5a_u8, 0xff] {
            let mut damaged = encoded.clone();
            damaged[at] ^= flip;
            match decode_runs::<f32>(&plain, &damaged, n, &[run(100, 3000), run(90_000, 1000)]) {
                Err(_) => failures += 1,
                Ok(Some(got)) => assert_eq!(got.len(), 4000),
                Ok(None) => {}
            }
        }
    }
    assert!(failures > 0, "no damage detected");
}

#[test]
fn blosc_headers_are_checked() {
    let mut header = vec![2u8, 1, 0, 4];
    header.extend_from_slice(&(1u32 << 30).to_le_bytes()); // claims 1 GiB
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&16u32.to_le_bytes());
    let err = precheck(Compression::Blosc, &header, 4096)
        .unwrap_err()
        .to_string();
    assert!(err.contains("1073741824"), "{err}");
    assert!(precheck(Compression::Blosc, &header[..10], 4096).is_err());
}

/// Chunks of 1 MiB or more decode into pooled buffers (crate::buffers): a buffer full of an
/// earlier field's values (here NaN) gives exactly the chunk's values, for every codec that
/// takes from the pool, and a damaged chunk is an error, not the old values.
#[test]
fn pooled_buffers_hold_only_the_new_chunk() {
    let values: Vec<f32> = (0..(1 << 19) + 333)
        .map(|i| (i % 977) as f32 * 0.5)
        .collect();
    let raw: &[u8] = bytemuck::cast_slice(&values);
    for (compression, encoded) in [
        (Compression::None, raw.to_vec()),
        (Compression::Blosc, blosc(raw, 4)),
        (Compression::Zstd, zstd::bulk::compress(raw, 3).unwrap()),
    ] {
        crate::buffers::recycle(vec![f32::NAN; values.len()]);
        let got = decode_chunk::<f32>(compression, &encoded, values.len(), false).unwrap();
        assert_eq!(bits(&got), bits(&values), "{}", compression.name());
        crate::buffers::recycle(got);
        let mut damaged = encoded.clone();
        damaged.truncate(encoded.len() / 2);
        assert!(decode_chunk::<f32>(compression, &damaged, values.len(), false).is_err());
    }
}
