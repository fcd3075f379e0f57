//! Bounded chunk decoding.
//!
//! zarrs' own decoders trust the encoded stream for the output size (Blosc allocates the size in
//! its header, zstd the size in its frame header or an estimate, gzip reads to the end), so a
//! small malicious chunk could make them allocate gigabytes. Before zarrs decodes a chunk, this
//! module checks, without allocating the output, that the chunk decodes to exactly the declared
//! chunk shape × element size:
//!
//! - no compressor: the byte length must be exactly that size;
//! - Blosc: the header's `nbytes` must be that size and its `cbytes` the length received;
//! - zstd: one frame whose header declares that content size and whose frame length is the
//!   length received (numcodecs and zarr-python always write the content size);
//! - gzip: a streaming decode into a sink, stopped one byte past that size, must produce it.
//!
//! After decoding, the decoded length is checked again. Any other codec chain (filters,
//! transpose, sharding, checksums, other compressors) is refused when the array is opened.

use std::io::Read;
use zarrs::array::codec::{BloscCodec, BytesCodec, GzipCodec, ZstdCodec};
use zarrs::array::{CodecChain, CodecTraits};

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
        Compression::Gzip => {
            let mut decoder = flate2::read::GzDecoder::new(encoded).take(expected + 1);
            let produced = std::io::copy(&mut decoder, &mut std::io::sink())
                .map_err(|e| format!("gzip chunk does not decode: {e}"))?;
            if produced != expected {
                return Err(format!(
                    "gzip chunk decodes to {}{produced} bytes but the chunk shape needs {expected}",
                    if produced > expected {
                        "more than "
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    Ok(())
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
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&data).unwrap();
        let enc = enc.finish().unwrap();
        assert!(enc.len() < 5000, "a 1 MiB bomb compresses to {}", enc.len());
        let err = precheck(Compression::Gzip, &enc, 4096).unwrap_err();
        assert!(err.contains("more than 4097"), "{err}");
        assert!(precheck(Compression::Gzip, &enc, 1 << 20).is_ok());
        assert!(precheck(Compression::Gzip, &enc[..enc.len() / 2], 1 << 20).is_err());
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
