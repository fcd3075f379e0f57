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
}

impl Float for f32 {
    const NAN: Self = f32::NAN;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Float for f64 {
    const NAN: Self = f64::NAN;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}
