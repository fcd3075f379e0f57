//! One chunk of a [`ZarrArray`] in its store: whether it exists, its fetch bounded by the
//! encoded size its codecs allow (of a Blosc chunk a read keeps only part of, only the blocks
//! that part overlaps, by byte range, when the storage serves ranges), and its decoding (whole,
//! or only the runs a read keeps) on the blocking pool when it is large; a missing chunk is an error unless the missing-chunk policy
//! reads it as fill values.

use super::place::chunks_of;
use super::{Selection, ZarrArray};
use crate::decode::{
    BLOSC_HEADER_BYTES, BloscLayout, Compression, DecodeError, Run, Segment, blosc_compact,
    blosc_segments, decode_encoded, decode_runs, decode_shard,
};
use crate::{MissingChunkPolicy, ZarrError};
use futures::{StreamExt, TryStreamExt};
use std::ops::Range;
use zarrs::array::{ArrayBytes, ElementOwned, FromArrayBytes};
use zarrs::storage::byte_range::ByteRange;
use zarrs::storage::{Bytes, StoreKey};

impl ZarrArray {
    /// The key of the first chunk a read of `selection` would need that is absent from the
    /// store, or `None` when every one of them exists. Only asks the storage for each key's
    /// size (a HEAD request on object stores); nothing is downloaded or decoded.
    pub async fn missing_chunk(
        &self,
        selection: &[Selection],
    ) -> Result<Option<String>, ZarrError> {
        self.check_selection(selection)?;
        let chunks = chunks_of(&self.chunk_shape(), self.shape(), selection);
        let mut sizes = futures::stream::iter(chunks.into_iter().map(|ci| async move {
            let key = self.array.chunk_key(&ci);
            let size = self
                .storage
                .size_key(&key)
                .await
                .map_err(|e| ZarrError::storage(&self.store, key.as_str(), &e))?;
            Ok::<_, ZarrError>((key, size))
        }))
        .buffered(self.options.max_concurrent_chunks.max(1));
        while let Some(result) = sizes.next().await {
            let (key, size) = result?;
            if size.is_none() {
                return Ok(Some(key.as_str().to_owned()));
            }
        }
        Ok(None)
    }

    /// Fetches and decodes one chunk (bounded), or applies the missing-chunk policy.
    pub(super) async fn read_chunk<T>(&self, chunk_indices: &[u64]) -> Result<Vec<T>, ZarrError>
    where
        T: ElementOwned + bytemuck::Pod + Send + Sync,
        Vec<T>: FromArrayBytes,
    {
        // boxed: this extra level of nested futures once took a step's future (wx-steps'
        // fair_play test) past the compiler's query depth in a workspace clippy run
        match Box::pin(self.read_chunk_part(chunk_indices, None)).await? {
            Decoded::Whole(values) => Ok(values),
            Decoded::Runs(..) => Err(self.err(format!(
                "internal: chunk {chunk_indices:?} decoded in part when whole was asked"
            ))),
        }
    }

    /// Fetches one chunk and decodes it (bounded) whole, or only the elements of `runs` when
    /// its codec can ([`decode_runs`]); or applies the missing-chunk policy (whole).
    pub(super) async fn read_chunk_part<T>(
        &self,
        chunk_indices: &[u64],
        runs: Option<Vec<Run>>,
    ) -> Result<Decoded<T>, ZarrError>
    where
        T: ElementOwned + bytemuck::Pod + Send + Sync,
        Vec<T>: FromArrayBytes,
    {
        let key: StoreKey = self.array.chunk_key(chunk_indices);
        let key_str = key.as_str().to_owned();
        let chunk_shape = self
            .array
            .chunk_shape(chunk_indices)
            .map_err(|e| self.err(format!("chunk {chunk_indices:?}: {e}")))?;
        let shape_u64: Vec<u64> = chunk_shape.iter().map(|n| n.get()).collect();
        let num_elements: u64 = shape_u64.iter().product();
        let expected = num_elements * self.element.size();
        let len = usize::try_from(num_elements)
            .map_err(|_| self.err(format!("chunk {chunk_indices:?} does not fit in memory")))?;
        let max = self
            .codecs
            .max_encoded_len(num_elements, self.element.size());
        let blocks = match &runs {
            Some(runs) => match self.fetch_blosc_blocks(&key, len, runs, max).await {
                Ok(blocks) => blocks,
                // a server that cannot serve byte ranges after all, or a hiccup: the whole
                // fetch below tries again and reports what it meets
                Err(ZarrError::Storage { .. }) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        if let (Some(runs), Some(blocks)) = (&runs, blocks) {
            let encoding = self.codecs.encoding;
            let runs = runs.clone();
            let decode = move || {
                let compact = blocks.compact()?;
                drop(blocks);
                match decode_runs(&encoding, &compact, len, &runs)? {
                    Some(values) => Ok(Decoded::Runs(values, runs)),
                    None => Err(DecodeError::from(
                        "internal: the blocks fetched for a partial read decode only whole",
                    )),
                }
            };
            return self
                .decode_off_runtime(expected, chunk_indices, &key_str, decode)
                .await;
        }
        let encoded = self
            .storage
            .get(&key)
            .await
            .map_err(|e| ZarrError::storage(&self.store, &key_str, &e))?;
        let Some(encoded) = encoded else {
            return match self.options.missing_chunks {
                MissingChunkPolicy::Error => Err(ZarrError::MissingKey {
                    store: self.store.clone(),
                    key: key_str,
                    hint: format!(
                        "chunk {chunk_indices:?} of `{}` is not in the store (a missing chunk is \
                         never read as fill values here)",
                        self.name
                    ),
                }),
                MissingChunkPolicy::FillValue => {
                    let fill = ArrayBytes::new_fill_value(
                        self.array.data_type(),
                        num_elements,
                        self.array.fill_value(),
                    )
                    .map_err(|e| self.err(format!("fill value: {e}")))?;
                    Vec::<T>::from_array_bytes(fill, &shape_u64, self.array.data_type())
                        .map(Decoded::Whole)
                        .map_err(|e| self.err(format!("fill value: {e}")))
                }
            };
        };
        if encoded.len() as u64 > max {
            return Err(ZarrError::TooLarge {
                store: self.store.clone(),
                key: key_str,
                size: encoded.len() as u64,
                limit: max,
                what: "one encoded chunk",
            });
        }
        debug_assert_eq!(expected, num_elements * std::mem::size_of::<T>() as u64);
        let fill = match &self.codecs.sharding {
            None => None,
            Some(_) => {
                let fill =
                    ArrayBytes::new_fill_value(self.array.data_type(), 1, self.array.fill_value())
                        .map_err(|e| self.err(format!("fill value: {e}")))?;
                let fill = Vec::<T>::from_array_bytes(fill, &[1], self.array.data_type())
                    .map_err(|e| self.err(format!("fill value: {e}")))?;
                Some(
                    *fill
                        .first()
                        .ok_or_else(|| self.err("fill value: none".to_owned()))?,
                )
            }
        };
        let codecs = self.codecs.clone();
        let decode = move || {
            if codecs.sharding.is_none()
                && let Some(runs) = runs
                && let Some(values) = decode_runs(&codecs.encoding, &encoded, len, &runs)?
            {
                return Ok(Decoded::Runs(values, runs));
            }
            match (&codecs.sharding, fill) {
                (Some(sharding), Some(fill)) => decode_shard(sharding, &shape_u64, &encoded, fill),
                _ => decode_encoded(&codecs.encoding, &encoded, len),
            }
            .map(Decoded::Whole)
        };
        self.decode_off_runtime(expected, chunk_indices, &key_str, decode)
            .await
    }

    /// Runs `decode` of a chunk of `expected` decoded bytes: a large chunk on the blocking
    /// pool (the runtime's workers keep serving other reads and heartbeats meanwhile, and the
    /// chunks of one read decode in parallel), a small one inline (the hand-over would cost
    /// more than the decoding). A decoding error is a "corrupt chunk" of `key`.
    async fn decode_off_runtime<T: Send + 'static>(
        &self,
        expected: u64,
        chunk_indices: &[u64],
        key: &str,
        decode: impl FnOnce() -> Result<T, DecodeError> + Send + 'static,
    ) -> Result<T, ZarrError> {
        let decoded = if expected >= DECODE_OFFLOAD_BYTES {
            tokio::task::spawn_blocking(decode)
                .await
                .map_err(|e| self.err(format!("chunk {chunk_indices:?}: decoding task: {e}")))?
        } else {
            decode()
        };
        decoded.map_err(|m| ZarrError::format(&self.store, key, format!("corrupt chunk: {m}")))
    }

    /// Fetches only the Blosc blocks `runs` overlap in chunk `key` (decoding to `chunk_len`
    /// elements, stored in at most `max` bytes), by byte ranges: the header with the block
    /// table (the table alone after it when it is long), then one range per stretch of
    /// consecutive blocks (crate::decode::blocks). `Ok(None)`
    /// when that does not apply and the chunk is to be fetched whole: a chunk smaller than
    /// [`crate::ReadOptions::min_ranged_fetch_bytes`], a storage without byte ranges (a miner store, whose chunks are verified whole), another codec chain, a
    /// checksum over the whole chunk, a missing chunk (the whole fetch applies the policy), a
    /// header or table a partial fetch does not read, or runs that touch nearly every block.
    /// A storage error is returned as is; the caller then fetches whole.
    async fn fetch_blosc_blocks(
        &self,
        key: &StoreKey,
        chunk_len: usize,
        runs: &[Run],
        max: u64,
    ) -> Result<Option<BloscBlocks>, ZarrError> {
        let encoding = self.codecs.encoding;
        let decoded = chunk_len as u64 * self.element.size();
        if decoded < self.options.min_ranged_fetch_bytes
            || self.codecs.sharding.is_some()
            || encoding.compression != Compression::Blosc
            || encoding.checksum
            || !self.storage.supports_get_partial()
        {
            return Ok(None);
        }
        let Some(size) = self
            .storage
            .size_key(key)
            .await
            .map_err(|e| ZarrError::storage(&self.store, key.as_str(), &e))?
        else {
            return Ok(None);
        };
        if size > max {
            return Err(ZarrError::TooLarge {
                store: self.store.clone(),
                key: key.as_str().to_owned(),
                size,
                limit: max,
                what: "one encoded chunk",
            });
        }
        if size <= BLOSC_HEADER_BYTES as u64 {
            return Ok(None);
        }
        let element_size = self.element.size() as usize;
        // header and block table in one request when the table is short enough (an ARCO-ERA5
        // chunk has 294 blocks); a longer table is fetched on its own
        let prefix_len = size.min(BLOSC_PREFIX_BYTES);
        let Some(prefix) = self.get_range(key, 0..prefix_len).await? else {
            return Ok(None);
        };
        let header = prefix.slice(..BLOSC_HEADER_BYTES);
        let layout = BloscLayout::from_header(&header, element_size, chunk_len, size, runs)
            .map_err(|m| ZarrError::format(&self.store, key.as_str(), m.to_string()))?;
        let Some(layout) = layout else {
            return Ok(None);
        };
        let table_range = layout.table_range();
        let table = if table_range.end <= prefix_len {
            prefix.slice(table_range.start as usize..table_range.end as usize)
        } else {
            match self.get_range(key, table_range).await? {
                Some(table) => table,
                None => return Ok(None),
            }
        };
        let Some(segments) = blosc_segments(&layout, &table, element_size, runs) else {
            return Ok(None);
        };
        let ranges: Vec<Range<u64>> = segments.iter().map(|s| s.start..s.end).collect();
        let Some(parts) = self.get_ranges(key, &ranges).await? else {
            return Ok(None);
        };
        Ok(Some(BloscBlocks {
            header,
            layout,
            table,
            segments,
            parts,
        }))
    }

    /// The bytes of `range` of `key`, exactly as long as asked; `None` when the key is absent.
    async fn get_range(
        &self,
        key: &StoreKey,
        range: Range<u64>,
    ) -> Result<Option<Bytes>, ZarrError> {
        let parts = self.get_ranges(key, std::slice::from_ref(&range)).await?;
        Ok(parts.and_then(|p| p.into_iter().next()))
    }

    /// The bytes of `ranges` of `key`, each exactly as long as asked; `None` when the key is
    /// absent or the store answered with other lengths (it does not serve ranges after all).
    async fn get_ranges(
        &self,
        key: &StoreKey,
        ranges: &[Range<u64>],
    ) -> Result<Option<Vec<Bytes>>, ZarrError> {
        let storage_error = |e| ZarrError::storage(&self.store, key.as_str(), &e);
        let byte_ranges = ranges
            .iter()
            .map(|r| ByteRange::FromStart(r.start, Some(r.end - r.start)))
            .collect::<Vec<_>>();
        let Some(parts) = self
            .storage
            .get_partial_many(key, Box::new(byte_ranges.into_iter()))
            .await
            .map_err(storage_error)?
        else {
            return Ok(None);
        };
        let parts: Vec<Bytes> = parts.try_collect().await.map_err(storage_error)?;
        let exact = parts.len() == ranges.len()
            && parts
                .iter()
                .zip(ranges)
                .all(|(p, r)| p.len() as u64 == r.end - r.start);
        // a server that ignores ranges answers with whole objects: fetch whole then
        Ok(exact.then_some(parts))
    }
}

/// The parts of a Blosc chunk a partial read fetched: header, block table and the stretches
/// of blocks its runs overlap.
struct BloscBlocks {
    header: Bytes,
    layout: BloscLayout,
    table: Bytes,
    segments: Vec<Segment>,
    parts: Vec<Bytes>,
}

impl BloscBlocks {
    /// The smaller, valid Blosc chunk holding only the fetched blocks (CPU work: a copy of
    /// them; run on the blocking pool with the decoding).
    fn compact(&self) -> Result<Vec<u8>, DecodeError> {
        let parts: Vec<&[u8]> = self.parts.iter().map(|p| p.as_ref()).collect();
        blosc_compact(
            &self.header,
            &self.layout,
            &self.table,
            &self.segments,
            &parts,
        )
    }
}

/// One decoded chunk: whole (C order), or the elements of its runs concatenated.
pub(super) enum Decoded<T> {
    /// The whole chunk.
    Whole(Vec<T>),
    /// Only the elements of these runs, in their order.
    Runs(Vec<T>, Vec<Run>),
}

/// The first request of a ranged Blosc fetch: the header and the block table of a chunk of up
/// to 512 blocks.
const BLOSC_PREFIX_BYTES: u64 = (BLOSC_HEADER_BYTES + 4 * 512) as u64;

/// Decoded chunks at least this large are decoded on the blocking pool (smaller ones, such as
/// coordinates, inline: the hand-over would cost more than the decoding).
const DECODE_OFFLOAD_BYTES: u64 = 1 << 20;
