//! [`Scheme`], how codes are packed, and [`Layout`], what the generic packing code needs from each
//! scheme's module (`dot16`, `bitserial`, `lut`, `dot8`): its geometry, its packed sizes and its
//! packers. [`with_layout`] turns a run-time `Scheme` into that module's type once per call, so
//! everything past it is monomorphized per scheme.

use super::packed::Elem;

/// How codes are packed, which decides the arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// Codes widened to i16, `i32x4.dot_i16x8_s`: cost independent of the widths.
    Dot16,
    /// Bit planes along depth, AND + popcount per plane pair: cost ∝ wbits * abits.
    BitSerial,
    /// Weight tables indexed by activation bit-plane nibbles (`i8x16.swizzle`): cost ∝ abits.
    Lut,
    /// Codes kept as bytes (8-bit activations as two 7-bit planes): relaxed SIMD's i8 dot
    /// product, widened at use on other instruction sets.
    Dot8,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Dot16 => "dot16",
            Scheme::BitSerial => "bitserial",
            Scheme::Lut => "lut",
            Scheme::Dot8 => "dot8",
        }
    }

    pub fn all() -> &'static [Scheme] {
        &[Scheme::Dot16, Scheme::BitSerial, Scheme::Lut, Scheme::Dot8]
    }
}

/// One scheme's memory layout. Widths arrive as checked `u8` in 1..=8.
pub(crate) trait Layout {
    /// Element type of the packed buffers.
    type Elem: Elem;
    /// Rows per weight tile: weights are padded to whole tiles.
    const ROW_TILE: usize;
    /// Activation columns are padded to a multiple of this and never split below it.
    const COL_GRANULE: usize;
    /// Packed elements per (padded) weight row.
    fn weight_row_len(depth: usize, wbits: u8) -> usize;
    /// Packed elements per (padded) activation column.
    fn act_col_len(depth: usize, abits: u8) -> usize;
    /// Packs row-major codes `[rows][depth]` into `dst` (`rows_pad * weight_row_len`).
    fn pack_weights(codes: &[u8], rows: usize, rows_pad: usize, depth: usize, wbits: u8, dst: &mut [Self::Elem]);
    /// Packs column-major codes `[cols][depth]` into `dst` (`cols_pad * act_col_len`) and each
    /// column's code sum into `sums` (`cols`); returns the OR of all codes (the range check).
    fn pack_acts(codes: &[u8], cols: usize, cols_pad: usize, depth: usize, abits: u8, dst: &mut [Self::Elem], sums: &mut [i32]) -> u8;
}

/// Evaluates `$body` with the type `$L` bound to `$scheme`'s [`Layout`].
macro_rules! with_layout {
    ($scheme:expr, $L:ident => $body:expr) => {
        match $scheme {
            $crate::kernels::Scheme::Dot16 => {
                type $L = $crate::kernels::dot16::Dot16;
                $body
            }
            $crate::kernels::Scheme::BitSerial => {
                type $L = $crate::kernels::bitserial::BitSerial;
                $body
            }
            $crate::kernels::Scheme::Lut => {
                type $L = $crate::kernels::lut::Lut;
                $body
            }
            $crate::kernels::Scheme::Dot8 => {
                type $L = $crate::kernels::dot8::Dot8;
                $body
            }
        }
    };
}
pub(crate) use with_layout;
