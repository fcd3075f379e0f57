//! A deliberately naive, one-metric-per-pass, two-pass (centred) implementation
//! of docs/scoring.md §3. Used as an independent oracle in tests and as the baseline in
//! the benchmark. It shares no code with the fused kernel.
#![allow(dead_code)]

use ndarray::ArrayView2;

pub struct Naive {
    pub bias: f64,
    pub mse: f64,
    pub mae: f64,
    pub acc: f64,
    pub skill: f64,
    pub mse_clim: f64,
    pub pattern: f64,
    pub clone: f64,
    pub coverage: f64,
}

fn fin(x: f64) -> bool {
    x.is_finite()
}

/// Weighted mean of g over points where `mask` holds.
fn wmean(
    n: usize,
    w: &dyn Fn(usize) -> f64,
    mask: &dyn Fn(usize) -> bool,
    g: &dyn Fn(usize) -> f64,
) -> f64 {
    let (mut s, mut ws) = (0.0, 0.0);
    for k in 0..n {
        if mask(k) {
            s += w(k) * g(k);
            ws += w(k);
        }
    }
    s / ws
}

fn pearson(
    n: usize,
    w: &dyn Fn(usize) -> f64,
    mask: &dyn Fn(usize) -> bool,
    x: &dyn Fn(usize) -> f64,
    y: &dyn Fn(usize) -> f64,
) -> f64 {
    let mx = wmean(n, w, mask, x);
    let my = wmean(n, w, mask, y);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for k in 0..n {
        if mask(k) {
            let (a, b) = (x(k) - mx, y(k) - my);
            sxy += w(k) * a * b;
            sxx += w(k) * a * a;
            syy += w(k) * b * b;
        }
    }
    (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0)
}

pub fn bias<T: Copy + Into<f64>>(f: ArrayView2<T>, o: ArrayView2<T>, wr: &[f64]) -> f64 {
    let (fs, os, ncol) = (flat(f), flat(o), f.ncols());
    let w = |k: usize| wr[k / ncol];
    let m = |k: usize| fin(fs[k]) && fin(os[k]);
    wmean(fs.len(), &w, &m, &|k| fs[k] - os[k])
}

pub fn mse<T: Copy + Into<f64>>(f: ArrayView2<T>, o: ArrayView2<T>, wr: &[f64]) -> f64 {
    let (fs, os, ncol) = (flat(f), flat(o), f.ncols());
    let w = |k: usize| wr[k / ncol];
    let m = |k: usize| fin(fs[k]) && fin(os[k]);
    wmean(fs.len(), &w, &m, &|k| (fs[k] - os[k]).powi(2))
}

pub fn mae<T: Copy + Into<f64>>(f: ArrayView2<T>, o: ArrayView2<T>, wr: &[f64]) -> f64 {
    let (fs, os, ncol) = (flat(f), flat(o), f.ncols());
    let w = |k: usize| wr[k / ncol];
    let m = |k: usize| fin(fs[k]) && fin(os[k]);
    wmean(fs.len(), &w, &m, &|k| (fs[k] - os[k]).abs())
}

pub fn acc<T: Copy + Into<f64>>(
    f: ArrayView2<T>,
    o: ArrayView2<T>,
    c: ArrayView2<T>,
    wr: &[f64],
) -> f64 {
    let (fs, os, cs, ncol) = (flat(f), flat(o), flat(c), f.ncols());
    let w = |k: usize| wr[k / ncol];
    let m = |k: usize| fin(fs[k]) && fin(os[k]) && fin(cs[k]);
    pearson(fs.len(), &w, &m, &|k| fs[k] - cs[k], &|k| os[k] - cs[k])
}

/// Skill of the bias-corrected forecast against reference r, all on the (f, o, r) mask.
pub fn skill<T: Copy + Into<f64>>(
    f: ArrayView2<T>,
    o: ArrayView2<T>,
    r: ArrayView2<T>,
    wr: &[f64],
) -> f64 {
    let (fs, os, rs, ncol) = (flat(f), flat(o), flat(r), f.ncols());
    let w = |k: usize| wr[k / ncol];
    let m = |k: usize| fin(fs[k]) && fin(os[k]) && fin(rs[k]);
    let b = wmean(fs.len(), &w, &m, &|k| fs[k] - os[k]);
    let mse_bc = wmean(fs.len(), &w, &m, &|k| (fs[k] - b - os[k]).powi(2));
    let mse_r = wmean(fs.len(), &w, &m, &|k| (rs[k] - os[k]).powi(2));
    1.0 - mse_bc / mse_r
}

pub fn pattern<T: Copy + Into<f64>>(f: ArrayView2<T>, r: ArrayView2<T>, wr: &[f64]) -> f64 {
    let (fs, rs, ncol) = (flat(f), flat(r), f.ncols());
    let w = |k: usize| wr[k / ncol];
    let m = |k: usize| fin(fs[k]) && fin(rs[k]);
    pearson(fs.len(), &w, &m, &|k| fs[k], &|k| rs[k])
}

pub fn coverage<T: Copy + Into<f64>>(f: ArrayView2<T>, o: ArrayView2<T>) -> f64 {
    let (fs, os) = (flat(f), flat(o));
    let no = os.iter().filter(|x| fin(**x)).count();
    let nfo = fs
        .iter()
        .zip(&os)
        .filter(|(a, b)| fin(**a) && fin(**b))
        .count();
    nfo as f64 / no as f64
}

pub fn all<T: Copy + Into<f64>>(
    f: ArrayView2<T>,
    o: ArrayView2<T>,
    c: ArrayView2<T>,
    r: ArrayView2<T>,
    wr: &[f64],
) -> Naive {
    Naive {
        bias: bias(f, o, wr),
        mse: mse(f, o, wr),
        mae: mae(f, o, wr),
        acc: acc(f, o, c, wr),
        skill: skill(f, o, r, wr),
        mse_clim: mse(c, o, wr),
        pattern: pattern(f, r, wr),
        clone: mse(f, r, wr),
        coverage: coverage(f, o),
    }
}

fn flat<T: Copy + Into<f64>>(a: ArrayView2<T>) -> Vec<f64> {
    a.iter().map(|&x| x.into()).collect()
}
