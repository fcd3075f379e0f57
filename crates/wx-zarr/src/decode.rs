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
//! chains it can bound (see [`codecs_of`], docs/data.md §1.2 and §1.5):
//!
//! - serialisation `bytes` (either byte order), optionally inside `sharding_indexed`;
//! - at most one compressor: Blosc, zstd, gzip, zlib, or numcodecs' LZ4;
//! - optionally a `crc32c` checksum after it.
//!
//! [`precheck`] first checks, without allocating the output, that the chunk declares exactly the
//! chunk shape × element size:
//!
//! - no compressor: the byte length must be exactly that size;
//! - Blosc: the header's `nbytes` must be that size and its `cbytes` the length received;
//! - zstd: one frame whose header declares that content size and whose frame length is the
//!   length received (numcodecs and zarr-python always write the content size);
//! - LZ4 (numcodecs): the 4-byte little-endian size header must be that size;
//! - gzip and zlib: nothing to read in a header; [`decode_chunk`] stops one byte past that size.
//!
//! [`decode_chunk`] checks the crc32c checksum when there is one, runs that check, then has the
//! decompressor write into the typed buffer the field will keep: no intermediate byte buffer, no
//! zero-filling (except for gzip, zlib and LZ4), no copy. It checks that exactly the expected
//! number of bytes came out, and swaps the byte order of big-endian data.
//!
//! [`decode_runs`] decodes only part of a Blosc chunk (the stretches a read keeps, e.g. 13 of an
//! ARCO-ERA5 chunk's 37 levels): after the same header checks, `blosc_getitem` decompresses only
//! the blocks each stretch overlaps; runs that would touch nearly every block decode whole.
//!
//! [`decode_shard`] reads a shard (docs/data.md §1.5): the index's size follows from the metadata
//! (16 bytes per inner chunk, at most [`MAX_INNER_CHUNKS`]), its checksum is checked, every
//! entry must be "empty" or a byte range inside the shard's data part no longer than an inner
//! chunk may be encoded, and each inner chunk is decoded by [`decode_chunk`] to exactly its
//! size. The output (the whole shard, whose decoded size the caller bounded before fetching) is
//! allocated only after the index passed.
//! Any other codec chain (filters, transpose, other compressors, two compressors, nested
//! sharding) is refused when the array is opened.

use bytemuck::Pod;
use std::io::Read;
use std::mem::{MaybeUninit, size_of};
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
fn lz4_declared_size(encoded: &[u8]) -> Result<u64, DecodeError> {
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
fn strip_checksum(encoded: &[u8]) -> Result<&[u8], DecodeError> {
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

/// Decodes a whole shard of `shard_shape` into a new buffer (C order), inner chunks marked
/// empty in the index read as `fill`. Every bound of the module docs is checked before the
/// output is allocated; the caller bounded the shard's decoded size.
pub(crate) fn decode_shard<T: Pod>(
    sharding: &Sharding,
    shard_shape: &[u64],
    encoded: &[u8],
    fill: T,
) -> Result<Vec<T>, DecodeError> {
    let inner_shape = &sharding.inner_shape;
    if inner_shape.len() != shard_shape.len()
        || inner_shape
            .iter()
            .zip(shard_shape)
            .any(|(i, s)| *i == 0 || s % i != 0)
    {
        return Err(format!(
            "inner chunk shape {inner_shape:?} does not divide the shard shape {shard_shape:?}"
        )
        .into());
    }
    let grid: Vec<u64> = shard_shape
        .iter()
        .zip(inner_shape)
        .map(|(s, i)| s / i)
        .collect();
    let count = grid.iter().try_fold(1u64, |a, n| a.checked_mul(*n));
    let count = count.filter(|n| *n <= MAX_INNER_CHUNKS).ok_or_else(|| {
        format!("a shard of {grid:?} inner chunks has more than {MAX_INNER_CHUNKS}")
    })?;
    let index_len = count * 16
        + if sharding.index_checksum {
            CHECKSUM_BYTES
        } else {
            0
        };
    let total = encoded.len() as u64;
    if total < index_len {
        return Err(format!(
            "shard is {total} bytes, shorter than its {index_len}-byte index (truncated)"
        )
        .into());
    }
    let (index, data_start, data_end) = if sharding.index_at_start {
        (&encoded[..index_len as usize], index_len, total)
    } else {
        (
            &encoded[(total - index_len) as usize..],
            0,
            total - index_len,
        )
    };
    let index = if sharding.index_checksum {
        strip_checksum(index).map_err(|e| format!("shard index: {e}"))?
    } else {
        index
    };
    let word = |i: usize| {
        let b = &index[i * 8..i * 8 + 8];
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    };
    let inner_elements: u64 = inner_shape.iter().product();
    let inner_bytes = inner_elements * size_of::<T>() as u64;
    let max_inner = sharding.inner.max_encoded_len(inner_bytes);
    let mut ranges = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        let (offset, nbytes) = (word(2 * i), word(2 * i + 1));
        if offset == u64::MAX && nbytes == u64::MAX {
            ranges.push(None);
            continue;
        }
        let end = offset
            .checked_add(nbytes)
            .filter(|end| offset >= data_start && *end <= data_end);
        let Some(end) = end else {
            return Err(format!(
                "shard index entry {i} points at bytes {offset}+{nbytes}, outside the shard's \
                 data ({data_start}..{data_end})"
            )
            .into());
        };
        if nbytes > max_inner {
            return Err(format!(
                "shard index entry {i} is {nbytes} bytes, over the {max_inner} an inner chunk of \
                 {inner_bytes} bytes may take"
            )
            .into());
        }
        ranges.push(Some(offset as usize..end as usize));
    }
    // the caller checked shape × element size against its limit: this fits
    let shard_len = shard_shape.iter().product::<u64>() as usize;
    let mut out = vec![fill; shard_len];
    let inner_len = inner_elements as usize;
    let mut position = vec![0u64; grid.len()];
    for range in ranges {
        if let Some(range) = range {
            let inner: Vec<T> = decode_encoded(&sharding.inner, &encoded[range], inner_len)
                .map_err(|e| format!("inner chunk {position:?}: {e}"))?;
            place_inner(&mut out, shard_shape, &inner, inner_shape, &position);
        }
        // next inner chunk, last dimension fastest (the index's C order)
        for d in (0..grid.len()).rev() {
            position[d] += 1;
            if position[d] < grid[d] {
                break;
            }
            position[d] = 0;
        }
    }
    Ok(out)
}

/// Copies a decoded inner chunk into its place in the shard (both C order).
fn place_inner<T: Copy>(
    out: &mut [T],
    shard_shape: &[u64],
    inner: &[T],
    inner_shape: &[u64],
    position: &[u64],
) {
    let ndim = shard_shape.len();
    if ndim == 0 {
        out.copy_from_slice(&inner[..out.len()]);
        return;
    }
    let mut strides = vec![1usize; ndim];
    for d in (0..ndim - 1).rev() {
        strides[d] = strides[d + 1] * shard_shape[d + 1] as usize;
    }
    let row = inner_shape[ndim - 1] as usize;
    let rows = inner.len() / row.max(1);
    let mut counter = vec![0usize; ndim - 1];
    for r in 0..rows {
        let mut offset = position[ndim - 1] as usize * row;
        for d in 0..ndim - 1 {
            offset += (position[d] as usize * inner_shape[d] as usize + counter[d]) * strides[d];
        }
        out[offset..offset + row].copy_from_slice(&inner[r * row..(r + 1) * row]);
        for d in (0..ndim - 1).rev() {
            counter[d] += 1;
            if counter[d] < inner_shape[d] as usize {
                break;
            }
            counter[d] = 0;
        }
    }
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
const BLOSC_FORMAT_VERSION: u8 = 2;

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
    // decoding the touched blocks must save a tenth of the chunk, else the whole decode (one
    // call, no copies out of the block buffer) is as cheap
    if blocks.saturating_mul(blocksize) > nbytes / 10 * 9 {
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

/// Allocates `len` elements without initialising them and lets `write` fill their bytes; the
/// buffer is returned only when `write` reports having written every byte.
fn decode_uninit<T: Pod>(
    len: usize,
    write: impl FnOnce(&mut [MaybeUninit<u8>]) -> Result<usize, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
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
        return Err(
            format!("decodes to {written} bytes but the chunk shape needs {nbytes}").into(),
        );
    }
    // SAFETY: `write` initialised all `nbytes` bytes, and any bytes are a valid `T` (`Pod`).
    unsafe { out.set_len(len) };
    Ok(out)
}

/// Blosc 1 into `dst`; returns the number of bytes written.
fn blosc_decompress(encoded: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<usize, DecodeError> {
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
fn zstd_decompress(encoded: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<usize, DecodeError> {
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
fn inflate_bounded<T: Pod>(
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
fn lz4_decompress<T: Pod>(encoded: &[u8], len: usize) -> Result<Vec<T>, DecodeError> {
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
    fn blosc_with(
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

    /// 100,000 values (400 kB): several Blosc blocks even where c-blosc enlarges them (LZ4
    /// and BloscLZ split blocks of at least 64 kB).
    fn many() -> Vec<f32> {
        (0..10).flat_map(|_| values()).collect()
    }

    fn gathered(values: &[f32], runs: &[Run]) -> Vec<u32> {
        runs.iter()
            .flat_map(|r| bits(&values[r.chunk..r.chunk + r.len]))
            .collect()
    }

    fn run(chunk: usize, len: usize) -> Run {
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
        for (cname, shuffle) in [
            (c"lz4", blosc_src::BLOSC_SHUFFLE),
            (c"zstd", blosc_src::BLOSC_BITSHUFFLE),
            (c"blosclz", blosc_src::BLOSC_NOSHUFFLE),
        ] {
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
        assert!(
            decode_runs::<f32>(&plain, &encoded[..encoded.len() - 1], n, &[run(0, 10)]).is_err()
        );
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
                match decode_runs::<f32>(&plain, &damaged, n, &[run(100, 3000), run(90_000, 1000)])
                {
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
}
