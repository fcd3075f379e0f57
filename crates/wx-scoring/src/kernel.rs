//! The fused verification kernel: one pass over forecast `f`, truth `o` and
//! optionally climatology `c` and reference `r`, producing every weighted sum
//! the metrics of spec §3 need.
//!
//! # Structure and determinism
//!
//! A field is processed row by row (a row = one latitude, so its cos-lat
//! weight is a single number applied once per row, not once per point). Each
//! row is accumulated in `f64` in [`LANES`] interleaved lanes (point `j` goes
//! to lane `j % LANES`); the lanes are combined in a fixed tree order at the end
//! of the row. Rows are computed in parallel with rayon but collected by index
//! and merged strictly in row order, so the result does not depend on the
//! number of threads. No fused multiply-add is used (Rust never contracts
//! `a * b + c`), so the AVX2 and the portable code paths give identical bits.
//!
//! # Pairwise finite masks (spec §3)
//!
//! Every group of sums has its own mask, applied branch-free by selecting 0.0
//! for masked points: bias/MSE/MAE on (f, o); ACC on (f, o, c); skill against a
//! separate reference on (f, o, r) including the bias used to correct `f`;
//! clone distance and pattern correlation on (f, r); the climatology's own
//! error on (c, o).
//!
//! # Cancellation
//!
//! Centred quantities (error mean/variance, anomalies, raw fields for the
//! pattern correlation) are accumulated per row relative to a *shift*: the
//! value at the row's first point where the group's mask holds. Rows are turned
//! into centred moments and merged with Chan's update ([`crate::moments`]).
//! A constant anomaly field thus gives an exactly zero variance, and fields with
//! a large offset and tiny spread (q at 50 hPa) keep their full precision.

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
}

impl RowStats {
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

#[inline(always)]
fn find_shifts<T: Float, const C: bool, const R: bool>(
    f: &[T],
    o: &[T],
    c: &[T],
    r: &[T],
) -> Shifts {
    let mut k = Shifts::default();
    if let Some(j) = (0..f.len()).find(|&j| f[j].to_f64().is_finite() && o[j].to_f64().is_finite())
    {
        k.e = f[j].to_f64() - o[j].to_f64();
    }
    if C && let Some(j) = (0..f.len()).find(|&j| {
        f[j].to_f64().is_finite() && o[j].to_f64().is_finite() && c[j].to_f64().is_finite()
    }) {
        k.a = f[j].to_f64() - c[j].to_f64();
        k.b = o[j].to_f64() - c[j].to_f64();
    }
    if R && let Some(j) =
        (0..f.len()).find(|&j| f[j].to_f64().is_finite() && r[j].to_f64().is_finite())
    {
        k.f = f[j].to_f64();
        k.r = r[j].to_f64();
    }
    k
}

/// Lane accumulators of one row (kept in registers: passed and returned by value).
#[derive(Clone, Copy)]
struct Acc<S: Simd> {
    n_o: S::I,
    max_f: S,
    n_fo: S::I,
    se: S,
    see: S,
    sae: S,
    // (f, o, c)
    n_foc: S::I,
    sa: S,
    sb: S,
    saa: S,
    sbb: S,
    sab: S,
    sff: S,
    soo: S,
    // (c, o)
    n_co: S::I,
    scc: S,
    // (f, o, r)
    n_for: S::I,
    ser: S,
    seer: S,
    srr: S,
    // (f, r)
    n_fr: S::I,
    sd: S,
    sf: S,
    sr: S,
    sf2: S,
    sr2: S,
    sfr: S,
}

impl<S: Simd> Acc<S> {
    #[inline(always)]
    fn zero() -> Self {
        let z = S::zero();
        Acc {
            n_o: S::izero(),
            max_f: z,
            n_fo: S::izero(),
            se: z,
            see: z,
            sae: z,
            n_foc: S::izero(),
            sa: z,
            sb: z,
            saa: z,
            sbb: z,
            sab: z,
            sff: z,
            soo: z,
            n_co: S::izero(),
            scc: z,
            n_for: S::izero(),
            ser: z,
            seer: z,
            srr: z,
            n_fr: S::izero(),
            sd: z,
            sf: z,
            sr: z,
            sf2: z,
            sr2: z,
            sfr: z,
        }
    }
}

/// Shift vectors broadcast once per row.
#[derive(Clone, Copy)]
struct K<S> {
    e: S,
    a: S,
    b: S,
    f: S,
    r: S,
}

#[inline(always)]
fn chunk<S: Simd, T: Float, const C: bool, const R: bool>(
    mut acc: Acc<S>,
    k: &K<S>,
    f: &[T; LANES],
    o: &[T; LANES],
    c: &[T; LANES],
    r: &[T; LANES],
) -> Acc<S> {
    let fv = S::load(f);
    let ov = S::load(o);
    let ff = fv.finite();
    let of = ov.finite();
    let mfo = S::mand(ff, of);
    acc.n_o = S::count(acc.n_o, of);
    // |f| with NaN lanes ignored by the comparison; ±inf counts as extreme.
    acc.max_f = acc.max_f.max_acc(fv.abs());
    let e = fv.sub(ov);
    let es = e.sub(k.e).and(mfo);
    acc.n_fo = S::count(acc.n_fo, mfo);
    acc.se = acc.se.add(es);
    acc.see = acc.see.add(es.mul(es));
    acc.sae = acc.sae.add(e.abs().and(mfo));
    if C {
        let cv = S::load(c);
        let cf = cv.finite();
        let mfoc = S::mand(mfo, cf);
        let a = fv.sub(cv).sub(k.a).and(mfoc);
        let b = ov.sub(cv).sub(k.b).and(mfoc);
        acc.n_foc = S::count(acc.n_foc, mfoc);
        acc.sa = acc.sa.add(a);
        acc.sb = acc.sb.add(b);
        acc.saa = acc.saa.add(a.mul(a));
        acc.sbb = acc.sbb.add(b.mul(b));
        acc.sab = acc.sab.add(a.mul(b));
        let fz = fv.and(mfoc);
        let oz = ov.and(mfoc);
        acc.sff = acc.sff.add(fz.mul(fz));
        acc.soo = acc.soo.add(oz.mul(oz));
        let mco = S::mand(cf, of);
        let d = cv.sub(ov).and(mco);
        acc.n_co = S::count(acc.n_co, mco);
        acc.scc = acc.scc.add(d.mul(d));
    }
    if R {
        let rv = S::load(r);
        let rf = rv.finite();
        let mfor = S::mand(mfo, rf);
        let er = e.sub(k.e).and(mfor);
        acc.n_for = S::count(acc.n_for, mfor);
        acc.ser = acc.ser.add(er);
        acc.seer = acc.seer.add(er.mul(er));
        let dr = rv.sub(ov).and(mfor);
        acc.srr = acc.srr.add(dr.mul(dr));
        let mfr = S::mand(ff, rf);
        acc.n_fr = S::count(acc.n_fr, mfr);
        let dd = fv.sub(rv).and(mfr);
        acc.sd = acc.sd.add(dd.mul(dd));
        let fs = fv.sub(k.f).and(mfr);
        let rs = rv.sub(k.r).and(mfr);
        acc.sf = acc.sf.add(fs);
        acc.sr = acc.sr.add(rs);
        acc.sf2 = acc.sf2.add(fs.mul(fs));
        acc.sr2 = acc.sr2.add(rs.mul(rs));
        acc.sfr = acc.sfr.add(fs.mul(rs));
    }
    acc
}

#[inline(always)]
fn row_impl<S: Simd, T: Float, const C: bool, const R: bool>(
    w: f64,
    f: &[T],
    o: &[T],
    c: &[T],
    r: &[T],
) -> RowStats {
    let n = f.len();
    let ks = find_shifts::<T, C, R>(f, o, c, r);
    let k = K {
        e: S::splat(ks.e),
        a: S::splat(ks.a),
        b: S::splat(ks.b),
        f: S::splat(ks.f),
        r: S::splat(ks.r),
    };
    let mut acc = Acc::<S>::zero();
    let full = n / LANES * LANES;
    let dummy = [T::NAN; LANES];
    let mut j = 0;
    while j < full {
        let fa: &[T; LANES] = f[j..j + LANES].try_into().unwrap();
        let oa: &[T; LANES] = o[j..j + LANES].try_into().unwrap();
        let ca: &[T; LANES] = if C {
            c[j..j + LANES].try_into().unwrap()
        } else {
            &dummy
        };
        let ra: &[T; LANES] = if R {
            r[j..j + LANES].try_into().unwrap()
        } else {
            &dummy
        };
        acc = chunk::<S, T, C, R>(acc, &k, fa, oa, ca, ra);
        j += LANES;
    }
    if full < n {
        let mut fa = [T::NAN; LANES];
        let mut oa = [T::NAN; LANES];
        let mut ca = [T::NAN; LANES];
        let mut ra = [T::NAN; LANES];
        for (l, jj) in (full..n).enumerate() {
            fa[l] = f[jj];
            oa[l] = o[jj];
            if C {
                ca[l] = c[jj];
            }
            if R {
                ra[l] = r[jj];
            }
        }
        acc = chunk::<S, T, C, R>(acc, &k, &fa, &oa, &ca, &ra);
    }
    finish_row::<S, C, R>(w, &ks, &acc)
}

fn finish_row<S: Simd, const C: bool, const R: bool>(w: f64, k: &Shifts, acc: &Acc<S>) -> RowStats {
    let n_fo = S::itotal(acc.n_fo) as f64;
    let mut s = RowStats {
        n_o: S::itotal(acc.n_o) as f64,
        n_fo,
        max_f: hmax(acc.max_f),
        err: Moments::from_shifted(w, n_fo, k.e, hsum(acc.se), hsum(acc.see)),
        abs_err: w * hsum(acc.sae),
        ..RowStats::default()
    };
    if C {
        let n = S::itotal(acc.n_foc) as f64;
        s.anom = CoMoments::from_shifted(
            w,
            n,
            k.a,
            k.b,
            hsum(acc.sa),
            hsum(acc.sb),
            hsum(acc.saa),
            hsum(acc.sbb),
            hsum(acc.sab),
        );
        s.sff = w * hsum(acc.sff);
        s.soo = w * hsum(acc.soo);
        s.clim_w = w * S::itotal(acc.n_co) as f64;
        s.clim_sq = w * hsum(acc.scc);
    }
    if R {
        let n = S::itotal(acc.n_for) as f64;
        s.ref_err = Moments::from_shifted(w, n, k.e, hsum(acc.ser), hsum(acc.seer));
        s.ref_sq = w * hsum(acc.srr);
        let n = S::itotal(acc.n_fr) as f64;
        s.pat = CoMoments::from_shifted(
            w,
            n,
            k.f,
            k.r,
            hsum(acc.sf),
            hsum(acc.sr),
            hsum(acc.sf2),
            hsum(acc.sr2),
            hsum(acc.sfr),
        );
        s.pat_sq = w * hsum(acc.sd);
    }
    s
}

/// AVX2 build of the same row code (no FMA: identical results to the portable
/// path, only wider vectors).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn row_avx2<T: Float, const C: bool, const R: bool>(
    w: f64,
    f: &[T],
    o: &[T],
    c: &[T],
    r: &[T],
) -> RowStats {
    row_impl::<crate::lanes::A, T, C, R>(w, f, o, c, r)
}

fn row_portable<T: Float, const C: bool, const R: bool>(
    w: f64,
    f: &[T],
    o: &[T],
    c: &[T],
    r: &[T],
) -> RowStats {
    row_impl::<P, T, C, R>(w, f, o, c, r)
}

#[inline]
fn row_dispatch<T: Float, const C: bool, const R: bool>(
    w: f64,
    f: &[T],
    o: &[T],
    c: &[T],
    r: &[T],
    portable: bool,
) -> RowStats {
    #[cfg(target_arch = "x86_64")]
    if !portable && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { row_avx2::<T, C, R>(w, f, o, c, r) };
    }
    let _ = portable;
    row_portable::<T, C, R>(w, f, o, c, r)
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

/// Rows per rayon task (a scheduling granularity only; results do not depend on it).
const ROWS_PER_TASK: usize = 4;

fn reduce<T: Float>(
    flat: &Flat<'_, T>,
    weights: &[f64],
    skill_vs_clim: bool,
    portable: bool,
) -> Vec<FieldSums> {
    let nrows = flat.nlat * flat.nfields;
    let nlon = flat.nlon;
    let rows: Vec<RowStats> = (0..nrows)
        .into_par_iter()
        .with_min_len(ROWS_PER_TASK)
        .map(|i| {
            let s = i * nlon..(i + 1) * nlon;
            let w = weights[i % flat.nlat];
            let f = &flat.f[s.clone()];
            let o = &flat.o[s.clone()];
            let c = flat.c.map(|c| &c[s.clone()]).unwrap_or(&[]);
            let r = flat.r.map(|r| &r[s]).unwrap_or(&[]);
            match (flat.c.is_some(), flat.r.is_some()) {
                (false, false) => row_dispatch::<T, false, false>(w, f, o, c, r, portable),
                (true, false) => row_dispatch::<T, true, false>(w, f, o, c, r, portable),
                (false, true) => row_dispatch::<T, false, true>(w, f, o, c, r, portable),
                (true, true) => row_dispatch::<T, true, true>(w, f, o, c, r, portable),
            }
        })
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
    field_sums_impl(inputs, row_weights, false)
}

/// [`field_sums`] with a choice of code path (`portable = true` skips the
/// AVX2 build); both must give identical bits. Test hook, not API.
#[doc(hidden)]
pub fn field_sums_impl<T: Float>(
    inputs: &FieldInputs<'_, T>,
    row_weights: &[f64],
    portable: bool,
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
    Ok(reduce(&flat, row_weights, skill_vs_clim, portable).remove(0))
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
        false,
    ))
}
