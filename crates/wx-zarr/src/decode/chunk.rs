//! One chunk: its declared size checked before anything is allocated, its checksum, and the
//! decompressors writing straight into the buffer the field keeps.

use super::*;
use bytemuck::Pod;
use std::io::Read;
use std::mem::{MaybeUninit, size_of};

/// Checks, without allocating the output, that `encoded` decodes to exactly `expected` bytes.
pub(crate) fn precheck(
    compression: Compression,
    encoded: &[u8],
    expected: u64,
) -> Result<(), DecodeError> {
    let len = encoded.len() as u64;
    match compression {
        Compression::None => {
            if len != expected {
                return Err(format!(
                    "uncompressed chunk is {len} bytes but the chunk shape needs {expected}"
                )
                .into());
            }
        }
        Compression::Blosc => {
            if encoded.len() < 16 {
                return Err(format!(
                    "blosc chunk is {len} bytes, shorter than its 16-byte header (truncated)"
                )
                .into());
            }
            let word = |i: usize| {
                u64::from(u32::from_le_bytes([
                    encoded[i],
                    encoded[i + 1],
                    encoded[i + 2],
                    encoded[i + 3],
                ]))
            };
            let (nbytes, cbytes) = (word(4), word(12));
            if cbytes != len {
                return Err(format!(
                    "blosc header says {cbytes} compressed bytes but the chunk is {len} bytes \
                     (truncated or padded)"
                )
                .into());
            }
            if nbytes != expected {
                return Err(format!(
                    "blosc chunk decodes to {nbytes} bytes but the chunk shape needs {expected}"
                )
                .into());
            }
        }
        Compression::Zstd => {
            use zstd::zstd_safe;
            let frame = zstd_safe::find_frame_compressed_size(encoded).map_err(|code| {
                format!(
                    "zstd chunk is not a complete frame ({}; truncated?)",
                    zstd_safe::get_error_name(code)
                )
            })?;
            if frame as u64 != len {
                return Err(format!(
                    "zstd chunk has {} bytes after its first frame; only single-frame chunks are read",
                    len - frame as u64
                ).into());
            }
            match zstd_safe::get_frame_content_size(encoded) {
                Ok(Some(size)) if size == expected => {}
                Ok(Some(size)) => {
                    return Err(format!(
                        "zstd chunk decodes to {size} bytes but the chunk shape needs {expected}"
                    )
                    .into());
                }
                Ok(None) => {
                    return Err(
                        "zstd frame does not declare its decompressed size; write it with the \
                         content size flag (numcodecs and zarr-python do)"
                            .into(),
                    );
                }
                Err(_) => return Err("zstd frame header is invalid".into()),
            }
        }
        Compression::Lz4 => {
            let declared = lz4_declared_size(encoded)?;
            if declared != expected {
                return Err(format!(
                    "lz4 chunk decodes to {declared} bytes but the chunk shape needs {expected}"
                )
                .into());
            }
        }
        // gzip and zlib declare no size up front; `decode_chunk` stops one byte past it
        Compression::Gzip | Compression::Zlib => {}
    }
    Ok(())
}

/// The decoded size numcodecs' LZ4 writes before the block (4 bytes, little-endian).
pub(super) fn lz4_declared_size(encoded: &[u8]) -> Result<u64, DecodeError> {
    match encoded {
        [a, b, c, d, ..] => Ok(u64::from(u32::from_le_bytes([*a, *b, *c, *d]))),
        _ => Err(format!(
            "lz4 chunk is {} bytes, shorter than its 4-byte size header (truncated)",
            encoded.len()
        )
        .into()),
    }
}

/// Checks and strips a trailing crc32c checksum.
pub(super) fn strip_checksum(encoded: &[u8]) -> Result<&[u8], DecodeError> {
    let Some(split) = encoded.len().checked_sub(CHECKSUM_BYTES as usize) else {
        return Err(format!(
            "chunk is {} bytes, shorter than its crc32c checksum (truncated)",
            encoded.len()
        )
        .into());
    };
    let (data, stored) = encoded.split_at(split);
    let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let actual = crc32c::crc32c(data);
    if actual != stored {
        return Err(format!(
            "crc32c checksum {actual:08x} does not match the stored {stored:08x} (damaged chunk)"
        )
        .into());
    }
    Ok(data)
}

/// Decodes one chunk encoded as `encoding` says (checksum, compression, byte order) into a new
/// buffer of exactly `len` elements; see [`decode_chunk`].
pub(crate) fn decode_encoded<T: Pod>(
    encoding: &ChunkEncoding,
    encoded: &[u8],
    len: usize,
) -> Result<Vec<T>, DecodeError> {
    let data = if encoding.checksum {
        strip_checksum(encoded)?
    } else {
        encoded
    };
    let swap = encoding.big_endian != cfg!(target_endian = "big");
    decode_chunk(encoding.compression, data, len, swap)
}

/// Decodes one chunk into a new buffer of exactly `len` elements, the buffer the field keeps
/// (see the module docs). `swap_bytes` reverses each element's bytes after decoding (stored byte
/// order ≠ this machine's). The chunk's declared size is checked first ([`precheck`]). The
/// error is a message for a "corrupt chunk" error: the chunk did not decode, or not to exactly
/// `len` elements.
pub(crate) fn decode_chunk<T: Pod>(
    compression: Compression,
    encoded: &[u8],
    len: usize,
    swap_bytes: bool,
) -> Result<Vec<T>, DecodeError> {
    let nbytes = len
        .checked_mul(size_of::<T>())
        .ok_or_else(|| format!("a chunk of {len} elements does not fit in memory"))?;
    precheck(compression, encoded, nbytes as u64)?;
    let mut out = match compression {
        Compression::None => decode_uninit(len, |dst| {
            // `precheck` ruled this out already; the copy below must not rely on a caller
            if encoded.len() != dst.len() {
                return Err(format!(
                    "uncompressed chunk is {} bytes but the chunk shape needs {}",
                    encoded.len(),
                    dst.len()
                )
                .into());
            }
            // SAFETY: `dst` is writable for `dst.len()` bytes, which `encoded` holds; the two are
            // distinct allocations.
            unsafe {
                std::ptr::copy_nonoverlapping(encoded.as_ptr(), dst.as_mut_ptr().cast(), dst.len())
            };
            Ok(dst.len())
        })?,
        Compression::Blosc => decode_uninit(len, |dst| blosc_decompress(encoded, dst))?,
        Compression::Zstd => decode_uninit(len, |dst| zstd_decompress(encoded, dst))?,
        Compression::Gzip => inflate_bounded(flate2::read::GzDecoder::new(encoded), "gzip", len)?,
        Compression::Zlib => inflate_bounded(flate2::read::ZlibDecoder::new(encoded), "zlib", len)?,
        Compression::Lz4 => lz4_decompress(encoded, len)?,
    };
    if swap_bytes {
        for element in bytemuck::cast_slice_mut::<T, u8>(&mut out).chunks_exact_mut(size_of::<T>())
        {
            element.reverse();
        }
    }
    Ok(out)
}

/// Allocates `len` elements without initialising them and lets `write` fill their bytes; the
/// buffer is returned only when `write` reports having written every byte.
pub(super) fn decode_uninit<T: Pod>(
    len: usize,
    write: impl FnOnce(&mut [MaybeUninit<u8>]) -> Result<usize, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    // `decode_chunk` checked that this product fits
    let nbytes = len * size_of::<T>();
    // a pooled buffer when one fits (crate::buffers): every byte is written below
    let mut out: Vec<T> = crate::buffers::take(len);
    let spare = &mut out.spare_capacity_mut()[..len];
    // SAFETY: the same memory seen as bytes: `MaybeUninit<u8>` has alignment 1 and no validity
    // requirement, and `spare` spans exactly `nbytes` bytes.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<MaybeUninit<u8>>(), nbytes)
    };
    let written = write(bytes)?;
    if written != nbytes {
        return Err(
            format!("decodes to {written} bytes but the chunk shape needs {nbytes}").into(),
        );
    }
    // SAFETY: `write` initialised all `nbytes` bytes, and any bytes are a valid `T` (`Pod`).
    unsafe { out.set_len(len) };
    Ok(out)
}

/// Blosc 1 into `dst`; returns the number of bytes written.
pub(super) fn blosc_decompress(
    encoded: &[u8],
    dst: &mut [MaybeUninit<u8>],
) -> Result<usize, DecodeError> {
    let mut declared = 0usize;
    // SAFETY: c-blosc reads at most `encoded.len()` bytes of `encoded` to validate the header.
    let valid = unsafe {
        blosc_src::blosc_cbuffer_validate(encoded.as_ptr().cast(), encoded.len(), &mut declared)
    };
    if valid < 0 {
        return Err("blosc header is invalid".into());
    }
    if declared != dst.len() {
        return Err(format!(
            "blosc chunk decodes to {declared} bytes but the chunk shape needs {}",
            dst.len()
        )
        .into());
    }
    // SAFETY: the context interface is thread-safe and "guaranteed not to write the `dest`
    // buffer more than what is specified in `destsize`" (blosc.h); the header was validated
    // against `encoded.len()`; one internal thread (fields are decoded in parallel instead).
    let written = unsafe {
        blosc_src::blosc_decompress_ctx(
            encoded.as_ptr().cast(),
            dst.as_mut_ptr().cast(),
            dst.len(),
            1,
        )
    };
    usize::try_from(written)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            format!(
                "blosc chunk does not decode into the {} bytes the chunk shape needs (code \
                 {written})",
                dst.len()
            )
            .into()
        })
}

/// One zstd frame into `dst`; returns the number of bytes written.
pub(super) fn zstd_decompress(
    encoded: &[u8],
    dst: &mut [MaybeUninit<u8>],
) -> Result<usize, DecodeError> {
    use zstd::zstd_safe::zstd_sys;
    // SAFETY: libzstd writes at most `dst.len()` bytes into `dst` and reads `encoded` only.
    let code = unsafe {
        zstd_sys::ZSTD_decompress(
            dst.as_mut_ptr().cast(),
            dst.len(),
            encoded.as_ptr().cast(),
            encoded.len(),
        )
    };
    // SAFETY: both take any code and return a flag / a static C string.
    if unsafe { zstd_sys::ZSTD_isError(code) } != 0 {
        let name = unsafe { std::ffi::CStr::from_ptr(zstd_sys::ZSTD_getErrorName(code)) };
        return Err(format!(
            "zstd chunk does not decode into the {} bytes the chunk shape needs: {}",
            dst.len(),
            name.to_string_lossy()
        )
        .into());
    }
    Ok(code)
}

/// gzip or zlib into a zeroed buffer (flate2 reads only into initialised memory), stopping one
/// byte past the expected size so a bomb costs no more than the chunk.
pub(super) fn inflate_bounded<T: Pod>(
    mut decoder: impl Read,
    name: &str,
    len: usize,
) -> Result<Vec<T>, DecodeError> {
    let mut out = vec![T::zeroed(); len];
    let bytes = bytemuck::cast_slice_mut::<T, u8>(&mut out);
    let mut filled = 0;
    while filled < bytes.len() {
        match decoder.read(&mut bytes[filled..]) {
            Ok(0) => {
                return Err(format!(
                    "{name} chunk decodes to {filled} bytes but the chunk shape needs {}",
                    bytes.len()
                )
                .into());
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{name} chunk does not decode: {e}").into()),
        }
    }
    let mut past_the_end = [0u8; 1];
    match decoder.read(&mut past_the_end) {
        Ok(0) => Ok(out),
        Ok(_) => Err(format!(
            "{name} chunk decodes to more than the {} bytes the chunk shape needs",
            filled
        )
        .into()),
        Err(e) => Err(format!("{name} chunk does not decode: {e}").into()),
    }
}

/// numcodecs' LZ4 (size header checked by [`precheck`]) into a zeroed buffer of exactly `len`
/// elements; lz4_flex never writes past the buffer it is given.
pub(super) fn lz4_decompress<T: Pod>(encoded: &[u8], len: usize) -> Result<Vec<T>, DecodeError> {
    let mut out = vec![T::zeroed(); len];
    let bytes = bytemuck::cast_slice_mut::<T, u8>(&mut out);
    let written = lz4_flex::block::decompress_into(&encoded[4..], bytes).map_err(|e| {
        format!(
            "lz4 chunk does not decode into the {} bytes the chunk shape needs: {e}",
            bytes.len()
        )
    })?;
    if written != bytes.len() {
        return Err(format!(
            "lz4 chunk decodes to {written} bytes but the chunk shape needs {}",
            bytes.len()
        )
        .into());
    }
    Ok(out)
}
