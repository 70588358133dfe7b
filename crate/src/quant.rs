//! The quantizer definitions the runtime applies, shared with the trainer so that training and
//! inference agree bit for bit (docs/FORMAT.md, "nested codes").
//!
//! Weights are stored once as 8-bit codes `c8` in `0..=255`. A `b`-bit code `c` is a mid-rise
//! level: it stands for `E_b * ((2c + 1) / 2^b - 1)`, symmetric around zero with no zero level
//! (at b = 1, `±E_1 / 2`). The `b`-bit code is the top `b` bits of the 8-bit one,
//! `c_b = c8 >> (8 - b)`: truncating a mid-rise code gives exactly the coarser level whose interval
//! contains it, so every width is an unbiased quantizer of the same latent weight, and width `b`
//! needs only the `b` most significant bit planes.
//!
//! Why not `c_b = round(c8 / 2^(8-b))` with levels `E (2c/(2^b-1) - 1)`: rounding maps 0..=255
//! onto 0..=2^b and must clamp, and those levels do not line up with the 8-bit ones, so the zero
//! weight decodes to +E at 1 bit (most of a Gaussian weight tensor collapses onto one level). It
//! also needs one more plane.
//!
//! Activations are unsigned PACT codes: `a = round_half_up(clamp(x, 0, alpha) * L_a / alpha)` with
//! `L_a = 2^a - 1`, standing for `a * alpha / L_a` (zero is a level: ReLU outputs stay exact).

use crate::bits::Bits;

/// Largest code of a `bits`-bit unsigned quantizer.
#[inline]
pub fn levels(bits: Bits) -> u32 {
    bits.levels()
}

/// The nested weight code: the `bits`-bit code derived from an 8-bit code (its top `bits` bits).
#[inline]
pub fn derive_code(c8: u8, bits: Bits) -> u8 {
    c8 >> (8 - bits.get() as u32)
}

/// Number of most-significant bit planes needed to derive `bits`-bit codes exactly.
#[inline]
pub fn planes_needed(bits: Bits) -> u8 {
    bits.get()
}

/// The real value a `bits`-bit weight code stands for, with weight scale `e`.
#[inline]
pub fn weight_value(code: u8, bits: Bits, e: f32) -> f32 {
    let n = (1u32 << bits.get()) as f32;
    e * ((2 * code as u32 + 1) as f32 / n - 1.0)
}

/// PACT activation code of `x` with clip `alpha` (alpha > 0) at `bits` bits.
#[inline]
pub fn act_code(x: f32, alpha: f32, bits: Bits) -> u8 {
    act_code_scaled(x, alpha, levels(bits) as f32 / alpha)
}

/// [`act_code`] of every element of `x` into `out` (same length).
pub fn act_codes(x: &[f32], alpha: f32, bits: Bits, out: &mut [u8]) {
    let k = levels(bits) as f32 / alpha;
    for (d, &v) in out.iter_mut().zip(x) {
        *d = act_code_scaled(v, alpha, k);
    }
}

/// [`act_codes`] as i16 (the direct convolution's padded image, kernels::DirectActs).
pub fn act_codes_i16(x: &[f32], alpha: f32, bits: Bits, out: &mut [i16]) {
    let k = levels(bits) as f32 / alpha;
    for (d, &v) in out.iter_mut().zip(x) {
        *d = act_code_scaled(v, alpha, k) as i16;
    }
}

/// [`act_code`] with `k = L_a / alpha` computed by the caller (once per tensor).
#[inline(always)]
fn act_code_scaled(x: f32, alpha: f32, k: f32) -> u8 {
    // NaN compares false and lands on 0: a NaN input must not become a large code. Written as
    // two selects of the `a < b ? b : a` form and a truncation through i32 (y * k + 0.5 lies in
    // [0, 255.5], so it is the floor and fits) so that a loop of these is f32x4.pmax, pmin and
    // i32x4.trunc_sat in wasm SIMD.
    let y = if 0.0 < x { x } else { 0.0 };
    let y = if y < alpha { y } else { alpha };
    (y * k + 0.5) as i32 as u8
}

/// The value an activation code stands for.
#[inline]
pub fn act_value(code: u8, alpha: f32, bits: Bits) -> f32 {
    code as f32 * (alpha / levels(bits) as f32)
}

/// 8-bit code of a latent float weight given `max|tanh W|` of its tensor: DoReFa's normalisation
/// `t = tanh(W) / (2 max|tanh W|) + 1/2` in [0, 1], cut into 256 equal intervals
/// (`c8 = min(floor(256 t), 255)`), the mid-rise grid that `derive_code` truncates.
#[inline]
pub fn dorefa_code8(w: f32, max_abs_tanh: f32) -> u8 {
    let t = if max_abs_tanh > 0.0 { w.tanh() / (2.0 * max_abs_tanh) + 0.5 } else { 0.5 };
    (t * 256.0).floor().clamp(0.0, 255.0) as u8
}

/// 8-bit code of a float weight on the mid-rise grid of scale `e` (`weight_value`'s levels):
/// `w / e` in [-1, 1] cut into 256 equal intervals, so a pretrained weight imported this way
/// truncates to every width like a trained one.
#[inline]
pub fn linear_code8(w: f32, e: f32) -> u8 {
    let t = if e > 0.0 { w / (2.0 * e) + 0.5 } else { 0.5 };
    (t * 256.0).floor().clamp(0.0, 255.0) as u8
}

/// A row's 8-bit codes on the mid-rise grid of its largest magnitude ([`linear_code8`]): how an
/// imported or fine-tuned projection row is stored, so that the trainer quantizes as the file will.
pub fn row_codes8(row: &[f32]) -> Vec<u8> {
    let e = row.iter().fold(0f32, |m, &v| m.max(v.abs()));
    row.iter().map(|&v| linear_code8(v, e)).collect()
}

/// The least-squares scale of a row of weights `w` given their `bits`-bit codes: the `E` that
/// minimises `Σ (w - weight_value(c, bits, E))^2`, so that each width of an imported (untrained)
/// model fits its coarser levels as well as one scale can.
pub fn fit_scale(w: &[f32], codes8: &[u8], bits: Bits) -> f32 {
    let (mut num, mut den) = (0f64, 0f64);
    for (&x, &c) in w.iter().zip(codes8) {
        let v = weight_value(derive_code(c, bits), bits, 1.0) as f64;
        num += x as f64 * v;
        den += v * v;
    }
    if den > 0.0 { (num / den).max(0.0) as f32 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(bits: u8) -> Bits {
        Bits::new(bits).unwrap()
    }

    #[test]
    fn derive_code_keeps_the_top_bits() {
        for c in 0..=255u8 {
            assert_eq!(derive_code(c, Bits::MAX), c);
            for bits in 1..8u8 {
                assert_eq!(derive_code(c, b(bits)) as u32, c as u32 / (1 << (8 - bits)), "c8={c} b={bits}");
            }
        }
        assert_eq!(derive_code(127, b(1)), 0);
        assert_eq!(derive_code(128, b(1)), 1);
        assert_eq!(derive_code(255, b(2)), 3);
    }

    #[test]
    fn coarse_levels_are_the_centres_of_the_fine_levels_they_cover() {
        // Unbiased nesting: the b-bit value of a code is the mean of the 8-bit values it covers.
        for bits in 1..8u8 {
            for cb in 0..(1u32 << bits) {
                let fine: Vec<u8> = (0..=255u8).filter(|&c| derive_code(c, b(bits)) as u32 == cb).collect();
                let mean = fine.iter().map(|&c| weight_value(c, Bits::MAX, 1.0) as f64).sum::<f64>() / fine.len() as f64;
                assert!((weight_value(cb as u8, b(bits), 1.0) as f64 - mean).abs() < 1e-6, "b={bits} c={cb}");
            }
        }
    }

    #[test]
    fn derive_code_reads_only_the_needed_planes() {
        for bits in Bits::all_desc() {
            let keep = planes_needed(bits);
            let mask: u8 = !((1u16 << (8 - keep)) - 1) as u8;
            for c in 0..=255u8 {
                assert_eq!(derive_code(c, bits), derive_code(c & mask, bits), "b={bits} c={c}");
            }
        }
    }

    #[test]
    fn weight_levels_are_symmetric_without_zero() {
        assert_eq!(weight_value(0, b(1), 0.5), -0.25);
        assert_eq!(weight_value(1, b(1), 0.5), 0.25);
        for bits in Bits::all_desc() {
            let top = bits.levels();
            for c in 0..=top {
                let (lo, hi) = (weight_value(c as u8, bits, 1.0), weight_value((top - c) as u8, bits, 1.0));
                assert_eq!(lo, -hi, "b={bits} c={c}");
                assert_ne!(lo, 0.0);
            }
        }
    }

    #[test]
    fn dorefa_code8_covers_the_range_evenly() {
        assert_eq!(dorefa_code8(0.0, 1.0), 128);
        assert_eq!(dorefa_code8(-10.0, 1.0), 0);
        assert_eq!(dorefa_code8(10.0, 1.0), 255);
        assert_eq!(dorefa_code8(1.0, 0.0), 128);
        // Symmetric latent weights give codes symmetric around the middle.
        for w in [0.01f32, 0.1, 0.3, 0.7] {
            let m = 0.8f32.tanh();
            assert_eq!(dorefa_code8(w, m) as u32 + dorefa_code8(-w, m) as u32, 255, "w={w}");
        }
    }

    #[test]
    fn act_code_saturates_and_rejects_nan() {
        assert_eq!(act_code(-3.0, 2.0, b(8)), 0);
        assert_eq!(act_code(5.0, 2.0, b(8)), 255);
        assert_eq!(act_code(f32::NAN, 2.0, b(4)), 0);
        assert_eq!(act_code(f32::INFINITY, 2.0, b(4)), 15);
        assert_eq!(act_code(1.0, 2.0, b(1)), 1); // 0.5 rounds half up
        assert!((act_value(act_code(0.7, 1.0, b(8)), 1.0, b(8)) - 0.7).abs() <= 0.5 / 255.0 + 1e-6);
    }

    /// The select-and-truncate form (one value and a slice at a time) equals the definition: clamp to [0, alpha] (NaN to 0), then
    /// round half up with `floor`, on every bit width, odd clips, and the values around each
    /// rounding boundary.
    #[test]
    fn act_code_is_clamp_then_round_half_up() {
        let definition = |x: f32, alpha: f32, bits: Bits| -> u8 {
            let y = if x.is_nan() { 0.0 } else { x.clamp(0.0, alpha) };
            ((y * (levels(bits) as f32 / alpha)) + 0.5).floor() as u8
        };
        for bits in 1..=8 {
            for alpha in [1.0f32, 0.37, 6.0, 3.907_724_6, 1e-3, 1e4] {
                let l = levels(b(bits)) as f32;
                let mut xs = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, alpha, -alpha, 2.0 * alpha, f32::MIN_POSITIVE];
                for k in 0..=l as u32 {
                    let edge = (k as f32 + 0.5) * alpha / l;
                    xs.extend([edge, f32::from_bits(edge.to_bits() - 1), f32::from_bits(edge.to_bits() + 1), k as f32 * alpha / l]);
                }
                let mut codes = vec![0u8; xs.len()];
                act_codes(&xs, alpha, b(bits), &mut codes);
                for (&x, &c) in xs.iter().zip(&codes) {
                    let want = definition(x, alpha, b(bits));
                    assert_eq!(act_code(x, alpha, b(bits)), want, "x={x} alpha={alpha} bits={bits}");
                    assert_eq!(c, want, "act_codes: x={x} alpha={alpha} bits={bits}");
                }
            }
        }
    }
}
