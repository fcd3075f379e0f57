//! Bounded chunk decoding, straight into the field's buffer.
//!
//! zarrs' own decoders trust the encoded stream for the output size (Blosc allocates the size in
//! its header, zstd the size in its frame header or an estimate, gzip reads to the end), so a
//! small malicious chunk could make them allocate gigabytes; and its codec chain returns a fresh
//! byte buffer that must then be copied into a typed one. wx therefore decodes chunks itself, with
//! the same C and Rust libraries zarrs links (c-blosc, libzstd, flate2), for the only codec chains
//! it accepts (bytes serialisation plus at most one compressor; see [`compression_of`]).
//!
//! [`precheck`] first checks, without allocating the output, that the chunk declares exactly the
//! chunk shape × element size:
//!
//! - no compressor: the byte length must be exactly that size;
//! - Blosc: the header's `nbytes` must be that size and its `cbytes` the length received;
//! - zstd: one frame whose header declares that content size and whose frame length is the
//!   length received (numcodecs and zarr-python always write the content size);
//! - gzip: nothing to read in a header; [`decode_chunk`] stops one byte past that size.
//!
//! [`decode_chunk`] runs that check, then has the decompressor write into the typed buffer the
//! field will keep: no intermediate byte buffer, no zero-filling (except for gzip), no copy. It
//! checks that exactly the expected number of bytes came out, and swaps the byte order of
//! big-endian data.
//! Any other codec chain (filters, transpose, sharding, checksums, other compressors) is refused
//! when the array is opened.

use bytemuck::Pod;
use std::io::Read;
use std::mem::{MaybeUninit, size_of};
use zarrs::array::codec::{BloscCodec, BytesCodec, GzipCodec, ZstdCodec};
use zarrs::array::{CodecChain, CodecMetadataOptions, CodecTraits};

/// The compression of a supported codec chain: bytes serialisation plus at most one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Raw little- or big-endian bytes.
    None,
    /// Blosc 1 (any inner compressor, any shuffle).
    Blosc,
    /// Zstandard.
    Zstd,
    /// gzip.
    Gzip,
}

impl Compression {
    /// Name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Blosc => "blosc",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
        }
    }

    /// The largest encoded size accepted for a chunk of `decoded` bytes (no codec may expand
    /// data by more than a quarter plus a header).
    pub fn max_encoded_len(self, decoded: u64) -> u64 {
        match self {
            Compression::None => decoded,
            _ => decoded + decoded / 4 + 1024,
        }
    }
}

/// Identifies the compression of a codec chain, refusing chains this reader cannot bound.
pub(crate) fn compression_of(chain: &CodecChain) -> Result<Compression, String> {
    if let Some(first) = chain.array_to_array_codecs().first() {
        return Err(format!(
            "codec `{}` before serialisation (filter, transpose or Fortran order) is not \
             supported; write C-order arrays without filters",
            codec_name(first.as_ref())
        ));
    }
    let a2b = chain.array_to_bytes_codec();
    if a2b.as_any().downcast_ref::<BytesCodec>().is_none() {
        return Err(format!(
            "serialisation codec `{}` is not supported (only `bytes`; no sharding)",
            codec_name(a2b.as_ref())
        ));
    }
    match chain.bytes_to_bytes_codecs() {
        [] => Ok(Compression::None),
        [one] => {
            let any = one.as_any();
            if any.downcast_ref::<BloscCodec>().is_some() {
                Ok(Compression::Blosc)
            } else if any.downcast_ref::<ZstdCodec>().is_some() {
                Ok(Compression::Zstd)
            } else if any.downcast_ref::<GzipCodec>().is_some() {
                Ok(Compression::Gzip)
            } else {
                Err(format!(
                    "compressor `{}` is not supported (blosc, zstd, gzip or none)",
                    codec_name(one.as_ref())
                ))
            }
        }
        more => Err(format!(
            "{} chained compressors/checksums are not supported (at most one of blosc, zstd, gzip)",
            more.len()
        )),
    }
}

fn codec_name<C: CodecTraits + ?Sized>(codec: &C) -> String {
    codec
        .name_v3()
        .or_else(|| codec.name_v2())
        .map(|n| n.to_string())
        .unwrap_or_else(|| "?".to_owned())
}

/// Checks, without allocating the output, that `encoded` decodes to exactly `expected` bytes.
pub(crate) fn precheck(
    compression: Compression,
    encoded: &[u8],
    expected: u64,
) -> Result<(), String> {
    let len = encoded.len() as u64;
    match compression {
        Compression::None => {
            if len != expected {
                return Err(format!(
                    "uncompressed chunk is {len} bytes but the chunk shape needs {expected}"
                ));
            }
        }
        Compression::Blosc => {
            if encoded.len() < 16 {
                return Err(format!(
                    "blosc chunk is {len} bytes, shorter than its 16-byte header (truncated)"
                ));
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
                ));
            }
            if nbytes != expected {
                return Err(format!(
                    "blosc chunk decodes to {nbytes} bytes but the chunk shape needs {expected}"
                ));
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
                ));
            }
            match zstd_safe::get_frame_content_size(encoded) {
                Ok(Some(size)) if size == expected => {}
                Ok(Some(size)) => {
                    return Err(format!(
                        "zstd chunk decodes to {size} bytes but the chunk shape needs {expected}"
                    ));
                }
                Ok(None) => {
                    return Err(
                        "zstd frame does not declare its decompressed size; write it with the \
                         content size flag (numcodecs and zarr-python do)"
                            .to_owned(),
                    );
                }
                Err(_) => return Err("zstd frame header is invalid".to_owned()),
            }
        }
        // gzip declares no size up front; `decode_chunk` stops one byte past it
        Compression::Gzip => {}
    }
    Ok(())
}

/// Whether the codec chain stores multi-byte elements big-endian (`>f4` in v2, the `bytes`
/// codec's `"endian": "big"` in v3).
pub(crate) fn stores_big_endian(chain: &CodecChain) -> bool {
    chain
        .array_to_bytes_codec()
        .configuration_v3(&CodecMetadataOptions::default())
        .and_then(|configuration| {
            configuration
                .get("endian")
                .and_then(|endian| endian.as_str())
                .map(|endian| endian == "big")
        })
        .unwrap_or(false)
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
) -> Result<Vec<T>, String> {
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
                ));
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
        Compression::Gzip => gzip_decompress(encoded, len)?,
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
fn decode_uninit<T: Pod>(
    len: usize,
    write: impl FnOnce(&mut [MaybeUninit<u8>]) -> Result<usize, String>,
) -> Result<Vec<T>, String> {
    // `decode_chunk` checked that this product fits
    let nbytes = len * size_of::<T>();
    let mut out: Vec<T> = Vec::with_capacity(len);
    let spare = &mut out.spare_capacity_mut()[..len];
    // SAFETY: the same memory seen as bytes: `MaybeUninit<u8>` has alignment 1 and no validity
    // requirement, and `spare` spans exactly `nbytes` bytes.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<MaybeUninit<u8>>(), nbytes)
    };
    let written = write(bytes)?;
    if written != nbytes {
        return Err(format!(
            "decodes to {written} bytes but the chunk shape needs {nbytes}"
        ));
    }
    // SAFETY: `write` initialised all `nbytes` bytes, and any bytes are a valid `T` (`Pod`).
    unsafe { out.set_len(len) };
    Ok(out)
}

/// Blosc 1 into `dst`; returns the number of bytes written.
fn blosc_decompress(encoded: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<usize, String> {
    let mut declared = 0usize;
    // SAFETY: c-blosc reads at most `encoded.len()` bytes of `encoded` to validate the header.
    let valid = unsafe {
        blosc_src::blosc_cbuffer_validate(encoded.as_ptr().cast(), encoded.len(), &mut declared)
    };
    if valid < 0 {
        return Err("blosc header is invalid".to_owned());
    }
    if declared != dst.len() {
        return Err(format!(
            "blosc chunk decodes to {declared} bytes but the chunk shape needs {}",
            dst.len()
        ));
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
        })
}

/// One zstd frame into `dst`; returns the number of bytes written.
fn zstd_decompress(encoded: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<usize, String> {
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
        ));
    }
    Ok(code)
}

/// gzip into a zeroed buffer (flate2 reads only into initialised memory), stopping one byte
/// past the expected size so a gzip bomb costs no more than the chunk.
fn gzip_decompress<T: Pod>(encoded: &[u8], len: usize) -> Result<Vec<T>, String> {
    let mut out = vec![T::zeroed(); len];
    let bytes = bytemuck::cast_slice_mut::<T, u8>(&mut out);
    let mut decoder = flate2::read::GzDecoder::new(encoded);
    let mut filled = 0;
    while filled < bytes.len() {
        match decoder.read(&mut bytes[filled..]) {
            Ok(0) => {
                return Err(format!(
                    "gzip chunk decodes to {filled} bytes but the chunk shape needs {}",
                    bytes.len()
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("gzip chunk does not decode: {e}")),
        }
    }
    let mut past_the_end = [0u8; 1];
    match decoder.read(&mut past_the_end) {
        Ok(0) => Ok(out),
        Ok(_) => Err(format!(
            "gzip chunk decodes to more than the {} bytes the chunk shape needs",
            filled
        )),
        Err(e) => Err(format!("gzip chunk does not decode: {e}")),
    }
}

#[cfg(test)]
mod tests {
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
        let err = precheck(Compression::Zstd, &enc, 4004).unwrap_err();
        assert!(err.contains("4000") && err.contains("4004"), "{err}");
        let truncated = &enc[..enc.len() - 3];
        assert!(precheck(Compression::Zstd, truncated, 4000).is_err());
        let mut two = enc.clone();
        two.extend_from_slice(&enc);
        assert!(
            precheck(Compression::Zstd, &two, 8000)
                .unwrap_err()
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
        let err = decode_chunk::<f32>(Compression::Gzip, &enc, 1024, false).unwrap_err();
        assert!(err.contains("more than the 4096 bytes"), "{err}");
        let whole = decode_chunk::<f32>(Compression::Gzip, &enc, 1 << 18, false).unwrap();
        assert!(whole.iter().all(|v| v.to_bits() == 0));
        let err = decode_chunk::<f32>(Compression::Gzip, &enc[..enc.len() / 2], 1 << 18, false)
            .unwrap_err();
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

    fn bits(v: &[f32]) -> Vec<u32> {
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
        ];
        for (compression, encoded) in &encodings {
            let name = compression.name();
            precheck(*compression, encoded, raw.len() as u64).unwrap();
            let got = decode_chunk::<f32>(*compression, encoded, values.len(), false).unwrap();
            assert_eq!(bits(&got), bits(&values), "{name}");
            for wrong in [values.len() - 1, values.len() + 1] {
                let err = decode_chunk::<f32>(*compression, encoded, wrong, false).unwrap_err();
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

    #[test]
    fn blosc_headers_are_checked() {
        let mut header = vec![2u8, 1, 0, 4];
        header.extend_from_slice(&(1u32 << 30).to_le_bytes()); // claims 1 GiB
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&16u32.to_le_bytes());
        let err = precheck(Compression::Blosc, &header, 4096).unwrap_err();
        assert!(err.contains("1073741824"), "{err}");
        assert!(precheck(Compression::Blosc, &header[..10], 4096).is_err());
    }
}
