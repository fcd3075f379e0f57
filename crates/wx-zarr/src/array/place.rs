//! The pure geometry of a [`Selection`] over a regular chunk grid: the chunks it touches, whether
//! one chunk already is the result, and where each selected element of a chunk goes in the
//! (C-order) output, element by element ([`scatter`]) or as runs contiguous in both
//! ([`runs_of`], [`place_runs`]).

use super::Selection;
use crate::decode::Run;

/// The indices of every chunk a selection touches, last dimension fastest.
pub(super) fn chunks_of(
    chunk_shape: &[u64],
    shape: &[u64],
    selection: &[Selection],
) -> Vec<Vec<u64>> {
    let per_dim: Vec<Vec<u64>> = selection
        .iter()
        .enumerate()
        .map(|(d, sel)| {
            let c = chunk_shape[d].max(1);
            let mut idx: Vec<u64> = match sel {
                Selection::Index(i) => vec![i / c],
                Selection::Indices(v) => v.iter().map(|i| i / c).collect(),
                Selection::All => (0..shape[d].div_ceil(c)).collect(),
            };
            idx.sort_unstable();
            idx.dedup();
            idx
        })
        .collect();
    cartesian(&per_dim)
}

/// All combinations of one entry per dimension, last dimension fastest.
pub(super) fn cartesian(per_dim: &[Vec<u64>]) -> Vec<Vec<u64>> {
    let mut out: Vec<Vec<u64>> = vec![Vec::with_capacity(per_dim.len())];
    for options in per_dim {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                options.iter().map(move |o| {
                    let mut p = prefix.clone();
                    p.push(*o);
                    p
                })
            })
            .collect();
    }
    out
}

/// Whether the one chunk a selection touches holds exactly the selection, in order: along
/// every dimension the chunk spans the whole array and the selection takes every index in
/// order, or the chunk is one element thick and the selection is that index.
pub(super) fn chunk_is_selection(
    chunk_shape: &[u64],
    array_shape: &[u64],
    selection: &[Selection],
) -> bool {
    chunk_shape
        .iter()
        .zip(array_shape)
        .zip(selection)
        .all(|((&c, &n), sel)| match sel {
            Selection::Index(_) => c == 1,
            Selection::All => c == n,
            Selection::Indices(v) => {
                c == n && v.len() as u64 == n && v.iter().enumerate().all(|(k, &i)| i == k as u64)
            }
        })
}

/// The runs a selection copies out of one chunk into the (C-order) output: the elements
/// [`scatter`] places, as maximal stretches contiguous in both, in output order along the
/// selection's own order (output offsets increase when every selection keeps its indices
/// ascending).
pub(super) fn runs_of(
    out_shape: &[usize],
    chunk_shape: &[u64],
    chunk_indices: &[u64],
    array_shape: &[u64],
    selection: &[Selection],
) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    visit_rows(
        out_shape,
        chunk_shape,
        chunk_indices,
        array_shape,
        selection,
        |chunk, out, len| match runs.last_mut() {
            Some(last) if last.chunk + last.len == chunk && last.out + last.len == out => {
                last.len += len;
            }
            _ => runs.push(Run { chunk, out, len }),
        },
    );
    runs
}

/// Whether `runs`, concatenated, are an output of `out_len` elements in order.
pub(super) fn in_output_order(runs: &[Run], out_len: usize) -> bool {
    let mut next = 0usize;
    for run in runs {
        if run.out != next {
            return false;
        }
        next += run.len;
    }
    next == out_len
}

/// Places the elements of `runs`, decoded and concatenated in `values`, into the output.
pub(super) fn place_runs<T: Copy>(out: &mut [T], values: &[T], runs: &[Run]) {
    let mut at = 0usize;
    for run in runs {
        out[run.out..run.out + run.len].copy_from_slice(&values[at..at + run.len]);
        at += run.len;
    }
}

/// Copies the selected elements of one decoded chunk into the (C-order) output.
pub(super) fn scatter<T: Copy>(
    out: &mut [T],
    out_shape: &[usize],
    chunk: &[T],
    chunk_shape: &[u64],
    chunk_indices: &[u64],
    array_shape: &[u64],
    selection: &[Selection],
) {
    visit_rows(
        out_shape,
        chunk_shape,
        chunk_indices,
        array_shape,
        selection,
        |c, o, n| out[o..o + n].copy_from_slice(&chunk[c..c + n]),
    );
}

/// Calls `copy(chunk_offset, out_offset, len)` for every stretch of the selected elements of
/// one chunk that is contiguous in the chunk and in the (C-order) output: whole runs of the
/// last dimension when its selection is contiguous (the usual case: whole longitude rows),
/// single elements otherwise; leading dimensions in the selection's order.
fn visit_rows(
    out_shape: &[usize],
    chunk_shape: &[u64],
    chunk_indices: &[u64],
    array_shape: &[u64],
    selection: &[Selection],
    mut copy: impl FnMut(usize, usize, usize),
) {
    let ndim = chunk_shape.len();
    if ndim == 0 {
        copy(0, 0, 1);
        return;
    }
    // (output position along the kept axis or None, position inside the chunk) per dimension
    let pairs: Vec<Vec<(Option<usize>, usize)>> = (0..ndim)
        .map(|d| {
            let c = chunk_shape[d];
            let start = chunk_indices[d] * c;
            let end = (start + c).min(array_shape[d]);
            match &selection[d] {
                Selection::Index(i) => vec![(None, (i - start) as usize)],
                Selection::Indices(v) => v
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| (start..end).contains(*i))
                    .map(|(k, i)| (Some(k), (i - start) as usize))
                    .collect(),
                Selection::All => (start..end)
                    .map(|i| (Some(i as usize), (i - start) as usize))
                    .collect(),
            }
        })
        .collect();
    if pairs.iter().any(Vec::is_empty) {
        return;
    }
    let mut chunk_strides = vec![1usize; ndim];
    for d in (0..ndim.saturating_sub(1)).rev() {
        chunk_strides[d] = chunk_strides[d + 1] * chunk_shape[d + 1] as usize;
    }
    // strides of the output, indexed by array dimension (0 for dropped dimensions)
    let mut out_strides = vec![0usize; ndim];
    {
        let mut stride = 1usize;
        let mut axis = out_shape.len();
        for d in (0..ndim).rev() {
            if !matches!(selection[d], Selection::Index(_)) {
                axis -= 1;
                out_strides[d] = stride;
                stride *= out_shape[axis];
            }
        }
    }
    // The last dimension is copied as runs when its selection is contiguous (the usual case:
    // whole longitude rows), element by element otherwise.
    let last = ndim - 1;
    let contiguous = pairs[last]
        .windows(2)
        .all(|w| w[1].1 == w[0].1 + 1 && w[1].0.zip(w[0].0).is_none_or(|(b, a)| b == a + 1));
    let mut counter = vec![0usize; ndim];
    loop {
        let mut in_off = 0;
        let mut out_off = 0;
        for d in 0..last {
            let (o, i) = pairs[d][counter[d]];
            in_off += i * chunk_strides[d];
            out_off += o.unwrap_or(0) * out_strides[d];
        }
        if contiguous {
            let (o, i) = pairs[last][0];
            let n = pairs[last].len();
            copy(in_off + i, out_off + o.unwrap_or(0) * out_strides[last], n);
        } else {
            for (o, i) in &pairs[last] {
                copy(in_off + i, out_off + o.unwrap_or(0) * out_strides[last], 1);
            }
        }
        // advance the odometer over the leading dimensions
        let mut d = last;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            counter[d] += 1;
            if counter[d] < pairs[d].len() {
                break;
            }
            counter[d] = 0;
        }
    }
}
