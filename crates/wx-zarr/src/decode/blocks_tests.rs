//! The planning of a partial Blosc fetch: the chunk assembled from the fetched blocks decodes
//! to exactly the elements of the runs, and anything a partial fetch cannot trust answers
//! "fetch whole".

use super::tests::{BLOSC_FLAVOURS, bits, blosc_with, gathered, many, run};
use super::*;

const PLAIN: ChunkEncoding = ChunkEncoding {
    compression: Compression::Blosc,
    checksum: false,
    big_endian: false,
};

/// What the fetch does over a store, on an encoded chunk held in memory: header, table,
/// segments, then the compact chunk; `None` where it would fetch whole.
fn fetch_partial(encoded: &[u8], chunk_len: usize, runs: &[Run]) -> Option<Vec<u8>> {
    let header = &encoded[..BLOSC_HEADER_BYTES];
    let layout =
        BloscLayout::from_header(header, 4, chunk_len, encoded.len() as u64, runs).unwrap()?;
    let range = layout.table_range();
    let table = &encoded[range.start as usize..range.end as usize];
    let segments = blosc_segments(&layout, table, 4, runs)?;
    let parts: Vec<&[u8]> = segments
        .iter()
        .map(|s| &encoded[s.start as usize..s.end as usize])
        .collect();
    Some(blosc_compact(header, &layout, table, &segments, &parts).unwrap())
}

#[test]
fn the_fetched_blocks_decode_to_exactly_the_runs() {
    let values = many();
    let raw: &[u8] = bytemuck::cast_slice(&values);
    // inside one block, across block edges, the last (short) block, two runs sharing a
    // block, unordered
    let runs = [
        run(10, 5),
        run(20_000, 1000),
        run(21_000, 50),
        run(99_990, 10),
        run(50_000, 1),
    ];
    for (cname, shuffle) in BLOSC_FLAVOURS {
        let encoded = blosc_with(raw, 4, cname, shuffle, 4096);
        let compact = fetch_partial(&encoded, values.len(), &runs).expect("partial");
        assert!(
            compact.len() < encoded.len() * 3 / 4,
            "{cname:?}: {} of {} bytes fetched",
            compact.len(),
            encoded.len()
        );
        let got = decode_runs::<f32>(&PLAIN, &compact, values.len(), &runs)
            .unwrap()
            .expect("decoded in part");
        assert_eq!(bits(&got), gathered(&values, &runs), "{cname:?}");
    }
}

#[test]
fn segments_are_the_stretches_of_consecutive_blocks_the_runs_touch() {
    let values = many();
    let raw: &[u8] = bytemuck::cast_slice(&values);
    let encoded = blosc_with(raw, 4, c"lz4", blosc_src::BLOSC_SHUFFLE, 4096);
    let header = &encoded[..BLOSC_HEADER_BYTES];
    // blocks of 4096 bytes are 1024 elements; c-blosc may enlarge them, so read its choice
    let blocksize = u32::from_le_bytes(header[8..12].try_into().unwrap()) as usize;
    let per_block = blocksize / 4;
    let runs = [
        run(0, 1),                         // block 0
        run(per_block, 2 * per_block),     // blocks 1 and 2
        run(4 * per_block + 3, per_block), // blocks 4 and 5
    ];
    let layout = BloscLayout::from_header(header, 4, values.len(), encoded.len() as u64, &runs)
        .unwrap()
        .unwrap();
    assert_eq!(layout.nblocks, raw.len().div_ceil(blocksize));
    let range = layout.table_range();
    let table = &encoded[range.start as usize..range.end as usize];
    let segments = blosc_segments(&layout, table, 4, &runs).unwrap();
    let firsts: Vec<(usize, usize)> = segments.iter().map(|s| (s.first, s.last)).collect();
    assert!(layout.nblocks > 6, "{} blocks", layout.nblocks);
    assert_eq!(firsts, [(0, 2), (4, 5)]);
    let start_of = |b: usize| {
        u64::from(u32::from_le_bytes(
            table[4 * b..4 * b + 4].try_into().unwrap(),
        ))
    };
    assert_eq!(
        (segments[0].start, segments[0].end),
        (start_of(0), start_of(3))
    );
    assert_eq!(
        (segments[1].start, segments[1].end),
        (start_of(4), start_of(6))
    );
    // the last block ends where the chunk ends
    let last = blosc_segments(&layout, table, 4, &[run(values.len() - 1, 1)]).unwrap();
    assert_eq!(last[0].end, encoded.len() as u64);
}

#[test]
fn a_chunk_a_partial_fetch_cannot_trust_is_fetched_whole() {
    let values = many();
    let raw: &[u8] = bytemuck::cast_slice(&values);
    let encoded = blosc_with(raw, 4, c"lz4", blosc_src::BLOSC_SHUFFLE, 4096);
    let len = encoded.len() as u64;
    let header = &encoded[..BLOSC_HEADER_BYTES];
    let few = [run(10, 5)];
    let layout = |header: &[u8], stored: u64, runs: &[Run]| {
        BloscLayout::from_header(header, 4, values.len(), stored, runs).unwrap()
    };
    assert!(layout(header, len, &few).is_some());
    // the header contradicts the stored size (truncated or padded object)
    assert!(layout(header, len + 1, &few).is_none());
    // another element size, another decoded size, another format version, a memcpy'd chunk
    assert!(
        BloscLayout::from_header(header, 8, values.len() / 2, len, &few)
            .unwrap()
            .is_none()
    );
    assert!(
        BloscLayout::from_header(header, 4, values.len() - 1, len, &few)
            .unwrap()
            .is_none()
    );
    let mut other = header.to_vec();
    other[0] = 3;
    assert!(layout(&other, len, &few).is_none());
    let mut memcpyed = header.to_vec();
    memcpyed[2] |= 0x2;
    assert!(layout(&memcpyed, len, &few).is_none());
    // runs touching every block save nothing
    let every: Vec<Run> = (0..values.len()).step_by(1024).map(|e| run(e, 1)).collect();
    assert!(layout(header, len, &every).is_none());
    // a run outside the chunk is a bug, reported
    assert!(
        BloscLayout::from_header(header, 4, values.len(), len, &[run(values.len(), 1)]).is_err()
    );
    // a block table that is not strictly increasing, or points outside the chunk
    let good = layout(header, len, &few).unwrap();
    let range = good.table_range();
    let table = encoded[range.start as usize..range.end as usize].to_vec();
    let mut swapped = table.clone();
    swapped.swap(0, 4);
    swapped.swap(1, 5);
    swapped.swap(2, 6);
    swapped.swap(3, 7);
    assert!(blosc_segments(&good, &swapped, 4, &few).is_none());
    let mut outside = table.clone();
    let n = outside.len();
    outside[n - 4..].copy_from_slice(&(len as u32).to_le_bytes());
    assert!(blosc_segments(&good, &outside, 4, &few).is_none());
    // parts of the wrong length are an error, not a misplaced block
    let segments = blosc_segments(&good, &table, 4, &few).unwrap();
    let short = &encoded[segments[0].start as usize..segments[0].end as usize - 1];
    let err = blosc_compact(header, &good, &table, &segments, &[short]).unwrap_err();
    assert!(err.to_string().contains("bytes"), "{err}");
}
