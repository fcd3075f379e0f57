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

/// Buffers kept for reuse, at most `limit` bytes of them.
struct Pool {
    buffers: Vec<Vec<f32>>,
    bytes: usize,
    limit: usize,
}

impl Pool {
    const fn new(limit: usize) -> Pool {
        Pool {
            buffers: Vec::new(),
            bytes: 0,
            limit,
        }
    }

    /// The best-fitting buffer for `len` elements (the smallest that holds them, at most a
    /// quarter larger), emptied; `None` when none fits.
    fn take(&mut self, len: usize) -> Option<Vec<f32>> {
        let best = self
            .buffers
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len && b.capacity() - len <= len / 4)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i)?;
        let mut buffer = self.buffers.swap_remove(best);
        self.bytes -= bytes_of(&buffer);
        buffer.clear();
        Some(buffer)
    }

    /// Keeps `buffer` if it is large enough and fits under the limit; otherwise hands it back,
    /// for the caller to free outside the lock.
    fn keep(&mut self, buffer: Vec<f32>) -> Option<Vec<f32>> {
        let bytes = bytes_of(&buffer);
        if bytes < MIN_POOLED_BYTES || self.bytes + bytes > self.limit {
            return Some(buffer);
        }
        self.bytes += bytes;
        self.buffers.push(buffer);
        None
    }
}

static POOL: Mutex<Pool> = Mutex::new(Pool::new(MAX_RETAINED_BYTES));

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn bytes_of(buffer: &Vec<f32>) -> usize {
    buffer.capacity() * size_of::<f32>()
}

/// An empty vector with room for at least `len` elements: a pooled buffer when `T` is `f32`,
/// the buffer is large and one fits (at most a quarter larger than needed), otherwise a new
/// allocation. Its spare capacity holds no promise of contents.
pub fn take<T: bytemuck::Pod>(len: usize) -> Vec<T> {
    if TypeId::of::<T>() == TypeId::of::<f32>()
        && len.saturating_mul(size_of::<T>()) >= MIN_POOLED_BYTES
        && let Some(buffer) = pool().take(len)
    {
        let buffer: Box<dyn Any> = Box::new(buffer);
        if let Ok(buffer) = buffer.downcast::<Vec<T>>() {
            return *buffer;
        }
    }
    Vec::with_capacity(len)
}

/// Hands a buffer back for a later [`take`]. Small buffers, and any buffer that would take
/// the pool past [`MAX_RETAINED_BYTES`], are freed instead.
pub fn recycle(buffer: Vec<f32>) {
    let refused = pool().keep(buffer);
    drop(refused); // freed after the lock is released
}

/// The bytes the pool holds now.
pub fn retained_bytes() -> usize {
    pool().bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIG: usize = MIN_POOLED_BYTES / 4 * 3; // 3 MiB of f32

    // a pool of its own: the process-wide one is shared by the tests running in parallel
    #[test]
    fn buffers_come_back_bounded_and_best_fitting() {
        let mut pool = Pool::new(4 * BIG * 4);
        let buffer: Vec<f32> = Vec::with_capacity(BIG);
        let address = buffer.as_ptr();
        assert!(pool.keep(buffer).is_none());
        assert_eq!(pool.bytes, BIG * 4);
        // the same allocation comes back, emptied, for a request it fits
        let mut again = pool.take(BIG - 100).expect("a buffer that fits");
        assert_eq!(again.as_ptr(), address);
        assert!(again.is_empty());
        assert_eq!(pool.bytes, 0);
        // too large a buffer for a small request is not handed out
        again.extend([1.0, 2.0]);
        assert!(pool.keep(again).is_none());
        assert!(pool.take(BIG / 2).is_none());
        // nor one too small; the best fit among several is the smallest that holds the values
        assert!(pool.take(BIG + 1).is_none());
        assert!(pool.keep(Vec::with_capacity(BIG + BIG / 8)).is_none());
        let best = pool.take(BIG).expect("a buffer that fits");
        assert_eq!(best.as_ptr(), address);
        // small buffers are not kept, and the bound holds
        assert!(pool.keep(Vec::with_capacity(16)).is_some());
        let kept = (0..8)
            .filter(|_| pool.keep(Vec::with_capacity(BIG)).is_none())
            .count();
        // BIG + BIG/8 is held: two more of BIG fit under 4 × BIG, a third would not
        assert_eq!(kept, 2);
        assert!(pool.bytes <= 4 * BIG * 4);
    }

    /// The process-wide pool gives `f32` buffers only to `f32` requests.
    #[test]
    fn other_element_types_get_a_new_allocation() {
        let doubles: Vec<f64> = take(MIN_POOLED_BYTES);
        assert!(doubles.is_empty() && doubles.capacity() >= MIN_POOLED_BYTES);
        let small: Vec<f32> = take(16);
        assert!(small.capacity() >= 16);
    }
}
