//! The small float abstraction the kernels are generic over.

/// An input element type: `f32` or `f64`.
///
/// All accumulation happens in `f64`; this trait only converts values in and
/// out. It is sealed: the kernels are written and tested for exactly these two
/// types.
pub trait Float:
    Copy + Send + Sync + PartialOrd + std::fmt::Debug + 'static + sealed::Sealed
{
    /// A quiet NaN of this type (used to pad partial lanes and for regridded gaps).
    const NAN: Self;
    /// Widen to `f64` (exact for both types).
    fn to_f64(self) -> f64;
    /// Narrow from `f64` (rounds to nearest for `f32`).
    fn from_f64(v: f64) -> Self;
    /// Whether, in `f64`, every difference of two finite values and every sum
    /// of two such differences is finite (true for `f32`, whose range is far
    /// inside `f64`'s; false for `f64`).
    const DIFFERENCES_CANNOT_OVERFLOW: bool;
    /// Whether every value is finite and small enough that no difference of
    /// two values, nor the sum of two such differences, overflows `f64`: then
    /// every finiteness mask of the kernel is all ones. Every finite `f32`
    /// qualifies; an `f64` must be below 2^1021 in magnitude. A branch-free
    /// scan over the magnitude bit patterns that the compiler vectorises.
    fn all_moderate(xs: &[Self]) -> bool;
}

impl Float for f32 {
    const NAN: Self = f32::NAN;
    const DIFFERENCES_CANNOT_OVERFLOW: bool = true;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn all_moderate(xs: &[Self]) -> bool {
        let max = xs
            .iter()
            .fold(0u32, |m, x| m.max(x.to_bits() & 0x7fff_ffff));
        // Below the exponent-all-ones pattern of ±inf and NaN.
        max < 0x7f80_0000
    }
}

impl Float for f64 {
    const NAN: Self = f64::NAN;
    const DIFFERENCES_CANNOT_OVERFLOW: bool = false;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn all_moderate(xs: &[Self]) -> bool {
        let max = xs
            .iter()
            .fold(0u64, |m, x| m.max(x.to_bits() & 0x7fff_ffff_ffff_ffff));
        // The bit pattern of 2^1021.
        max < 0x7fc0_0000_0000_0000
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}
