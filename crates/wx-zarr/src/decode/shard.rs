//! A v3 shard: its index checked entry by entry before the output is allocated, then each
//! inner chunk decoded to exactly its size and placed.

use super::chunk::strip_checksum;
use super::*;
use bytemuck::Pod;

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
pub(super) fn place_inner<T: Copy>(
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
