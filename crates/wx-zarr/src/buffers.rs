//! Reuse of the large buffers chunks decode into.
//!
//! A 0.25° variable of 13 levels decodes into one 54 MB buffer, and a validator decodes one
//! per miner, variable and lead. Handed back to the allocator, such a buffer often goes back
//! to the kernel, and the next one is fresh memory that the kernel must fault in and zero:
//! profiles of the daemon showed the zeroing as the largest single cost after hashing. A
//! bounded pool keeps up to [`MAX_RETAINED_BYTES`] of `f32` buffers that their owner
//! [`recycle`]s (wx-data's `Field` does when it is dropped), and the decoders take from it
//! before they allocate (docs/data.md §4.3). Only the memory is reused: a decoder writes every
//! element it returns, so no value of an earlier field can leak into a later one.
//!
//! The pool is process-wide, as an allocator is; it never holds more than its bound, and a
//! buffer it cannot keep is simply freed.

use std::any::{Any, TypeId};
use std::sync::{Mutex, PoisonError};

/// Buffers smaller than this are left to the allocator (surface fields at 1° and finer, a
/// 0.25° level, are larger).
pub const MIN_POOLED_BYTES: usize = 1 << 20;
/// The most the pool keeps: four 13-level 0.25° fields and a few single levels.
pub const MAX_RETAINED_BYTES: usize = 256 << 20;

struct Pool {
    buffers: Vec<Vec<f32>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    buffers: Vec::new(),
    bytes: 0,
});

fn bytes_of(buffer: &Vec<f32>) -> usize {
    buffer.capacity() * size_of::<f32>()
}

/// An empty vector with room for at least `len` elements: a pooled buffer when `T` is `f32`,
/// the buffer is large and one fits (at most a quarter larger than needed), otherwise a new
/// allocation. Its spare capacity holds no promise of contents.
pub fn take<T: bytemuck::Pod>(len: usize) -> Vec<T> {
    if TypeId::of::<T>() == TypeId::of::<f32>()
        && len.saturating_mul(size_of::<T>()) >= MIN_POOLED_BYTES
        && let Some(buffer) = take_f32(len)
    {
        let buffer: Box<dyn Any> = Box::new(buffer);
        if let Ok(buffer) = buffer.downcast::<Vec<T>>() {
            return *buffer;
        }
    }
    Vec::with_capacity(len)
}

/// The pool's best-fitting buffer for `len` elements, if one fits.
fn take_f32(len: usize) -> Option<Vec<f32>> {
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    let best = pool
        .buffers
        .iter()
        .enumerate()
        .filter(|(_, b)| b.capacity() >= len && b.capacity() - len <= len / 4)
        .min_by_key(|(_, b)| b.capacity())
        .map(|(i, _)| i)?;
    let mut buffer = pool.buffers.swap_remove(best);
    pool.bytes -= bytes_of(&buffer);
    drop(pool);
    buffer.clear();
    Some(buffer)
}

/// Hands a buffer back for a later [`take`]. Small buffers, and any buffer that would take
/// the pool past [`MAX_RETAINED_BYTES`], are freed instead.
pub fn recycle(buffer: Vec<f32>) {
    let bytes = bytes_of(&buffer);
    if bytes < MIN_POOLED_BYTES {
        return;
    }
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    if pool.bytes + bytes > MAX_RETAINED_BYTES {
        drop(pool); // freed outside the lock
        return;
    }
    pool.bytes += bytes;
    pool.buffers.push(buffer);
}

/// The bytes the pool holds now.
pub fn retained_bytes() -> usize {
    POOL.lock().unwrap_or_else(PoisonError::into_inner).bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    // 3 MiB of f32 and an odd tail: no other test of this crate decodes a chunk of this size
    const BIG: usize = MIN_POOLED_BYTES / 4 * 3 + 1013;

    // one test: the pool is process-wide, and tests of one binary run in parallel
    #[test]
    fn buffers_come_back_bounded_and_best_fitting() {
        let before = retained_bytes();
        let buffer: Vec<f32> = take(BIG);
        assert!(buffer.is_empty() && buffer.capacity() >= BIG);
        let address = buffer.as_ptr();
        recycle(buffer);
        assert_eq!(retained_bytes(), before + BIG * 4);
        // the same allocation comes back, emptied, for a request it fits
        let again: Vec<f32> = take(BIG - 100);
        assert_eq!(again.as_ptr(), address);
        assert!(again.is_empty());
        // too large a buffer for a small request is not handed out
        recycle(again);
        let small: Vec<f32> = take(BIG / 2);
        assert_ne!(small.as_ptr(), address);
        // other element types never get an f32 buffer
        let doubles: Vec<f64> = take(BIG / 2);
        assert_ne!(doubles.as_ptr().cast::<f32>(), address);
        // small buffers are not kept
        let before_small = retained_bytes();
        recycle(Vec::with_capacity(16));
        assert_eq!(retained_bytes(), before_small);
        // the bound holds
        for _ in 0..(MAX_RETAINED_BYTES / (BIG * 4) + 4) {
            recycle(Vec::with_capacity(BIG));
        }
        assert!(retained_bytes() <= MAX_RETAINED_BYTES);
    }
}
