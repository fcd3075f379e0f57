//! Part of a Blosc chunk: only the blocks of the stretches a read keeps (e.g. 13 of an
//! ARCO-ERA5 chunk's 37 levels), through `blosc_getitem` after the header checks.

use super::chunk::{decode_uninit, strip_checksum};
use super::*;
use bytemuck::Pod;
use std::mem::size_of;

/// A stretch of elements that is contiguous both in a chunk and in the read's output: `len`
/// elements from flat offset `chunk` of the (C-order) chunk to flat offset `out` of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// Flat offset in the chunk, in elements.
    pub chunk: usize,
    /// Flat offset in the output, in elements.
    pub out: usize,
    /// Number of elements.
    pub len: usize,
}

/// The Blosc format version whose block table [`decode_runs`] reads (`BLOSC_VERSION_FORMAT`).
pub(super) const BLOSC_FORMAT_VERSION: u8 = 2;

/// Decodes only the elements of `runs` from a chunk of `chunk_len` elements, concatenated in the
/// order of `runs`, when the chunk is Blosc-compressed and its blocks let that decode less than
/// the whole chunk (an ARCO-ERA5 chunk holds 37 levels, wx scores 13 of them: each level is a
/// run, and only the Blosc blocks it overlaps are decompressed, straight from the chunk's block
/// table with `blosc_getitem`).
///
/// `Ok(None)` means "decode the chunk whole instead": another compression, a Blosc header this
/// does not read (another format version, an element size other than `T`'s), or runs that
/// touch (nearly) every block. The header is checked as [`decode_chunk`] checks it (declared
/// size = the chunk's, compressed size = the bytes received, `blosc_cbuffer_validate`) before
/// c-blosc reads the block table; c-blosc checks every block offset against that compressed
/// size. An error is a message for a "corrupt chunk" error.
///
/// [`decode_chunk`]: super::chunk::decode_chunk
pub(crate) fn decode_runs<T: Pod>(
    encoding: &ChunkEncoding,
    encoded: &[u8],
    chunk_len: usize,
    runs: &[Run],
) -> Result<Option<Vec<T>>, DecodeError> {
    if encoding.compression != Compression::Blosc {
        return Ok(None);
    }
    let data = if encoding.checksum {
        strip_checksum(encoded)?
    } else {
        encoded
    };
    let size = size_of::<T>();
    let nbytes = chunk_len
        .checked_mul(size)
        .ok_or_else(|| format!("a chunk of {chunk_len} elements does not fit in memory"))?;
    precheck(Compression::Blosc, data, nbytes as u64)?;
    // c-blosc counts in `int`: larger chunks (which Blosc 1 cannot write) are decoded whole
    if i32::try_from(nbytes).is_err() || i32::try_from(data.len()).is_err() {
        return Ok(None);
    }
    let mut declared = 0usize;
    // SAFETY: c-blosc reads at most `data.len()` bytes of `data` to validate the header.
    let valid = unsafe {
        blosc_src::blosc_cbuffer_validate(data.as_ptr().cast(), data.len(), &mut declared)
    };
    if valid < 0 || declared != nbytes {
        return Err("blosc header is invalid".into());
    }
    // `precheck` checked the 16-byte header is there
    let (version, typesize) = (data[0], usize::from(data[3]));
    let blocksize = u32::from_le_bytes([data[8], data[9], data[10], data[11]]) as usize;
    if version != BLOSC_FORMAT_VERSION || typesize != size || blocksize == 0 {
        return Ok(None);
    }
    let (wanted, blocks) = touched_blocks(runs, chunk_len, size, blocksize)?;
    if !partial_saves_enough(blocks, blocksize, nbytes) {
        return Ok(None);
    }
    let mut out = decode_uninit::<T>(wanted, |dst| {
        let mut written = 0usize;
        for run in runs {
            let bytes = run.len * size;
            let dst = &mut dst[written..written + bytes];
            // SAFETY: the header was validated against `data.len()` (compressed size = the
            // bytes received, declared size = `nbytes`, format version 2, element size =
            // `size`), so c-blosc reads the block table and every block inside `data` (it
            // checks each block offset against the compressed size); the run lies inside the
            // chunk (checked above, and `nbytes` fits in an `int`), and c-blosc writes exactly
            // `run.len` elements into `dst`, which holds that many. It keeps no state between
            // calls.
            let code = unsafe {
                blosc_src::blosc_getitem(
                    data.as_ptr().cast(),
                    run.chunk as i32,
                    run.len as i32,
                    dst.as_mut_ptr().cast(),
                )
            };
            if usize::try_from(code).ok() != Some(bytes) {
                return Err(format!(
                    "blosc chunk does not decode elements {}+{} (code {code})",
                    run.chunk, run.len
                )
                .into());
            }
            written += bytes;
        }
        Ok(written)
    })?;
    if encoding.big_endian != cfg!(target_endian = "big") {
        for element in bytemuck::cast_slice_mut::<T, u8>(&mut out).chunks_exact_mut(size) {
            element.reverse();
        }
    }
    Ok(Some(out))
}

/// The elements `runs` ask for and the Blosc blocks of `blocksize` bytes they overlap (counted
/// once per run), in a chunk of `chunk_len` elements of `size` bytes; an error when a run lies
/// outside the chunk (a bug of the caller).
pub(super) fn touched_blocks(
    runs: &[Run],
    chunk_len: usize,
    size: usize,
    blocksize: usize,
) -> Result<(usize, usize), DecodeError> {
    let mut wanted = 0usize;
    let mut blocks = 0usize;
    for run in runs {
        let end = run
            .chunk
            .checked_add(run.len)
            .filter(|end| run.len > 0 && *end <= chunk_len)
            .ok_or_else(|| {
                format!(
                    "internal: elements {}+{} outside a chunk of {chunk_len}",
                    run.chunk, run.len
                )
            })?;
        wanted += run.len;
        blocks += (end * size - 1) / blocksize - run.chunk * size / blocksize + 1;
    }
    Ok((wanted, blocks))
}

/// Whether decoding (and fetching) `blocks` blocks of `blocksize` bytes instead of the whole
/// chunk of `nbytes` is worth it: it must save a tenth of the chunk, else the whole decode (one
/// call, no copies out of the block buffer) is as cheap.
pub(super) fn partial_saves_enough(blocks: usize, blocksize: usize, nbytes: usize) -> bool {
    blocks.saturating_mul(blocksize) <= nbytes / 10 * 9
}
