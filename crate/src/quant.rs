//! The quantizer definitions the runtime applies, shared with the trainer so that training and
//! inference agree bit for bit (docs/methods: "nested quantizer").
//!
//! Weights are stored once as 8-bit codes `c8` in `0..=255`. The `b`-bit code is derived by
//! rounding: `c_b = min(round_half_up(c8 / 2^(8-b)), 2^b - 1)`, which reads only bit planes
//! 7..=(7-b) of `c8` (b+1 planes; all 8 for b = 8). A `b`-bit code `c` stands for the weight value
//! `E_b * (2c / L - 1)` with `L = 2^b - 1`; at b = 1 that is `±E_1`.
//!
//! Activations are unsigned PACT codes: `a = round_half_up(clamp(x, 0, alpha) * L_a / alpha)`,
//! standing for `a * alpha / L_a`.

use crate::error::{ErrorKind, Result};

pub const MAX_BITS: u8 = 8;

/// Largest code of a `bits`-bit unsigned quantizer.
#[inline]
pub fn levels(bits: u8) -> u32 {
    debug_assert!((1..=8).contains(&bits));
    (1u32 << bits) - 1
}

pub fn check_bits(bits: u8) -> Result<()> {
    if !(1..=MAX_BITS).contains(&bits) {
        crate::bail!(ErrorKind::UnsupportedWidth, "bit-width {bits} is outside 1..=8");
    }
    Ok(())
}

/// The nested weight code: the `bits`-bit code derived from an 8-bit code.
#[inline]
pub fn derive_code(c8: u8, bits: u8) -> u8 {
    if bits >= 8 {
        return c8;
    }
    let shift = 8 - bits as u32;
    let rounded = (c8 as u32 + (1 << (shift - 1))) >> shift;
    rounded.min(levels(bits)) as u8
}

/// Number of most-significant bit planes needed to derive `bits`-bit codes exactly.
#[inline]
pub fn planes_needed(bits: u8) -> u8 {
    (bits + 1).min(8)
}

/// The real value a `bits`-bit weight code stands for, with weight scale `e`.
#[inline]
pub fn weight_value(code: u8, bits: u8, e: f32) -> f32 {
    let l = levels(bits) as f32;
    e * (2.0 * code as f32 / l - 1.0)
}

/// PACT activation code of `x` with clip `alpha` (alpha > 0) at `bits` bits.
#[inline]
pub fn act_code(x: f32, alpha: f32, bits: u8) -> u8 {
    let l = levels(bits) as f32;
    // NaN compares false on both sides and lands on 0: a NaN input must not become a large code.
    let y = if x > 0.0 { if x < alpha { x } else { alpha } } else { 0.0 };
    ((y * (l / alpha)) + 0.5).floor() as u8
}

/// The value an activation code stands for.
#[inline]
pub fn act_value(code: u8, alpha: f32, bits: u8) -> f32 {
    code as f32 * (alpha / levels(bits) as f32)
}

/// 8-bit DoReFa code of a latent float weight given `max|tanh W|` of its tensor
/// (`w = tanh(W) / (2 max|tanh W|) + 1/2`, code = round(w * 255)). The trainer's export uses this.
#[inline]
pub fn dorefa_code8(w: f32, max_abs_tanh: f32) -> u8 {
    let t = if max_abs_tanh > 0.0 { w.tanh() / (2.0 * max_abs_tanh) + 0.5 } else { 0.5 };
    ((t.clamp(0.0, 1.0) * 255.0) + 0.5).floor() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_code_is_identity_at_8_and_rounds_below() {
        for c in 0..=255u8 {
            assert_eq!(derive_code(c, 8), c);
            for b in 1..8u8 {
                let exact = (c as f64 / (1u32 << (8 - b)) as f64 + 0.5).floor() as u32;
                assert_eq!(derive_code(c, b) as u32, exact.min(levels(b)), "c8={c} b={b}");
            }
        }
        assert_eq!(derive_code(127, 1), 1); // 127/128 rounds up
        assert_eq!(derive_code(63, 1), 0);
        assert_eq!(derive_code(255, 1), 1);
        assert_eq!(derive_code(255, 2), 3);
    }

    #[test]
    fn derive_code_reads_only_the_needed_planes() {
        for b in 1..8u8 {
            let keep = planes_needed(b);
            let mask: u8 = !((1u16 << (8 - keep)) - 1) as u8;
            for c in 0..=255u8 {
                assert_eq!(derive_code(c, b), derive_code(c & mask, b), "b={b} c={c}");
            }
        }
    }

    #[test]
    fn act_code_saturates_and_rejects_nan() {
        assert_eq!(act_code(-3.0, 2.0, 8), 0);
        assert_eq!(act_code(5.0, 2.0, 8), 255);
        assert_eq!(act_code(f32::NAN, 2.0, 4), 0);
        assert_eq!(act_code(f32::INFINITY, 2.0, 4), 15);
        assert_eq!(act_code(1.0, 2.0, 1), 1); // 0.5 rounds half up
        assert!((act_value(act_code(0.7, 1.0, 8), 1.0, 8) - 0.7).abs() <= 0.5 / 255.0 + 1e-6);
    }

    #[test]
    fn weight_values_are_symmetric() {
        assert_eq!(weight_value(0, 1, 0.5), -0.5);
        assert_eq!(weight_value(1, 1, 0.5), 0.5);
        assert_eq!(weight_value(255, 8, 1.0), 1.0);
        assert_eq!(weight_value(0, 8, 1.0), -1.0);
    }
}
