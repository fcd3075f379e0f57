//! Four `f64` lanes with bit masks, behind a small trait with two
//! implementations: portable arrays (any CPU) and AVX2 intrinsics (x86-64,
//! selected at run time). Both perform exactly the same IEEE operations in the
//! same order — add, sub, mul, correctly rounded fused multiply-add
//! (`f64::mul_add` / `vfmadd`), bitwise AND masking, ordered comparisons — so
//! they produce identical bits.
//!
//! Masked values are produced with a bitwise AND (never a branch), so NaN/inf
//! inputs in masked-out lanes become `+0.0` and vanish from the sums.

// Explicit `for l in 0..LANES` loops are the point here: they map 1:1 to SIMD lanes.
#![allow(clippy::needless_range_loop)]

use crate::float::Float;

/// Number of interleaved `f64` accumulation lanes per row.
pub const LANES: usize = 4;

/// Lane-wise operations used by the kernel.
pub(crate) trait Simd: Copy {
    type M: Copy;
    fn zero() -> Self;
    fn splat(x: f64) -> Self;
    fn load<T: Float>(s: &[T; LANES]) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    /// `self * b + c` with a single rounding (IEEE fused multiply-add).
    fn fma(self, b: Self, c: Self) -> Self;
    /// `self` where the mask is set, `+0.0` elsewhere.
    fn and(self, m: Self::M) -> Self;
    fn abs(self) -> Self;
    /// `if x > self { x } else { self }` per lane (NaN in `x` is ignored).
    fn max_acc(self, x: Self) -> Self;
    /// All bits set in lanes holding a finite value.
    fn finite(self) -> Self::M;
    fn mand(a: Self::M, b: Self::M) -> Self::M;
    fn to_array(self) -> [f64; LANES];
    /// Integer lane counters (exact, and off the floating-point add pipes).
    type I: Copy;
    fn izero() -> Self::I;
    /// Add 1 to the counter in every lane whose mask is set.
    fn count(c: Self::I, m: Self::M) -> Self::I;
    fn itotal(c: Self::I) -> u64;
}

/// Fixed-order horizontal sum.
#[inline(always)]
pub(crate) fn hsum<S: Simd>(v: S) -> f64 {
    let a = v.to_array();
    (a[0] + a[1]) + (a[2] + a[3])
}

/// Horizontal maximum (0 if every lane is ≤ 0).
#[inline(always)]
pub(crate) fn hmax<S: Simd>(v: S) -> f64 {
    v.to_array()
        .iter()
        .fold(0.0f64, |m, &x| if x > m { x } else { m })
}

/// Portable implementation.
#[derive(Clone, Copy)]
pub(crate) struct P([f64; LANES]);

macro_rules! lanewise {
    ($a:expr, $b:expr, $op:tt) => {{
        let (a, b) = ($a, $b);
        let mut r = [0.0; LANES];
        for l in 0..LANES {
            r[l] = a.0[l] $op b.0[l];
        }
        P(r)
    }};
}

impl Simd for P {
    type M = [u64; LANES];
    #[inline(always)]
    fn zero() -> Self {
        P([0.0; LANES])
    }
    #[inline(always)]
    fn splat(x: f64) -> Self {
        P([x; LANES])
    }
    #[inline(always)]
    fn load<T: Float>(s: &[T; LANES]) -> Self {
        P(s.map(Float::to_f64))
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        lanewise!(self, o, +)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        lanewise!(self, o, -)
    }
    #[inline(always)]
    fn fma(self, b: Self, c: Self) -> Self {
        let mut r = [0.0; LANES];
        for l in 0..LANES {
            r[l] = self.0[l].mul_add(b.0[l], c.0[l]);
        }
        P(r)
    }
    #[inline(always)]
    fn and(self, m: Self::M) -> Self {
        let mut r = [0.0; LANES];
        for l in 0..LANES {
            r[l] = f64::from_bits(self.0[l].to_bits() & m[l]);
        }
        P(r)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        P(self.0.map(|x| f64::from_bits(x.to_bits() & !(1u64 << 63))))
    }
    #[inline(always)]
    fn max_acc(self, x: Self) -> Self {
        let mut r = [0.0; LANES];
        for l in 0..LANES {
            r[l] = if x.0[l] > self.0[l] {
                x.0[l]
            } else {
                self.0[l]
            };
        }
        P(r)
    }
    #[inline(always)]
    fn finite(self) -> Self::M {
        // Same test as the AVX2 path: x − x is NaN exactly when x is not finite.
        #[allow(clippy::eq_op)]
        self.0.map(|x| {
            let d = x - x;
            if d == d { !0 } else { 0 }
        })
    }
    #[inline(always)]
    fn mand(a: Self::M, b: Self::M) -> Self::M {
        let mut r = [0u64; LANES];
        for l in 0..LANES {
            r[l] = a[l] & b[l];
        }
        r
    }
    #[inline(always)]
    fn to_array(self) -> [f64; LANES] {
        self.0
    }
    type I = [u64; LANES];
    #[inline(always)]
    fn izero() -> Self::I {
        [0; LANES]
    }
    #[inline(always)]
    fn count(c: Self::I, m: Self::M) -> Self::I {
        // A set mask is all ones = −1 as an integer: subtracting adds 1.
        let mut r = [0u64; LANES];
        for l in 0..LANES {
            r[l] = c[l].wrapping_sub(m[l]);
        }
        r
    }
    #[inline(always)]
    fn itotal(c: Self::I) -> u64 {
        c.iter().sum()
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use avx::A;

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    use super::{LANES, Simd};
    use crate::float::Float;

    /// AVX2 + FMA implementation. Its methods may only run on a CPU with both:
    /// the kernel uses it exclusively inside `#[target_feature(enable = "avx2,fma")]`
    /// functions entered after `is_x86_feature_detected!` checked both.
    #[derive(Clone, Copy)]
    pub(crate) struct A(__m256d);

    // SAFETY (all methods): AVX2/FMA availability is guaranteed by the only
    // caller (see the type's docs); loads read exactly LANES elements of a
    // `&[T; LANES]`.
    impl Simd for A {
        type M = __m256d;
        #[inline(always)]
        fn zero() -> Self {
            A(unsafe { _mm256_setzero_pd() })
        }
        #[inline(always)]
        fn splat(x: f64) -> Self {
            A(unsafe { _mm256_set1_pd(x) })
        }
        #[inline(always)]
        fn load<T: Float>(s: &[T; LANES]) -> Self {
            // `Float` is sealed to f32 and f64, so the size identifies the type.
            unsafe {
                if std::mem::size_of::<T>() == 4 {
                    A(_mm256_cvtps_pd(_mm_loadu_ps(s.as_ptr() as *const f32)))
                } else {
                    A(_mm256_loadu_pd(s.as_ptr() as *const f64))
                }
            }
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            A(unsafe { _mm256_add_pd(self.0, o.0) })
        }
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            A(unsafe { _mm256_sub_pd(self.0, o.0) })
        }
        #[inline(always)]
        fn fma(self, b: Self, c: Self) -> Self {
            A(unsafe { _mm256_fmadd_pd(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn and(self, m: Self::M) -> Self {
            A(unsafe { _mm256_and_pd(self.0, m) })
        }
        #[inline(always)]
        fn abs(self) -> Self {
            A(unsafe { _mm256_andnot_pd(_mm256_set1_pd(-0.0), self.0) })
        }
        #[inline(always)]
        fn max_acc(self, x: Self) -> Self {
            // MAXPD(a, b) = a > b ? a : b, exactly the portable definition.
            A(unsafe { _mm256_max_pd(x.0, self.0) })
        }
        #[inline(always)]
        fn finite(self) -> Self::M {
            // x − x is 0 for finite x and NaN for ±inf/NaN; ORD(d, d) tests
            // "not NaN" without needing a constant register.
            unsafe {
                let d = _mm256_sub_pd(self.0, self.0);
                _mm256_cmp_pd::<_CMP_ORD_Q>(d, d)
            }
        }
        #[inline(always)]
        fn mand(a: Self::M, b: Self::M) -> Self::M {
            unsafe { _mm256_and_pd(a, b) }
        }
        #[inline(always)]
        fn to_array(self) -> [f64; LANES] {
            let mut out = [0.0; LANES];
            unsafe { _mm256_storeu_pd(out.as_mut_ptr(), self.0) };
            out
        }
        type I = __m256i;
        #[inline(always)]
        fn izero() -> Self::I {
            unsafe { _mm256_setzero_si256() }
        }
        #[inline(always)]
        fn count(c: Self::I, m: Self::M) -> Self::I {
            unsafe { _mm256_sub_epi64(c, _mm256_castpd_si256(m)) }
        }
        #[inline(always)]
        fn itotal(c: Self::I) -> u64 {
            let mut out = [0u64; LANES];
            unsafe { _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, c) };
            out.iter().sum()
        }
    }
}
