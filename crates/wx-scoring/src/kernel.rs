//! The fused verification kernel: one pass over the data of forecast `f`,
//! truth `o` and optionally climatology `c` and reference `r`, producing every
//! weighted sum the metrics of docs/scoring.md §3 need.
//!
//! # Structure and determinism
//!
//! A field is processed row by row (a row = one latitude, so its cos-lat
//! weight is applied once per row, not once per point). Each row is read from
//! memory once; while it sits in L1/L2 it is swept by two (ERA5-shaped input)
//! to four (Day1-shaped input) short register-sized loops that each accumulate
//! a few sums in `f64` over [`LANES`] interleaved lanes (point `j` goes to lane
//! `j % LANES`). Lanes are combined in a fixed tree order at the end of the
//! row. Rows are computed in parallel with rayon but collected by index and
//! merged strictly in row order, so the result does not depend on the number
//! of threads. An AVX2+FMA build of the loops is chosen at run time; the
//! portable build performs the same IEEE operations (`f64::mul_add` is
//! correctly rounded like `vfmadd`), so both give identical bits (tested).
//!
//! Each loop also has a *dense* build without the finiteness tests, the ANDs
//! and the counters (it adds the row length to the counts instead). Real
//! fields are finite almost everywhere, so rows are first computed dense; if a
//! few witness sums (which hold a term for everything a mask tests) come out
//! non-finite, a mask would have excluded a point and the row is computed
//! again masked. An AND with an all-ones mask is the identity, so a row kept
//! from the dense build has the masked build's bits exactly (tested). `f64`
//! input near overflow is ruled out by a scan first ([`Float::all_moderate`]).
//! Non-finite values come in runs, so after a row that needed its masks the
//! next goes masked straight away, until a masked row excludes nothing: a
//! forecast that is NaN everywhere costs one masked pass per row, not two.
//!
//! # Pairwise finite masks (docs/scoring.md §3)
//!
//! Every group of sums has its own mask, applied branch-free by a bitwise AND
//! that turns masked lanes into `+0.0`: bias/MSE/MAE on (f, o); ACC on
//! (f, o, c); skill against a separate reference on (f, o, r) including the
//! bias used to correct `f`; clone distance and pattern correlation on (f, r);
//! the climatology's own error on (c, o). A pair is tested through its
//! difference (`f − o` is finite exactly when both are), the ACC triple through
//! `(f − c) + (o − c)`; these can only overflow for magnitudes near 1e308
//! (never for `f32` input), and such a forecast fails the extreme-value check.
//!
//! # Cancellation
//!
//! Centred quantities (error mean/variance, anomalies, raw fields for the
//! pattern correlation) are accumulated per row relative to a *shift*: the
//! value at the row's first point where the group's mask holds. Rows are turned
//! into centred moments and merged with Chan's update ([`crate::moments`]).
//! A constant anomaly field thus gives an exactly zero variance, and fields with
//! a large offset and tiny spread (q at 50 hPa) keep their full precision.
//! The bias-corrected MSE is the centred error moment (`MSE(f − b, o) =
//! Σw(e − ē)²/W`), never `Σw e²/W − b²`; for the skill against the climatology
//! it is `m2_a + m2_b − 2·c_ab` on the ACC mask, since `e = a − b`.

use ndarray::{ArrayView2, ArrayView3, CowArray, Ix2, Ix3};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ScoringError;
use crate::float::Float;
use crate::moments::{CoMoments, Moments};

pub use crate::lanes::LANES;
use crate::lanes::{P, Simd, hmax, hsum};

/// The reference a skill score is computed against.
#[derive(Debug, Clone, Copy)]
pub enum Reference<'a, T> {
    /// Use the climatology field itself (ERA5: `SS_clim`), on the (f, o, c) mask.
    Climatology,
    /// A separate reference field, e.g. the GFS forecast (Day1), on the (f, o, r)
    /// mask. Clone distance and pattern correlation are computed against it too.
    Field(ArrayView2<'a, T>),
}

/// The fields of one 2-D (lat, lon) comparison, all on the same grid.
#[derive(Debug, Clone, Copy)]
pub struct FieldInputs<'a, T> {
    /// Forecast `f`.
    pub forecast: ArrayView2<'a, T>,
    /// Truth `o` (analysis / reanalysis).
    pub truth: ArrayView2<'a, T>,
    /// Climatology `c` (enables ACC and the climatology's own RMSE).
    pub climatology: Option<ArrayView2<'a, T>>,
    /// Reference for the skill score (enables skill; a [`Reference::Field`]
    /// also enables clone distance and pattern correlation).
    pub reference: Option<Reference<'a, T>>,
}

impl<'a, T> FieldInputs<'a, T> {
    /// Forecast and truth only (bias, MSE, RMSE, MAE, coverage).
    pub fn new(forecast: ArrayView2<'a, T>, truth: ArrayView2<'a, T>) -> Self {
        Self {
            forecast,
            truth,
            climatology: None,
            reference: None,
        }
    }

    /// Add a climatology.
    pub fn with_climatology(mut self, c: ArrayView2<'a, T>) -> Self {
        self.climatology = Some(c);
        self
    }

    /// Add a reference for the skill score.
    pub fn with_reference(mut self, r: Reference<'a, T>) -> Self {
        self.reference = Some(r);
        self
    }
}

/// The fields of a multi-level comparison, `(level, lat, lon)`.
#[derive(Debug, Clone, Copy)]
pub struct StackInputs<'a, T> {
    /// Forecast `f`.
    pub forecast: ArrayView3<'a, T>,
    /// Truth `o`.
    pub truth: ArrayView3<'a, T>,
    /// Climatology `c`.
    pub climatology: Option<ArrayView3<'a, T>>,
    /// Whether the skill reference is the climatology (the only reference
    /// supported for stacks, as in ERA5 scoring).
    pub skill_vs_climatology: bool,
}

/// Sums over the (f, o, c) mask for ACC and the climatology skill.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct AnomalySums {
    /// Moments of the anomalies a = f − c (x) and b = o − c (y).
    pub anomalies: CoMoments,
    /// Σw·f² (for the RMS of the raw forecast in the ACC floor).
    pub sum_sq_forecast: f64,
    /// Σw·o² (for the RMS of the raw truth in the ACC floor).
    pub sum_sq_truth: f64,
}

/// Sums over the (c, o) mask: the climatology's own error.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ClimatologySums {
    /// Σw.
    pub w: f64,
    /// Σw·(c − o)².
    pub sum_sq_error: f64,
}

/// Sums over the (f, o, r) mask for the skill against a separate reference.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ReferenceSums {
    /// Moments of the forecast error e = f − o.
    pub error: Moments,
    /// Σw·(r − o)².
    pub sum_sq_reference_error: f64,
}

/// Sums over the (f, r) mask: clone distance and pattern correlation.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PatternSums {
    /// Moments of the raw fields f (x) and r (y).
    pub fields: CoMoments,
    /// Σw·(f − r)².
    pub sum_sq_difference: f64,
}

/// Every weighted sum of one field comparison (the output of the fused kernel).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct FieldSums {
    /// Number of points where the truth is finite.
    pub n_truth: u64,
    /// Number of points where forecast and truth are both finite.
    pub n_pairs: u64,
    /// Largest |f| over non-NaN forecast values (±inf included); 0 if none.
    pub max_abs_forecast: f64,
    /// Moments of e = f − o over the (f, o) mask.
    pub error: Moments,
    /// Σw·|e| over the (f, o) mask.
    pub sum_abs_error: f64,
    /// Present when a climatology was given.
    pub anomaly: Option<AnomalySums>,
    /// Present when a climatology was given.
    pub climatology: Option<ClimatologySums>,
    /// Present when a separate reference field was given.
    pub reference: Option<ReferenceSums>,
    /// Present when a separate reference field was given.
    pub pattern: Option<PatternSums>,
    /// Whether the skill reference is the climatology.
    pub skill_vs_climatology: bool,
}

/// Per-row result, already weighted and centred.
#[derive(Debug, Clone, Copy, Default)]
struct RowStats {
    n_o: f64,
    n_fo: f64,
    max_f: f64,
    err: Moments,
    abs_err: f64,
    anom: CoMoments,
    sff: f64,
    soo: f64,
    clim_w: f64,
    clim_sq: f64,
    ref_err: Moments,
    ref_sq: f64,
    pat: CoMoments,
    pat_sq: f64,
    /// Set by a dense pass that met a value its masks would have excluded:
    /// the row must be computed again with the masked build.
    needs_masks: bool,
}

impl RowStats {
    /// After a dense pass: its *witness* sums hold, between them, a term for
    /// every quantity a mask of the pass tests (e.g. `Σ(e − k)` for the (f, o)
    /// mask). A non-finite term makes its sum non-finite, and nothing turns a
    /// non-finite sum finite again, so finite witnesses prove that every mask
    /// of the row was all ones.
    #[inline(always)]
    fn check_dense<const DENSE: bool>(&mut self, witnesses: &[f64]) {
        if DENSE && witnesses.iter().any(|x| !x.is_finite()) {
            self.needs_masks = true;
        }
    }

    fn merge(&mut self, o: &RowStats) {
        self.n_o += o.n_o;
        self.n_fo += o.n_fo;
        self.max_f = self.max_f.max(o.max_f);
        self.err.merge(&o.err);
        self.abs_err += o.abs_err;
        self.anom.merge(&o.anom);
        self.sff += o.sff;
        self.soo += o.soo;
        self.clim_w += o.clim_w;
        self.clim_sq += o.clim_sq;
        self.ref_err.merge(&o.ref_err);
        self.ref_sq += o.ref_sq;
        self.pat.merge(&o.pat);
        self.pat_sq += o.pat_sq;
    }
}

/// Per-row shifts (see module docs).
#[derive(Clone, Copy, Default)]
struct Shifts {
    e: f64,
    a: f64,
    b: f64,
    f: f64,
    r: f64,
}

/// The row's first point satisfying each group's mask, tested exactly like
/// the masks (through differences), gives the shifts.
#[inline(always)]
fn find_shifts<T: Float, const C: bool, const R: bool>(
    f: &[T],
    o: &[T],
    c: &[T],
    r: &[T],
) -> Shifts {
    let d = |x: &[T], y: &[T], j: usize| x[j].to_f64() - y[j].to_f64();
    let mut k = Shifts::default();
    if let Some(j) = (0..f.len()).find(|&j| d(f, o, j).is_finite()) {
        k.e = d(f, o, j);
    }
    if C && let Some(j) = (0..f.len()).find(|&j| (d(f, c, j) + d(o, c, j)).is_finite()) {
        k.a = d(f, c, j);
        k.b = d(o, c, j);
    }
    if R && let Some(j) = (0..f.len()).find(|&j| d(f, r, j).is_finite()) {
        k.f = f[j].to_f64();
        k.r = r[j].to_f64();
    }
    k
}

/// Run `$body` on the `LANES`-wide chunks of equally long columns, binding
/// each column's chunk (`&[T; LANES]`) to the given name; a trailing partial
/// chunk is padded with NaN (so it is masked out) and processed first. A macro
/// rather than a closure: closures do not inherit `#[target_feature]`, which
/// would stop the AVX2 intrinsics from inlining.
///
/// `$j` is bound to the index of the chunk's first point in the row, and
/// `$masked` to whether the chunk must be masked: always for the
/// padded chunk, and in the main loop unless `$dense` (the caller checked that
/// every value of the row is finite, so every mask would be all ones). Both are
/// compile-time constants in the main loop, so the dense build has no mask code.
macro_rules! each_chunk {
    ($dense:expr, [$($col:ident),+] => |$masked:ident, $j:ident| $body:block) => {{
        let n = [$($col.len()),+][0];
        // Re-slice every column to exactly `n` so the optimiser can drop the
        // per-chunk bounds checks.
        $(let $col = &$col[..n];)+
        let full = n / LANES * LANES;
        // The partial chunk goes first, so that nothing but the accumulators
        // is live after the main loop (this keeps them all in registers).
        if full < n {
            $(
                let mut pad = [T::NAN; LANES];
                pad[..n - full].copy_from_slice(&$col[full..n]);
                let $col = &pad;
            )+
            let $masked = true;
            let $j = full;
            $body
        }
        let mut j = 0;
        while j < full {
            $(let $col: &[_; LANES] = $col[j..j + LANES].try_into().expect("LANES-wide chunk");)+
            let $masked = !$dense;
            let $j = j;
            $body
            j += LANES;
        }
    }};
}

/// The next row of up to four input columns, fetched into the cache while the
/// current row is being computed. Without it one thread alternates between
/// waiting for a row to arrive from memory and computing on it; with it the
/// reads overlap the arithmetic. Unused slots repeat a current row (a hint for
/// data already cached costs next to nothing).
#[derive(Clone, Copy)]
struct Ahead<'a, T> {
    cols: [&'a [T]; 4],
}

impl<T: Float> Ahead<'_, T> {
    /// Hint the cache line of every column's point `j` (several hints per line: cheaper
    /// than a branch, and they use the load ports, which the arithmetic leaves idle).
    #[inline(always)]
    fn touch(&self, j: usize) {
        for col in self.cols {
            prefetch(col.as_ptr().wrapping_add(j));
        }
    }
}

/// A cache prefetch hint. It never faults, whatever the address.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is part of SSE (baseline on x86-64), does not
    // access memory architecturally and cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(p as *const i8)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The mask of `x`'s finite lanes, or `None` when the chunk needs no mask.
#[inline(always)]
fn finite_if<S: Simd>(masked: bool, x: S) -> Option<S::M> {
    masked.then(|| x.finite())
}

/// `x` with masked-out lanes set to `+0.0` (unchanged without a mask).
#[inline(always)]
fn keep<S: Simd>(x: S, m: Option<S::M>) -> S {
    match m {
        Some(m) => x.and(m),
        None => x,
    }
}

/// Add the mask's set lanes to a counter (nothing without a mask: the
/// unmasked points are added by [`dense_count`]).
#[inline(always)]
fn count_if<S: Simd>(c: S::I, m: Option<S::M>) -> S::I {
    match m {
        Some(m) => S::count(c, m),
        None => c,
    }
}

/// The points of a row's full chunks, which a dense pass does not count one by one.
#[inline(always)]
fn dense_count<const DENSE: bool>(row_len: usize) -> u64 {
    if DENSE {
        (row_len / LANES * LANES) as u64
    } else {
        0
    }
}

// The row is processed in a few passes, each with at most ~7 accumulators so
// they all stay in registers (one pass with every accumulator spilled them to
// the stack, and the store-to-load latency dominated). The passes re-read the
// row from L1/L2; it is still read from memory once.

/// (f, o): counts, max |f|, shifted error sums, |error| sum. Used when there
/// is no climatology.
#[inline(always)]
fn pass_error<S: Simd, T: Float, const DENSE: bool>(
    row: &Row<'_, T>,
    k: &Shifts,
    s: &mut RowStats,
) {
    let (Row { f, o, w, ahead, .. }, ke) = (*row, k.e);
    let kev = S::splat(ke);
    let (mut n_o, mut n_fo) = (S::izero(), S::izero());
    let (mut max_f, mut se, mut see, mut sae) = (S::zero(), S::zero(), S::zero(), S::zero());
    each_chunk!(DENSE, [f, o] => |masked, j| {
        ahead.touch(j);
        let fv = S::load(f);
        let ov = S::load(o);
        let e = fv.sub(ov);
        // f − o is finite exactly when both are (see the module docs on overflow).
        let mfo = finite_if(masked, e);
        n_o = count_if::<S>(n_o, finite_if(masked, ov));
        n_fo = count_if::<S>(n_fo, mfo);
        // |f| with NaN lanes ignored by the comparison; ±inf counts as extreme.
        max_f = max_f.max_acc(fv.abs());
        let es = keep(e.sub(kev), mfo);
        se = se.add(es);
        see = es.fma(es, see);
        sae = sae.add(keep(e.abs(), mfo));
    });
    let dense = dense_count::<DENSE>(f.len());
    s.n_o = (S::itotal(n_o) + dense) as f64;
    s.n_fo = (S::itotal(n_fo) + dense) as f64;
    s.max_f = hmax(max_f);
    s.err = Moments::from_shifted(w, s.n_fo, ke, hsum(se), hsum(see));
    s.abs_err = w * hsum(sae);
    s.check_dense::<DENSE>(&[hsum(se)]);
}

/// (f, o, c): everything of [`pass_error`] except the truth count and max |f|
/// (done in [`pass_anomaly`] to balance registers) plus the climatology's own error on
/// (c, o) and the raw squares Σf², Σo² on (f, o, c) for the ACC floor.
#[inline(always)]
fn pass_error_clim<S: Simd, T: Float, const DENSE: bool>(
    row: &Row<'_, T>,
    k: &Shifts,
    s: &mut RowStats,
) {
    let (
        Row {
            f, o, c, w, ahead, ..
        },
        ke,
    ) = (*row, k.e);
    let kev = S::splat(ke);
    let (mut n_fo, mut n_co) = (S::izero(), S::izero());
    let (mut se, mut see, mut sae) = (S::zero(), S::zero(), S::zero());
    let (mut scc, mut sff, mut soo) = (S::zero(), S::zero(), S::zero());
    each_chunk!(DENSE, [f, o, c] => |masked, j| {
        ahead.touch(j);
        let fv = S::load(f);
        let ov = S::load(o);
        let cv = S::load(c);
        let e = fv.sub(ov);
        let mfo = finite_if(masked, e);
        n_fo = count_if::<S>(n_fo, mfo);
        let es = keep(e.sub(kev), mfo);
        se = se.add(es);
        see = es.fma(es, see);
        sae = sae.add(keep(e.abs(), mfo));
        let d = cv.sub(ov);
        let mco = finite_if(masked, d);
        n_co = count_if::<S>(n_co, mco);
        let dz = keep(d, mco);
        scc = dz.fma(dz, scc);
        let mfoc = mfo.zip(mco).map(|(a, b)| S::mand(a, b));
        let fz = keep(fv, mfoc);
        let oz = keep(ov, mfoc);
        sff = fz.fma(fz, sff);
        soo = oz.fma(oz, soo);
    });
    let dense = dense_count::<DENSE>(f.len());
    s.n_fo = (S::itotal(n_fo) + dense) as f64;
    s.err = Moments::from_shifted(w, s.n_fo, ke, hsum(se), hsum(see));
    s.abs_err = w * hsum(sae);
    s.clim_w = w * (S::itotal(n_co) + dense) as f64;
    s.clim_sq = w * hsum(scc);
    s.sff = w * hsum(sff);
    s.soo = w * hsum(soo);
    s.check_dense::<DENSE>(&[hsum(se), hsum(scc)]);
}

/// (f, o, c): shifted anomaly moments; and the number of finite truth points and max |f|.
#[inline(always)]
fn pass_anomaly<S: Simd, T: Float, const DENSE: bool>(
    row: &Row<'_, T>,
    k: &Shifts,
    s: &mut RowStats,
) {
    let (Row { f, o, c, w, .. }, ka, kb) = (*row, k.a, k.b);
    let (kav, kbv) = (S::splat(ka), S::splat(kb));
    let (mut n, mut n_o) = (S::izero(), S::izero());
    let mut max_f = S::zero();
    let (mut sa, mut sb, mut saa, mut sbb, mut sab) =
        (S::zero(), S::zero(), S::zero(), S::zero(), S::zero());
    each_chunk!(DENSE, [f, o, c] => |masked, _j| {
        let fv = S::load(f);
        let ov = S::load(o);
        let cv = S::load(c);
        let a = fv.sub(cv);
        let b = ov.sub(cv);
        // a + b is finite exactly when a and b are (no overflow for values
        // that pass the extreme-value check): one test instead of two.
        let m = finite_if(masked, a.add(b));
        n = count_if::<S>(n, m);
        n_o = count_if::<S>(n_o, finite_if(masked, ov));
        max_f = max_f.max_acc(fv.abs());
        let a = keep(a.sub(kav), m);
        let b = keep(b.sub(kbv), m);
        sa = sa.add(a);
        sb = sb.add(b);
        saa = a.fma(a, saa);
        sbb = b.fma(b, sbb);
        sab = a.fma(b, sab);
    });
    let dense = dense_count::<DENSE>(f.len());
    s.n_o = (S::itotal(n_o) + dense) as f64;
    s.max_f = hmax(max_f);
    s.anom = CoMoments::from_shifted(
        w,
        (S::itotal(n) + dense) as f64,
        ka,
        kb,
        hsum(sa),
        hsum(sb),
        hsum(saa),
        hsum(sbb),
        hsum(sab),
    );
    s.check_dense::<DENSE>(&[hsum(sa), hsum(sb)]);
}

/// (f, o, r): shifted error sums and the reference's squared error.
#[inline(always)]
fn pass_reference<S: Simd, T: Float, const DENSE: bool>(
    row: &Row<'_, T>,
    k: &Shifts,
    s: &mut RowStats,
) {
    let (Row { f, o, r, w, .. }, ke) = (*row, k.e);
    let kev = S::splat(ke);
    let mut n = S::izero();
    let (mut se, mut see, mut srr) = (S::zero(), S::zero(), S::zero());
    each_chunk!(DENSE, [f, o, r] => |masked, _j| {
        let fv = S::load(f);
        let ov = S::load(o);
        let rv = S::load(r);
        let e = fv.sub(ov);
        let d = rv.sub(ov);
        let m = masked.then(|| S::mand(e.finite(), d.finite()));
        n = count_if::<S>(n, m);
        let e = keep(e.sub(kev), m);
        se = se.add(e);
        see = e.fma(e, see);
        let d = keep(d, m);
        srr = d.fma(d, srr);
    });
    let n = S::itotal(n) + dense_count::<DENSE>(f.len());
    s.ref_err = Moments::from_shifted(w, n as f64, ke, hsum(se), hsum(see));
    s.ref_sq = w * hsum(srr);
    s.check_dense::<DENSE>(&[hsum(se), hsum(srr)]);
}

/// (f, r): shifted raw-field moments and the clone distance sum.
#[inline(always)]
fn pass_pattern<S: Simd, T: Float, const DENSE: bool>(
    row: &Row<'_, T>,
    k: &Shifts,
    s: &mut RowStats,
) {
    let (Row { f, r, w, .. }, kf, kr) = (*row, k.f, k.r);
    let (kfv, krv) = (S::splat(kf), S::splat(kr));
    let mut n = S::izero();
    let (mut sd, mut sf, mut sr, mut sf2, mut sr2, mut sfr) = (
        S::zero(),
        S::zero(),
        S::zero(),
        S::zero(),
        S::zero(),
        S::zero(),
    );
    each_chunk!(DENSE, [f, r] => |masked, _j| {
        let fv = S::load(f);
        let rv = S::load(r);
        let dd = fv.sub(rv);
        let m = finite_if(masked, dd);
        n = count_if::<S>(n, m);
        let dd = keep(dd, m);
        sd = dd.fma(dd, sd);
        let fs = keep(fv.sub(kfv), m);
        let rs = keep(rv.sub(krv), m);
        sf = sf.add(fs);
        sr = sr.add(rs);
        sf2 = fs.fma(fs, sf2);
        sr2 = rs.fma(rs, sr2);
        sfr = fs.fma(rs, sfr);
    });
    s.pat = CoMoments::from_shifted(
        w,
        (S::itotal(n) + dense_count::<DENSE>(f.len())) as f64,
        kf,
        kr,
        hsum(sf),
        hsum(sr),
        hsum(sf2),
        hsum(sr2),
        hsum(sfr),
    );
    s.pat_sq = w * hsum(sd);
    s.check_dense::<DENSE>(&[hsum(sd)]);
}

/// The five passes with one code path, each in a masked and a dense build (`D`), and the
/// finiteness scan that chooses between them; [`Portable`] and [`Avx2`] implement it from one
/// list (see `passes!`). Each pass is a separate, non-inlined function so its accumulators get
/// the whole register file.
trait Passes {
    fn all_moderate<T: Float>(x: &[T]) -> bool;
    fn error<T: Float, const D: bool>(row: &Row<'_, T>, k: &Shifts, s: &mut RowStats);
    fn error_clim<T: Float, const D: bool>(row: &Row<'_, T>, k: &Shifts, s: &mut RowStats);
    fn anomaly<T: Float, const D: bool>(row: &Row<'_, T>, k: &Shifts, s: &mut RowStats);
    fn reference<T: Float, const D: bool>(row: &Row<'_, T>, k: &Shifts, s: &mut RowStats);
    fn pattern<T: Float, const D: bool>(row: &Row<'_, T>, k: &Shifts, s: &mut RowStats);
}

/// Portable passes (any CPU).
struct Portable;

/// AVX2 passes: the same code compiled with AVX2 and FMA enabled (the portable build's
/// `f64::mul_add` rounds like `vfmadd`, so the results are identical to [`Portable`]). Only
/// used after `is_x86_feature_detected!` checked both (see [`row_dispatch`]).
#[cfg(target_arch = "x86_64")]
struct Avx2;

/// Implements [`Passes`] for [`Portable`] (lanes `P`) and [`Avx2`] (lanes `A`, each pass
/// wrapped in a `#[target_feature]` function) from one list of `method => pass function`.
macro_rules! passes {
    ($($method:ident => $pass:ident),+ $(,)?) => {
        impl Passes for Portable {
            #[inline(never)]
            fn all_moderate<T: Float>(x: &[T]) -> bool {
                T::all_moderate(x)
            }
            $(
                #[inline(never)]
                fn $method<T: Float, const D: bool>(row: &Row<'_, T>, k: &Shifts, s: &mut RowStats) {
                    $pass::<P, T, D>(row, k, s)
                }
            )+
        }

        #[cfg(target_arch = "x86_64")]
        mod avx2_passes {
            use super::*;
            use crate::lanes::A;

            #[target_feature(enable = "avx2,fma")]
            pub(super) fn all_moderate<T: Float>(x: &[T]) -> bool {
                T::all_moderate(x)
            }
            $(
                #[target_feature(enable = "avx2,fma")]
                pub(super) fn $method<T: Float, const D: bool>(
                    row: &Row<'_, T>,
                    k: &Shifts,
                    s: &mut RowStats,
                ) {
                    $pass::<A, T, D>(row, k, s)
                }
            )+
        }

        // SAFETY (every method): `Avx2` is only used by `row_dispatch` after it has checked
        // that the CPU supports AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        impl Passes for Avx2 {
            fn all_moderate<T: Float>(x: &[T]) -> bool {
                unsafe { avx2_passes::all_moderate(x) }
            }
            $(
                fn $method<T: Float, const D: bool>(row: &Row<'_, T>, k: &Shifts, s: &mut RowStats) {
                    unsafe { avx2_passes::$method::<T, D>(row, k, s) }
                }
            )+
        }
    };
}

passes! {
    error => pass_error,
    error_clim => pass_error_clim,
    anomaly => pass_anomaly,
    reference => pass_reference,
    pattern => pass_pattern,
}

/// Which build of the kernel to run. The default (and only choice of the
/// public API) is the fastest one; every combination gives identical bits,
/// which the tests check through [`field_sums_impl`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodePath {
    /// Use the AVX2+FMA build when the CPU has both (otherwise the portable one).
    pub simd: bool,
    /// Use the unmasked build for rows whose values are all finite.
    pub dense_rows: bool,
}

impl CodePath {
    /// The fastest path: AVX2 when available, dense rows where possible.
    pub const FASTEST: CodePath = CodePath {
        simd: true,
        dense_rows: true,
    };
}

/// One row (latitude) of every input, with its weight and the rows to prefetch.
#[derive(Clone, Copy)]
struct Row<'a, T> {
    w: f64,
    f: &'a [T],
    o: &'a [T],
    /// Empty without a climatology.
    c: &'a [T],
    /// Empty without a reference field.
    r: &'a [T],
    ahead: Ahead<'a, T>,
}

fn row_impl<PS: Passes, T: Float, const C: bool, const R: bool>(
    row: &Row<'_, T>,
    dense_rows: bool,
    try_dense: &mut bool,
) -> RowStats {
    // Real fields are finite almost everywhere, so the dense build, which
    // skips the masks and counters, is tried first; a row where a mask would
    // have excluded a point is computed again with the masked build. For f64
    // input, values near overflow are ruled out by a scan first (see
    // `Float::all_moderate`): the sum of two of their differences can
    // overflow although both differences are finite.
    //
    // Non-finite values come in runs (a NaN forecast, a missing pole row), so
    // after a row that needed its masks the next one goes masked straight
    // away, and the dense build is tried again after a masked row in which
    // no forecast or truth value was excluded. `try_dense` carries that hint
    // from row to row; it only chooses between builds that give the same
    // bits, so it changes the cost, never the result.
    let dense = dense_rows
        && *try_dense
        && (T::DIFFERENCES_CANNOT_OVERFLOW
            || (PS::all_moderate(row.f)
                && PS::all_moderate(row.o)
                && (!C || PS::all_moderate(row.c))
                && (!R || PS::all_moderate(row.r))));
    if dense {
        let s = row_passes::<PS, T, C, R, true>(row);
        if !s.needs_masks {
            return s;
        }
        *try_dense = false;
        return row_passes::<PS, T, C, R, false>(row);
    }
    let s = row_passes::<PS, T, C, R, false>(row);
    let points = row.f.len() as f64;
    *try_dense = s.n_fo == points && s.n_o == points;
    s
}

#[inline(always)]
fn row_passes<PS: Passes, T: Float, const C: bool, const R: bool, const D: bool>(
    row: &Row<'_, T>,
) -> RowStats {
    let k = find_shifts::<T, C, R>(row.f, row.o, row.c, row.r);
    let mut s = RowStats::default();
    if C {
        PS::error_clim::<T, D>(row, &k, &mut s);
        PS::anomaly::<T, D>(row, &k, &mut s);
    } else {
        PS::error::<T, D>(row, &k, &mut s);
    }
    if R {
        PS::reference::<T, D>(row, &k, &mut s);
        PS::pattern::<T, D>(row, &k, &mut s);
    }
    s
}

#[inline]
fn row_dispatch<T: Float, const C: bool, const R: bool>(
    row: &Row<'_, T>,
    path: CodePath,
    try_dense: &mut bool,
) -> RowStats {
    #[cfg(target_arch = "x86_64")]
    if path.simd
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        return row_impl::<Avx2, T, C, R>(row, path.dense_rows, try_dense);
    }
    row_impl::<Portable, T, C, R>(row, path.dense_rows, try_dense)
}

/// Flat, row-major data of `nfields` stacked fields of `nlat × nlon`.
struct Flat<'a, T> {
    f: &'a [T],
    o: &'a [T],
    c: Option<&'a [T]>,
    r: Option<&'a [T]>,
    nlat: usize,
    nlon: usize,
    nfields: usize,
}

impl<'a, T> Flat<'a, T> {
    /// Row `i` (of all fields' rows) with weight `w`; it prefetches row `i + 1`.
    fn row(&self, i: usize, w: f64) -> Row<'a, T> {
        let nrows = self.nlat * self.nfields;
        let at = |col: &'a [T], i: usize| &col[i * self.nlon..(i + 1) * self.nlon];
        let (f, o) = (at(self.f, i), at(self.o, i));
        let c = self.c.map_or(&[][..], |c| at(c, i));
        let r = self.r.map_or(&[][..], |r| at(r, i));
        let next = (i + 1).min(nrows - 1);
        let ahead = |col: Option<&'a [T]>| col.map_or(f, |col| at(col, next));
        Row {
            w,
            f,
            o,
            c,
            r,
            ahead: Ahead {
                cols: [
                    ahead(Some(self.f)),
                    ahead(Some(self.o)),
                    ahead(self.c),
                    ahead(self.r),
                ],
            },
        }
    }
}

/// Rows per rayon task (a scheduling granularity only; results do not depend on it).
const ROWS_PER_TASK: usize = 4;

fn reduce<T: Float>(
    flat: &Flat<'_, T>,
    weights: &[f64],
    skill_vs_clim: bool,
    path: CodePath,
) -> Vec<FieldSums> {
    let nrows = flat.nlat * flat.nfields;
    let rows: Vec<RowStats> = (0..nrows)
        .into_par_iter()
        .with_min_len(ROWS_PER_TASK)
        // each rayon job starts by trying the dense build (see `row_impl`)
        .map_init(
            || true,
            |try_dense, i| {
                let row = flat.row(i, weights[i % flat.nlat]);
                match (flat.c.is_some(), flat.r.is_some()) {
                    (false, false) => row_dispatch::<T, false, false>(&row, path, try_dense),
                    (true, false) => row_dispatch::<T, true, false>(&row, path, try_dense),
                    (false, true) => row_dispatch::<T, false, true>(&row, path, try_dense),
                    (true, true) => row_dispatch::<T, true, true>(&row, path, try_dense),
                }
            },
        )
        .collect();
    rows.chunks(flat.nlat)
        .map(|field_rows| {
            let mut t = RowStats::default();
            for r in field_rows {
                t.merge(r);
            }
            FieldSums {
                n_truth: t.n_o as u64,
                n_pairs: t.n_fo as u64,
                max_abs_forecast: t.max_f,
                error: t.err,
                sum_abs_error: t.abs_err,
                anomaly: flat.c.map(|_| AnomalySums {
                    anomalies: t.anom,
                    sum_sq_forecast: t.sff,
                    sum_sq_truth: t.soo,
                }),
                climatology: flat.c.map(|_| ClimatologySums {
                    w: t.clim_w,
                    sum_sq_error: t.clim_sq,
                }),
                reference: flat.r.map(|_| ReferenceSums {
                    error: t.ref_err,
                    sum_sq_reference_error: t.ref_sq,
                }),
                pattern: flat.r.map(|_| PatternSums {
                    fields: t.pat,
                    sum_sq_difference: t.pat_sq,
                }),
                skill_vs_climatology: skill_vs_clim,
            }
        })
        .collect()
}

fn check_weights(w: &[f64]) -> Result<(), ScoringError> {
    if w.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
        return Err(ScoringError::Grid(
            "row weights must be finite and >= 0".into(),
        ));
    }
    Ok(())
}

fn check_shape(
    what: &'static str,
    expected: &[usize],
    found: &[usize],
) -> Result<(), ScoringError> {
    if expected != found {
        return Err(ScoringError::ShapeMismatch {
            what,
            expected: expected.to_vec(),
            found: found.to_vec(),
        });
    }
    Ok(())
}

fn std2<'a, T: Float>(v: &ArrayView2<'a, T>) -> CowArray<'a, T, Ix2> {
    if v.is_standard_layout() {
        CowArray::from(*v)
    } else {
        CowArray::from(v.as_standard_layout().into_owned())
    }
}

fn std3<'a, T: Float>(v: &ArrayView3<'a, T>) -> CowArray<'a, T, Ix3> {
    if v.is_standard_layout() {
        CowArray::from(*v)
    } else {
        CowArray::from(v.as_standard_layout().into_owned())
    }
}

/// Run the fused kernel on one 2-D field comparison.
///
/// `row_weights` has one weight per row (latitude), normally
/// [`crate::Grid::lat_weights`]. Runs on the current rayon pool; the result is
/// bit-identical for any number of threads.
pub fn field_sums<T: Float>(
    inputs: &FieldInputs<'_, T>,
    row_weights: &[f64],
) -> Result<FieldSums, ScoringError> {
    field_sums_impl(inputs, row_weights, CodePath::FASTEST)
}

/// [`field_sums`] with a choice of code path; every path must give identical
/// bits. Test hook, not API.
#[doc(hidden)]
pub fn field_sums_impl<T: Float>(
    inputs: &FieldInputs<'_, T>,
    row_weights: &[f64],
    path: CodePath,
) -> Result<FieldSums, ScoringError> {
    let shape = inputs.truth.shape().to_vec();
    if shape.contains(&0) {
        return Err(ScoringError::EmptyField {
            what: "truth",
            shape,
        });
    }
    check_shape("forecast", &shape, inputs.forecast.shape())?;
    if let Some(c) = &inputs.climatology {
        check_shape("climatology", &shape, c.shape())?;
    }
    let mut skill_vs_clim = false;
    let mut r_view = None;
    match &inputs.reference {
        Some(Reference::Field(r)) => {
            check_shape("reference", &shape, r.shape())?;
            r_view = Some(r);
        }
        Some(Reference::Climatology) => {
            if inputs.climatology.is_none() {
                return Err(ScoringError::ShapeMismatch {
                    what: "climatology (required by Reference::Climatology)",
                    expected: shape.clone(),
                    found: vec![],
                });
            }
            skill_vs_clim = true;
        }
        None => {}
    }
    check_shape("row weights", &shape[..1], &[row_weights.len()])?;
    check_weights(row_weights)?;
    let f = std2(&inputs.forecast);
    let o = std2(&inputs.truth);
    let c = inputs.climatology.as_ref().map(std2);
    let r = r_view.map(std2);
    let flat = Flat {
        f: f.as_slice().expect("standard layout"),
        o: o.as_slice().expect("standard layout"),
        c: c.as_ref().map(|c| c.as_slice().expect("standard layout")),
        r: r.as_ref().map(|r| r.as_slice().expect("standard layout")),
        nlat: shape[0],
        nlon: shape[1],
        nfields: 1,
    };
    Ok(reduce(&flat, row_weights, skill_vs_clim, path).remove(0))
}

/// Run the fused kernel on every level of a `(level, lat, lon)` stack at once
/// (all rows of all levels in one parallel pass). Returns one [`FieldSums`]
/// per level, in input order.
pub fn stack_sums<T: Float>(
    inputs: &StackInputs<'_, T>,
    row_weights: &[f64],
) -> Result<Vec<FieldSums>, ScoringError> {
    let shape = inputs.truth.shape().to_vec();
    if shape.contains(&0) {
        return Err(ScoringError::EmptyField {
            what: "truth",
            shape,
        });
    }
    check_shape("forecast", &shape, inputs.forecast.shape())?;
    if let Some(c) = &inputs.climatology {
        check_shape("climatology", &shape, c.shape())?;
    } else if inputs.skill_vs_climatology {
        return Err(ScoringError::ShapeMismatch {
            what: "climatology (required by skill_vs_climatology)",
            expected: shape.clone(),
            found: vec![],
        });
    }
    check_shape("row weights", &shape[1..2], &[row_weights.len()])?;
    check_weights(row_weights)?;
    let f = std3(&inputs.forecast);
    let o = std3(&inputs.truth);
    let c = inputs.climatology.as_ref().map(std3);
    let flat = Flat {
        f: f.as_slice().expect("standard layout"),
        o: o.as_slice().expect("standard layout"),
        c: c.as_ref().map(|c| c.as_slice().expect("standard layout")),
        r: None,
        nlat: shape[1],
        nlon: shape[2],
        nfields: shape[0],
    };
    Ok(reduce(
        &flat,
        row_weights,
        inputs.skill_vs_climatology,
        CodePath::FASTEST,
    ))
}
