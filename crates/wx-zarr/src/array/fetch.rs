//! One chunk of a [`ZarrArray`] in its store: whether it exists, its fetch bounded by the
//! encoded size its codecs allow, and its decoding (whole, or only the runs a read keeps) on the
//! blocking pool when it is large; a missing chunk is an error unless the missing-chunk policy
//! reads it as fill values.

use super::place::chunks_of;
use super::{Selection, ZarrArray};
use crate::decode::{Run, decode_encoded, decode_runs, decode_shard};
use crate::{MissingChunkPolicy, ZarrError};
use futures::StreamExt;
use zarrs::array::{ArrayBytes, ElementOwned, FromArrayBytes};
use zarrs::storage::StoreKey;

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
        let max = self
            .codecs
            .max_encoded_len(num_elements, self.element.size());
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
        // A large chunk is decoded on the blocking pool: the runtime's workers keep serving
        // other reads (and heartbeats) meanwhile, and the chunks of one read decode in parallel.
        let decoded = if expected >= DECODE_OFFLOAD_BYTES {
            tokio::task::spawn_blocking(decode)
                .await
                .map_err(|e| self.err(format!("chunk {chunk_indices:?}: decoding task: {e}")))?
        } else {
            decode()
        };
        decoded.map_err(|m| ZarrError::format(&self.store, &key_str, format!("corrupt chunk: {m}")))
    }
}

/// One decoded chunk: whole (C order), or the elements of its runs concatenated.
pub(super) enum Decoded<T> {
    /// The whole chunk.
    Whole(Vec<T>),
    /// Only the elements of these runs, in their order.
    Runs(Vec<T>, Vec<Run>),
}

/// Decoded chunks at least this large are decoded on the blocking pool (smaller ones, such as
/// coordinates, inline: the hand-over would cost more than the decoding).
const DECODE_OFFLOAD_BYTES: u64 = 1 << 20;
