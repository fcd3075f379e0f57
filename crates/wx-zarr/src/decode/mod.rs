//! Bounded chunk decoding, straight into the field's buffer.
//!
//! zarrs' own decoders trust the encoded stream for the output size (Blosc allocates the size in
//! its header, zstd the size in its frame header or an estimate, gzip and zlib read to the end),
//! its sharding decoder trusts the shard index (`offset + nbytes` is added unchecked and sliced,
//! so a hostile index panics), and zarrs has no LZ4 codec at all. A small malicious chunk could
//! make them allocate gigabytes or crash; and its codec chain returns a fresh byte buffer that
//! must then be copied into a typed one. wx therefore takes the codec chain *metadata* from zarrs
//! (which parses and validates every configuration) and decodes chunks itself, with the same C and
//! Rust libraries zarrs links (c-blosc, libzstd, flate2) plus lz4_flex and crc32c, for the codec
//! chains it can bound (see `codecs_of`, docs/data.md §1.2 and §1.5):
//!
//! - serialisation `bytes` (either byte order), optionally inside `sharding_indexed`;
//! - at most one compressor: Blosc, zstd, gzip, zlib, or numcodecs' LZ4;
//! - optionally a `crc32c` checksum after it.
//!
//! `precheck` first checks, without allocating the output, that the chunk declares exactly the
//! chunk shape × element size:
//!
//! - no compressor: the byte length must be exactly that size;
//! - Blosc: the header's `nbytes` must be that size and its `cbytes` the length received;
//! - zstd: one frame whose header declares that content size and whose frame length is the
//!   length received (numcodecs and zarr-python always write the content size);
//! - LZ4 (numcodecs): the 4-byte little-endian size header must be that size;
//! - gzip and zlib: nothing to read in a header; `decode_chunk` stops one byte past that size.
//!
//! `decode_chunk` checks the crc32c checksum when there is one, runs that check, then has the
//! decompressor write into the typed buffer the field will keep: no intermediate byte buffer, no
//! zero-filling (except for gzip, zlib and LZ4), no copy. It checks that exactly the expected
//! number of bytes came out, and swaps the byte order of big-endian data.
//!
//! `decode_runs` decodes only part of a Blosc chunk (the stretches a read keeps, e.g. 13 of an
//! ARCO-ERA5 chunk's 37 levels): after the same header checks, `blosc_getitem` decompresses only
//! the blocks each stretch overlaps; runs that would touch nearly every block decode whole.
//! `blocks.rs` plans fetching only those blocks by byte range, and assembles them into a
//! smaller Blosc chunk that `decode_runs` decodes with the same checks.
//!
//! `decode_shard` reads a shard (docs/data.md §1.5): the index's size follows from the metadata
//! (16 bytes per inner chunk, at most [`MAX_INNER_CHUNKS`]), its checksum is checked, every
//! entry must be "empty" or a byte range inside the shard's data part no longer than an inner
//! chunk may be encoded, and each inner chunk is decoded by `decode_chunk` to exactly its
//! size. The output (the whole shard, whose decoded size the caller bounded before fetching) is
//! allocated only after the index passed.
//! Any other codec chain (filters, transpose, other compressors, two compressors, nested
//! sharding) is refused when the array is opened.

use std::mem::size_of;
use zarrs::array::codec::{
    BloscCodec, BytesCodec, Crc32cCodec, GzipCodec, ShardingCodec, ZlibCodec, ZstdCodec,
};
use zarrs::array::{CodecChain, CodecMetadataOptions, CodecTraits};

/// Why a chunk, a shard or a codec chain cannot be decoded, in words: what is wrong and what
/// would be accepted. [`crate::ZarrArray`] reports it as a [`crate::ZarrError::Format`] naming
/// the store and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

impl From<String> for DecodeError {
    fn from(message: String) -> Self {
        DecodeError(message)
    }
}

impl From<&str> for DecodeError {
    fn from(message: &str) -> Self {
        DecodeError(message.to_owned())
    }
}

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
    /// zlib (numcodecs `zlib`, v3 `numcodecs.zlib`).
    Zlib,
    /// numcodecs' LZ4: a 4-byte little-endian decoded size, then one LZ4 block (v2 `lz4`, v3
    /// `numcodecs.lz4`).
    Lz4,
}

impl Compression {
    /// Name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Blosc => "blosc",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::Zlib => "zlib",
            Compression::Lz4 => "lz4",
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

/// Size of a crc32c checksum.
const CHECKSUM_BYTES: u64 = 4;

/// Most inner chunks one shard may have (its index is then 1 MiB).
pub const MAX_INNER_CHUNKS: u64 = 1 << 16;

/// How the bytes of one (inner) chunk are encoded: a compression and an optional trailing crc32c.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkEncoding {
    /// The compressor (or none).
    pub compression: Compression,
    /// A crc32c checksum follows the compressed bytes.
    pub checksum: bool,
    /// The `bytes` codec stores multi-byte elements big-endian.
    pub big_endian: bool,
}

impl ChunkEncoding {
    /// The largest encoded size accepted for a chunk of `decoded` bytes.
    pub fn max_encoded_len(&self, decoded: u64) -> u64 {
        let checksum = if self.checksum { CHECKSUM_BYTES } else { 0 };
        self.compression
            .max_encoded_len(decoded)
            .saturating_add(checksum)
    }
}

/// The layout of a sharded array's chunks (a `sharding_indexed` codec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sharding {
    /// Shape of one inner chunk.
    pub inner_shape: Vec<u64>,
    /// Encoding of each inner chunk.
    pub inner: ChunkEncoding,
    /// The index is followed by a crc32c checksum.
    pub index_checksum: bool,
    /// The index is at the start of the shard (else at its end).
    pub index_at_start: bool,
}

/// A codec chain wx can decode with a bounded output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codecs {
    /// Encoding of a chunk, or of each inner chunk of a shard (then the same as
    /// `sharding.inner`).
    pub encoding: ChunkEncoding,
    /// The chunk grid's chunks are shards of inner chunks.
    pub sharding: Option<Sharding>,
}

impl Codecs {
    /// The largest stored size accepted for a chunk (a shard: its inner chunks and its index)
    /// of `chunk_elements` elements of `element_size` bytes.
    pub fn max_encoded_len(&self, chunk_elements: u64, element_size: u64) -> u64 {
        let decoded = chunk_elements.saturating_mul(element_size);
        match &self.sharding {
            None => self.encoding.max_encoded_len(decoded),
            Some(sharding) => {
                let inner_elements = sharding.inner_shape.iter().product::<u64>().max(1);
                let count = chunk_elements / inner_elements;
                let inner = sharding
                    .inner
                    .max_encoded_len(inner_elements.saturating_mul(element_size));
                let index = count * 16 + CHECKSUM_BYTES;
                count.saturating_mul(inner).saturating_add(index)
            }
        }
    }
}

/// Identifies a codec chain, refusing chains this reader cannot bound. `lz4` says that a
/// numcodecs LZ4 compressor (which zarrs does not know, so it was taken out of the metadata
/// before zarrs saw it) belongs right after serialisation; `inner_lz4` the same for a
/// shard's inner chunks.
pub(crate) fn codecs_of(
    chain: &CodecChain,
    lz4: bool,
    inner_lz4: bool,
) -> Result<Codecs, DecodeError> {
    no_filters(chain)?;
    let a2b = chain.array_to_bytes_codec();
    if let Some(sharding) = a2b.as_any().downcast_ref::<ShardingCodec>() {
        if lz4 {
            return Err("an lz4 compressor around shards is not supported".into());
        }
        if !chain.bytes_to_bytes_codecs().is_empty() {
            return Err(
                "codecs after `sharding_indexed` are not supported (compress the inner chunks)"
                    .into(),
            );
        }
        let sharding = sharding_of(sharding, inner_lz4)?;
        return Ok(Codecs {
            encoding: sharding.inner,
            sharding: Some(sharding),
        });
    }
    Ok(Codecs {
        encoding: plain_encoding(chain, lz4, "chunks")?,
        sharding: None,
    })
}

fn no_filters(chain: &CodecChain) -> Result<(), DecodeError> {
    match chain.array_to_array_codecs().first() {
        Some(first) => Err(format!(
            "codec `{}` before serialisation (filter, transpose or Fortran order) is not \
             supported; write C-order arrays without filters",
            codec_name(first.as_ref())
        )
        .into()),
        None => Ok(()),
    }
}

/// The encoding of a chain without sharding: `bytes`, at most one compressor, an optional
/// crc32c last.
fn plain_encoding(chain: &CodecChain, lz4: bool, what: &str) -> Result<ChunkEncoding, DecodeError> {
    no_filters(chain)?;
    let a2b = chain.array_to_bytes_codec();
    let big_endian = if a2b.as_any().downcast_ref::<BytesCodec>().is_some() {
        big_endian_of(a2b.as_ref())
    } else if a2b.as_any().downcast_ref::<ShardingCodec>().is_some() {
        return Err(format!("sharding inside {what} is not supported (one level only)").into());
    } else {
        return Err(format!(
            "serialisation codec `{}` is not supported (only `bytes`, or `sharding_indexed` \
             around it)",
            codec_name(a2b.as_ref())
        )
        .into());
    };
    let mut codecs = chain.bytes_to_bytes_codecs();
    let checksum = match codecs.last() {
        Some(last) if last.as_any().downcast_ref::<Crc32cCodec>().is_some() => {
            crc32c_at_end(last.as_ref())?;
            codecs = &codecs[..codecs.len() - 1];
            true
        }
        _ => false,
    };
    let compression =
        match (codecs, lz4) {
            ([], true) => Compression::Lz4,
            ([], false) => Compression::None,
            ([one], false) => {
                let any = one.as_any();
                if any.downcast_ref::<BloscCodec>().is_some() {
                    Compression::Blosc
                } else if any.downcast_ref::<ZstdCodec>().is_some() {
                    Compression::Zstd
                } else if any.downcast_ref::<GzipCodec>().is_some() {
                    Compression::Gzip
                } else if any.downcast_ref::<ZlibCodec>().is_some() {
                    Compression::Zlib
                } else if any.downcast_ref::<Crc32cCodec>().is_some() {
                    return Err(format!(
                    "a crc32c checksum before the compressor of {what} is not supported (put it \
                     last)"
                ).into());
                } else {
                    return Err(format!(
                        "compressor `{}` is not supported (blosc, zstd, gzip, zlib, lz4 or none, \
                     optionally followed by crc32c)",
                        codec_name(one.as_ref())
                    )
                    .into());
                }
            }
            (more, _) => {
                return Err(format!(
                "{} chained compressors/checksums are not supported (at most one of blosc, zstd, \
                 gzip, zlib, lz4, optionally followed by crc32c)",
                more.len() + usize::from(lz4) + usize::from(checksum)
            ).into());
            }
        };
    Ok(ChunkEncoding {
        compression,
        checksum,
        big_endian,
    })
}

fn sharding_of(codec: &ShardingCodec, inner_lz4: bool) -> Result<Sharding, DecodeError> {
    use zarrs::array::codec::{ShardingCodecConfiguration, ShardingIndexLocation};
    let configuration = codec
        .configuration_v3(&CodecMetadataOptions::default())
        .ok_or("sharding_indexed has no v3 configuration")?;
    let configuration: ShardingCodecConfiguration =
        serde_json::from_value(serde_json::Value::Object(configuration.into()))
            .map_err(|e| format!("sharding_indexed configuration: {e}"))?;
    let ShardingCodecConfiguration::V1(v1) = configuration else {
        return Err("this sharding_indexed configuration is not supported".into());
    };
    let inner = CodecChain::from_metadata(&v1.codecs)
        .map_err(|e| format!("sharding_indexed inner codecs: {e}"))?;
    let inner = plain_encoding(&inner, inner_lz4, "a shard")?;
    let index = CodecChain::from_metadata(&v1.index_codecs)
        .map_err(|e| format!("sharding_indexed index codecs: {e}"))?;
    let index = plain_encoding(&index, false, "a shard index")?;
    if index.compression != Compression::None || index.big_endian {
        return Err(
            "a shard index must be little-endian `bytes`, optionally with crc32c (compressed \
             indexes are not supported)"
                .into(),
        );
    }
    Ok(Sharding {
        inner_shape: v1.chunk_shape.iter().map(|n| n.get()).collect(),
        inner,
        index_checksum: index.checksum,
        index_at_start: matches!(v1.index_location, ShardingIndexLocation::Start),
    })
}

/// A crc32c codec must keep its checksum at the end (the spec's only layout).
fn crc32c_at_end<C: CodecTraits + ?Sized>(codec: &C) -> Result<(), DecodeError> {
    let location = codec
        .configuration_v3(&CodecMetadataOptions::default())
        .and_then(|c| {
            c.get("location")
                .and_then(|l| l.as_str())
                .map(str::to_owned)
        });
    match location.as_deref() {
        None | Some("end") => Ok(()),
        Some(other) => {
            Err(format!("crc32c with location `{other}` is not supported (only at the end)").into())
        }
    }
}

fn codec_name<C: CodecTraits + ?Sized>(codec: &C) -> String {
    codec
        .name_v3()
        .or_else(|| codec.name_v2())
        .map(|n| n.to_string())
        .unwrap_or_else(|| "?".to_owned())
}

/// Whether a `bytes` codec stores multi-byte elements big-endian (`>f4` in v2, `"endian":
/// "big"` in v3).
fn big_endian_of<C: CodecTraits + ?Sized>(codec: &C) -> bool {
    codec
        .configuration_v3(&CodecMetadataOptions::default())
        .and_then(|configuration| {
            configuration
                .get("endian")
                .and_then(|endian| endian.as_str())
                .map(|endian| endian == "big")
        })
        .unwrap_or(false)
}

mod blocks;
#[cfg(test)]
mod blocks_tests;
mod chunk;
mod runs;
mod shard;
#[cfg(test)]
mod tests;

pub(crate) use blocks::{BLOSC_HEADER_BYTES, BloscLayout, Segment, blosc_compact, blosc_segments};
pub(crate) use chunk::{decode_encoded, precheck};
pub(crate) use runs::{Run, decode_runs};
pub(crate) use shard::decode_shard;
