//! Fetching only the Blosc blocks a partial read decodes (docs/data.md §4.3).
//!
//! A Blosc 1 chunk is a 16-byte header, a table of block offsets (one little-endian `i32` per
//! block) and the compressed blocks, stored in order. [`decode_runs`] already decompresses only
//! the blocks a read's runs overlap; when the storage serves byte ranges, the rest need not be
//! fetched either (13 of an ARCO-ERA5 chunk's 37 levels: about a third of its bytes). The
//! fetch is planned in three small steps, each a pure function here, with the IO in
//! [`crate::ZarrArray`]:
//!
//! 1. [`BloscLayout::from_header`]: the header, read first, says how long the table is and
//!    whether a partial fetch saves enough (the same rule as [`decode_runs`]);
//! 2. [`blosc_segments`]: the table gives the byte range of every block; the blocks the runs
//!    overlap, grouped into stretches of consecutive blocks, are the ranges to fetch;
//! 3. [`blosc_compact`]: header, table and fetched blocks are assembled into a smaller, valid
//!    Blosc chunk holding only those blocks (the table rewritten to their new offsets, the
//!    compressed size to the new length), which [`decode_runs`] then decodes with every check
//!    it makes on a whole chunk.
//!
//! Anything unexpected (another format version, a memcpy'd chunk, an element size other than
//! the read's, a table that is not strictly increasing inside the chunk, a header that
//! contradicts the stored size) answers "fetch the chunk whole", where the whole-chunk checks
//! report it.
//!
//! [`decode_runs`]: super::decode_runs

use super::DecodeError;
use super::runs::{BLOSC_FORMAT_VERSION, Run, touched_blocks};

/// Bytes of a Blosc 1 header.
pub(crate) const BLOSC_HEADER_BYTES: usize = 16;

/// The header flag of a chunk stored uncompressed (no block table).
const BLOSC_MEMCPYED: u8 = 0x2;

/// Most blocks a chunk may have for a partial fetch (its table is then 256 KiB; a public
/// ARCO-ERA5 chunk has a few hundred).
const MAX_PARTIAL_BLOCKS: usize = 1 << 16;

/// What a Blosc header says about a chunk a partial fetch can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BloscLayout {
    /// Number of blocks (and of table entries).
    pub nblocks: usize,
    /// Decoded bytes per block (the last may hold fewer).
    pub blocksize: usize,
    /// Compressed size of the whole chunk, as stored.
    pub cbytes: usize,
}

impl BloscLayout {
    /// Reads the 16-byte `header` of a stored chunk of `stored_len` bytes that decodes to
    /// `chunk_len` elements of `element_size` bytes. `Ok(None)`: fetch the chunk whole (the
    /// header is not one a partial fetch reads, contradicts the stored size, or the `runs`
    /// would touch (nearly) every block). An error is a run outside the chunk (a bug).
    pub(crate) fn from_header(
        header: &[u8],
        element_size: usize,
        chunk_len: usize,
        stored_len: u64,
        runs: &[Run],
    ) -> Result<Option<BloscLayout>, DecodeError> {
        let Some(header) = header.get(..BLOSC_HEADER_BYTES) else {
            return Ok(None);
        };
        let word = |i: usize| {
            u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]) as usize
        };
        let (version, flags, typesize) = (header[0], header[2], usize::from(header[3]));
        let (nbytes, blocksize, cbytes) = (word(4), word(8), word(12));
        let expected = chunk_len.checked_mul(element_size);
        let plain = version == BLOSC_FORMAT_VERSION
            && flags & BLOSC_MEMCPYED == 0
            && typesize == element_size
            && Some(nbytes) == expected
            && cbytes as u64 == stored_len
            && blocksize > 0
            && blocksize <= nbytes
            && i32::try_from(nbytes).is_ok()
            && i32::try_from(cbytes).is_ok();
        if !plain {
            return Ok(None);
        }
        let nblocks = nbytes.div_ceil(blocksize);
        let table_end = BLOSC_HEADER_BYTES + 4 * nblocks;
        if nblocks > MAX_PARTIAL_BLOCKS || table_end >= cbytes {
            return Ok(None);
        }
        let (_, blocks) = touched_blocks(runs, chunk_len, element_size, blocksize)?;
        if !super::runs::partial_saves_enough(blocks, blocksize, nbytes) {
            return Ok(None);
        }
        Ok(Some(BloscLayout {
            nblocks,
            blocksize,
            cbytes,
        }))
    }

    /// The byte range of the block table in the stored chunk.
    pub(crate) fn table_range(&self) -> std::ops::Range<u64> {
        BLOSC_HEADER_BYTES as u64..(BLOSC_HEADER_BYTES + 4 * self.nblocks) as u64
    }
}

/// A stretch of consecutive blocks to fetch: blocks `first..=last`, stored at bytes
/// `start..end` of the chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    /// First block.
    pub first: usize,
    /// Last block (inclusive).
    pub last: usize,
    /// Offset of the first block's bytes in the stored chunk.
    pub start: u64,
    /// End (exclusive) of the last block's bytes in the stored chunk.
    pub end: u64,
}

/// The block offsets of `table` (the stored table of a chunk laid out as `layout` says), when
/// they are strictly increasing and lie after the table and inside the chunk; `None` otherwise.
fn block_starts(layout: &BloscLayout, table: &[u8]) -> Option<Vec<u64>> {
    if table.len() != 4 * layout.nblocks {
        return None;
    }
    let starts: Vec<u64> = table
        .chunks_exact(4)
        .map(|w| u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
        .collect();
    let table_end = (BLOSC_HEADER_BYTES + table.len()) as u64;
    let increasing = starts.windows(2).all(|w| w[0] < w[1]);
    let inside = starts.first().is_some_and(|s| *s >= table_end)
        && starts.last().is_some_and(|s| *s < layout.cbytes as u64);
    (increasing && inside).then_some(starts)
}

/// The stretches of consecutive blocks the `runs` overlap, with their byte ranges in the
/// stored chunk, in order; `None` when the block table is not one a partial fetch can trust
/// (fetch the chunk whole).
pub(crate) fn blosc_segments(
    layout: &BloscLayout,
    table: &[u8],
    element_size: usize,
    runs: &[Run],
) -> Option<Vec<Segment>> {
    let starts = block_starts(layout, table)?;
    let mut needed = vec![false; layout.nblocks];
    for run in runs {
        let first = run.chunk * element_size / layout.blocksize;
        let last = ((run.chunk + run.len) * element_size - 1) / layout.blocksize;
        needed.get_mut(first..=last)?.fill(true);
    }
    let end_of = |block: usize| {
        starts
            .get(block + 1)
            .copied()
            .unwrap_or(layout.cbytes as u64)
    };
    let mut segments: Vec<Segment> = Vec::new();
    for block in (0..layout.nblocks).filter(|b| needed[*b]) {
        match segments.last_mut() {
            Some(s) if s.last + 1 == block => {
                s.last = block;
                s.end = end_of(block);
            }
            _ => segments.push(Segment {
                first: block,
                last: block,
                start: starts[block],
                end: end_of(block),
            }),
        }
    }
    Some(segments)
}

/// A valid Blosc chunk holding only the blocks of `segments`: `header` with its compressed
/// size set to the new length, the table with those blocks' new offsets (the others point at
/// the first block kept; nothing reads them), then the fetched `parts` (one per segment, its
/// bytes `start..end`). Blosc reads a block from its offset and its own recorded lengths, so
/// the blocks kept decode exactly as in the stored chunk.
pub(crate) fn blosc_compact(
    header: &[u8],
    layout: &BloscLayout,
    table: &[u8],
    segments: &[Segment],
    parts: &[&[u8]],
) -> Result<Vec<u8>, DecodeError> {
    let starts = block_starts(layout, table).ok_or("blosc block table changed between reads")?;
    if parts.len() != segments.len() {
        return Err("internal: one fetched part per segment expected".into());
    }
    let table_end = BLOSC_HEADER_BYTES + table.len();
    let data_len: usize = parts.iter().map(|p| p.len()).sum();
    let len = table_end + data_len;
    let len_word = u32::try_from(len).map_err(|_| "blosc chunk too large to compact")?;
    let mut offsets = vec![table_end as u32; layout.nblocks];
    let mut at = table_end;
    for (segment, part) in segments.iter().zip(parts) {
        if part.len() as u64 != segment.end - segment.start {
            return Err(format!(
                "blosc blocks {}..={} came back as {} bytes, not {}",
                segment.first,
                segment.last,
                part.len(),
                segment.end - segment.start
            )
            .into());
        }
        for block in segment.first..=segment.last {
            let offset = at as u64 + (starts[block] - segment.start);
            offsets[block] = u32::try_from(offset).map_err(|_| "blosc offset overflow")?;
        }
        at += part.len();
    }
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&header[..12]);
    out.extend_from_slice(&len_word.to_le_bytes());
    for offset in offsets {
        out.extend_from_slice(&offset.to_le_bytes());
    }
    for part in parts {
        out.extend_from_slice(part);
    }
    Ok(out)
}
