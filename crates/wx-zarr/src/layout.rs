//! Putting decoded values into standard (row-major) layout.
//!
//! A store may keep a grid's axes in another order than the `(level, lat, lon)` the scoring
//! wants: the WeatherBench2 climatology stores `(…, lon, lat)`. Reading such an array gives a
//! view whose last two axes are swapped, and making it standard is a transpose of every
//! level. ndarray's generic copy walks the source element by element with a stride of one
//! row, missing the cache on almost every read (a 0.25° level is 4 MB); here a swapped pair
//! of axes is copied tile by tile, so that both the rows read and the rows written stay in
//! cache, and any other layout falls back to the generic copy. Either way the values are
//! copied, never computed: the result is bit for bit the generic copy's.

use std::mem::MaybeUninit;

use ndarray::{Array3, ArrayView2, Axis};
use rayon::prelude::*;

use crate::buffers;

/// Side of the square tiles a transpose copies at a time. A tile touches as many pages as it
/// has rows on each side, and small tiles keep those within the first-level TLB: at 0.25°
/// a 13-level field transposed in 17–19 ms with tiles of 8, 28–30 ms with tiles of 32.
const TILE: usize = 8;

/// Which way the rows (the second axis) of a copy run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOrder {
    /// As in the source.
    Kept,
    /// Last row first: a grid stored south to north comes out north first, which the scoring
    /// wants, without a copy of its own.
    Reversed,
}

/// `data` in standard layout: returned as it is when it already is (`rows` is then ignored:
/// only a copy can reorder rows for free), otherwise copied with its rows in `rows` order into
/// a pooled buffer ([`buffers::take`]), and its own buffer handed back to the pool.
pub fn into_standard_layout(data: Array3<f32>, rows: RowOrder) -> Array3<f32> {
    if data.is_standard_layout() {
        return data;
    }
    let copy = standard_copy(&data, rows);
    buffers::recycle(data.into_raw_vec_and_offset().0);
    copy
}

/// A standard-layout copy of `data` in a pooled buffer, rows in `order`.
fn standard_copy(data: &Array3<f32>, order: RowOrder) -> Array3<f32> {
    let (levels, rows, cols) = data.dim();
    let level_len = rows * cols;
    let len = levels * level_len;
    let mut out = buffers::take::<f32>(len);
    let spare = &mut out.spare_capacity_mut()[..len];
    if level_len > 0 {
        // levels in parallel: a read's other chunks have usually decoded by the time this
        // copy runs, and it is the last step before scoring
        data.axis_iter(Axis(0))
            .into_par_iter()
            .zip(spare.par_chunks_exact_mut(level_len))
            .for_each(|(level, dst)| copy_level(level, order, dst));
    }
    // SAFETY: `copy_level` wrote every one of the first `len` elements (each level's
    // `rows × cols` values into its own `level_len` slot), and `len <= capacity`.
    unsafe { out.set_len(len) };
    Array3::from_shape_vec((levels, rows, cols), out)
        .expect("the buffer holds levels × rows × cols values")
}

/// Writes `level` into `dst` (`rows × cols` values, every one written), rows in `order`.
fn copy_level(level: ArrayView2<'_, f32>, order: RowOrder, dst: &mut [MaybeUninit<f32>]) {
    let (rows, cols) = level.dim();
    // the swapped layout: the transposed view is contiguous, `(cols, rows)` row-major
    let transposed = level.t();
    if let Some(src) = transposed.as_slice() {
        transpose_tiles(src, cols, rows, order, dst);
        return;
    }
    for (i, out) in dst.chunks_exact_mut(cols).enumerate() {
        let row = match order {
            RowOrder::Kept => i,
            RowOrder::Reversed => rows - 1 - i,
        };
        for (value, slot) in level.row(row).iter().zip(out.iter_mut()) {
            slot.write(*value);
        }
    }
}

/// Writes the transpose of `src` (`src_rows × src_cols`, row-major) into `dst`
/// (`src_cols × src_rows`, row-major, its rows in `order`), [`TILE`] × [`TILE`] values at a
/// time.
fn transpose_tiles(
    src: &[f32],
    src_rows: usize,
    src_cols: usize,
    order: RowOrder,
    dst: &mut [MaybeUninit<f32>],
) {
    debug_assert_eq!(src.len(), src_rows * src_cols);
    debug_assert_eq!(dst.len(), src_rows * src_cols);
    for c0 in (0..src_cols).step_by(TILE) {
        let c1 = (c0 + TILE).min(src_cols);
        for r0 in (0..src_rows).step_by(TILE) {
            let r1 = (r0 + TILE).min(src_rows);
            for c in c0..c1 {
                let row = match order {
                    RowOrder::Kept => c,
                    RowOrder::Reversed => src_cols - 1 - c,
                };
                let out = &mut dst[row * src_rows + r0..row * src_rows + r1];
                for (r, slot) in (r0..r1).zip(out.iter_mut()) {
                    slot.write(src[r * src_cols + c]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, ShapeBuilder};

    /// Distinct values, so that any misplaced one shows.
    fn numbered(shape: (usize, usize, usize)) -> Array3<f32> {
        let n = shape.0 * shape.1 * shape.2;
        Array::from_shape_vec(shape, (0..n).map(|i| i as f32 * 0.5 - 7.0).collect()).unwrap()
    }

    fn bits(a: &Array3<f32>) -> Vec<u32> {
        a.iter().map(|v| v.to_bits()).collect()
    }

    /// The generic copy, rows in `order`.
    fn expected(view: &Array3<f32>, order: RowOrder) -> Array3<f32> {
        let mut copy = view.as_standard_layout().into_owned();
        if order == RowOrder::Reversed {
            copy.invert_axis(Axis(1));
            copy = copy.as_standard_layout().into_owned();
        }
        copy
    }

    #[test]
    fn swapped_axes_are_transposed_exactly_at_sizes_around_the_tile() {
        for &(levels, rows, cols) in &[(2, 2, 2), (2, 3, 5), (3, 31, 33), (2, 64, 32), (1, 65, 97)]
        {
            for order in [RowOrder::Kept, RowOrder::Reversed] {
                // stored (level, col, row): the read view swaps the last two axes
                let stored = numbered((levels, cols, rows));
                let view = stored.permuted_axes([0, 2, 1]);
                assert!(!view.is_standard_layout());
                let want = expected(&view, order);
                let copy = into_standard_layout(view, order);
                assert!(copy.is_standard_layout());
                assert_eq!(copy.dim(), (levels, rows, cols));
                assert_eq!(bits(&copy), bits(&want), "{levels}×{rows}×{cols} {order:?}");
            }
        }
    }

    #[test]
    fn other_layouts_fall_back_to_the_generic_copy() {
        // level axis last in storage: neither standard nor a swapped pair
        for order in [RowOrder::Kept, RowOrder::Reversed] {
            let stored = numbered((4, 5, 3));
            let view = stored.permuted_axes([2, 0, 1]);
            let want = expected(&view, order);
            assert_eq!(bits(&into_standard_layout(view, order)), bits(&want));
            // column-major (Fortran) order
            let values = (0..24).map(|i| i as f32).collect();
            let fortran = Array3::from_shape_vec((2, 3, 4).f(), values).unwrap();
            let want = expected(&fortran, order);
            assert_eq!(bits(&into_standard_layout(fortran, order)), bits(&want));
        }
    }

    #[test]
    fn a_standard_array_is_returned_without_a_copy() {
        let data = numbered((2, 3, 4));
        let address = data.as_ptr();
        assert!(data.is_standard_layout());
        // a standard array keeps its rows: nothing is copied, whatever the order asked
        let same = into_standard_layout(data, RowOrder::Reversed);
        assert_eq!(same.as_ptr(), address);
    }
}
