//! Unit tests of the selection geometry: chunks touched, scatter and runs placing the same
//! elements, the copy-free cases.

use super::place::*;
use super::*;
use crate::decode::Run;

#[test]
fn scatter_places_selected_elements() {
    // array 4x5 in chunks of 2x3; chunk (1, 1) covers rows 2..4, cols 3..5 (col 5 padding)
    let chunk: Vec<i32> = (0..6).collect(); // [[0,1,2],[3,4,5]]
    let shape = [4u64, 5];
    let mut out = vec![-1; 20];
    scatter(
        &mut out,
        &[4, 5],
        &chunk,
        &[2, 3],
        &[1, 1],
        &shape,
        &[Selection::All, Selection::All],
    );
    assert_eq!(out[2 * 5 + 3], 0);
    assert_eq!(out[2 * 5 + 4], 1);
    assert_eq!(out[3 * 5 + 3], 3);
    assert_eq!(out[3 * 5 + 4], 4);
    assert_eq!(out.iter().filter(|v| **v == -1).count(), 16);

    // one row dropped, columns picked in reverse order
    let mut out = vec![-1; 2];
    scatter(
        &mut out,
        &[2],
        &chunk,
        &[2, 3],
        &[1, 1],
        &shape,
        &[Selection::Index(3), Selection::Indices(vec![4, 3])],
    );
    assert_eq!(out, vec![4, 3]);

    // a column dropped, rows kept: the last kept axis is not contiguous in the chunk
    let mut out = vec![-1; 4];
    scatter(
        &mut out,
        &[4],
        &chunk,
        &[2, 3],
        &[1, 1],
        &shape,
        &[Selection::All, Selection::Index(4)],
    );
    assert_eq!(out, vec![-1, -1, 1, 4]);
}

#[test]
fn a_chunk_is_the_selection_only_when_it_holds_exactly_it_in_order() {
    use Selection::*;
    let array = [8u64, 13, 36, 72];
    let chunk = [1u64, 13, 36, 72];
    let levels: Vec<u64> = (0..13).collect();
    assert!(chunk_is_selection(
        &chunk,
        &array,
        &[Index(2), All, All, All]
    ));
    assert!(chunk_is_selection(
        &chunk,
        &array,
        &[Index(2), Indices(levels.clone()), All, All]
    ));
    // levels reordered or a subset of them, several times, a chunk wider than one time,
    // a chunk that does not span the grid
    let mut swapped = levels.clone();
    swapped.swap(0, 1);
    assert!(!chunk_is_selection(
        &chunk,
        &array,
        &[Index(2), Indices(swapped), All, All]
    ));
    assert!(!chunk_is_selection(
        &chunk,
        &array,
        &[Index(2), Index(0), All, All]
    ));
    assert!(!chunk_is_selection(&chunk, &array, &[All, All, All, All]));
    assert!(!chunk_is_selection(
        &[2, 13, 36, 72],
        &array,
        &[Index(2), All, All, All]
    ));
    assert!(!chunk_is_selection(
        &[1, 13, 18, 72],
        &array,
        &[Index(2), All, All, All]
    ));
}

#[test]
fn runs_place_exactly_what_scatter_places() {
    use Selection::*;
    // array 3 x 7 x 5 x 6 in chunks of 1 x 7 x 5 x 6 (an ARCO-like chunk of every level),
    // and in chunks of 2 x 3 x 2 x 4 (partial chunks at the edges)
    let shape = [3u64, 7, 5, 6];
    let selections = [
        vec![Index(1), Indices(vec![1, 2, 4, 6]), All, All],
        vec![Index(2), Indices(vec![6, 0, 3]), All, All],
        vec![Index(0), Indices(vec![2, 2]), All, Indices(vec![1, 2, 3])],
        vec![Indices(vec![0, 2]), All, Index(4), Indices(vec![5, 0])],
        vec![All, All, All, All],
        vec![Index(1), Index(3), All, Index(2)],
    ];
    for chunk_shape in [[1u64, 7, 5, 6], [2, 3, 2, 4]] {
        for selection in &selections {
            let out_shape: Vec<usize> = selection
                .iter()
                .zip(&shape)
                .filter_map(|(sel, n)| match sel {
                    Index(_) => None,
                    Indices(v) => Some(v.len()),
                    All => Some(*n as usize),
                })
                .collect();
            let out_len: usize = out_shape.iter().product();
            let (mut scattered, mut placed) = (vec![-1i64; out_len], vec![-1i64; out_len]);
            for ci in chunks_of(&chunk_shape, &shape, selection) {
                // element values name their chunk and position in it
                let n = chunk_shape.iter().product::<u64>() as i64;
                let base = ci.iter().fold(0i64, |a, c| a * 10 + *c as i64) * 1000;
                let chunk: Vec<i64> = (0..n).map(|k| base + k).collect();
                scatter(
                    &mut scattered,
                    &out_shape,
                    &chunk,
                    &chunk_shape,
                    &ci,
                    &shape,
                    selection,
                );
                let runs = runs_of(&out_shape, &chunk_shape, &ci, &shape, selection);
                let values: Vec<i64> = runs
                    .iter()
                    .flat_map(|r| chunk[r.chunk..r.chunk + r.len].to_vec())
                    .collect();
                place_runs(&mut placed, &values, &runs);
                // runs are maximal: two neighbours never continue each other in both
                for w in runs.windows(2) {
                    assert!(
                        w[0].chunk + w[0].len != w[1].chunk || w[0].out + w[0].len != w[1].out,
                        "{selection:?}: {runs:?}"
                    );
                }
            }
            assert_eq!(placed, scattered, "{chunk_shape:?} {selection:?}");
            assert!(scattered.iter().all(|v| *v >= 0), "{selection:?}");
        }
    }
    // the ARCO read: 4 levels of 7, each a run of a whole level (two neighbours merged)
    let runs = runs_of(
        &[4, 5, 6],
        &[1, 7, 5, 6],
        &[1, 0, 0, 0],
        &shape,
        &selections[0],
    );
    assert_eq!(
        runs,
        vec![
            Run {
                chunk: 30,
                out: 0,
                len: 60
            },
            Run {
                chunk: 120,
                out: 60,
                len: 30
            },
            Run {
                chunk: 180,
                out: 90,
                len: 30
            },
        ]
    );
    assert!(in_output_order(&runs, 120));
    assert!(!in_output_order(&runs, 121));
    // levels in another order than stored: still the output in order, one run per level
    let reordered = runs_of(
        &[3, 5, 6],
        &[1, 7, 5, 6],
        &[2, 0, 0, 0],
        &shape,
        &selections[1],
    );
    assert_eq!(
        reordered.iter().map(|r| r.chunk).collect::<Vec<_>>(),
        vec![180, 0, 90]
    );
    assert!(in_output_order(&reordered, 90));
    // one chunk of several holds a part of the output only
    let first_time = [Index(0), All, All, All];
    let part = runs_of(
        &[7, 5, 6],
        &[2, 3, 2, 4],
        &[0, 1, 0, 0],
        &shape,
        &first_time,
    );
    assert!(!in_output_order(&part, 210));
}

#[test]
fn cartesian_orders_last_fastest() {
    let c = cartesian(&[vec![0, 1], vec![5], vec![7, 8]]);
    assert_eq!(
        c,
        vec![vec![0, 5, 7], vec![0, 5, 8], vec![1, 5, 7], vec![1, 5, 8]]
    );
}
