//! Relaxed-SIMD micro-kernels (compiled only with `+relaxed-simd`). The relaxed swizzle lives in
//! `simd128`'s Lut kernel (a const switch); here is the Dot8 kernel on
//! `i32x4.relaxed_dot_i8x16_i7x16_add`, whose result is only specified for a second operand in
//! 0..=127: activations of up to 7 bits as they are, 8-bit ones as two planes (dot8.rs).

use core::arch::wasm32::*;

use super::job::{Driver, Job};
use super::{dot8, simd128, Scheme};

/// Dot16 and BitSerial gain nothing from relaxed SIMD and run the SIMD128 kernels.
pub fn driver(scheme: Scheme) -> Driver {
    match scheme {
        Scheme::Dot16 => simd128::dot16,
        Scheme::BitSerial => simd128::bitserial,
        Scheme::Lut => simd128::lut_relaxed,
        Scheme::Dot8 => dot8,
    }
}

#[inline(always)]
unsafe fn dot8_tile<const N: usize>(mut w: *const u8, mut a: *const u8, kcs: usize) -> [[v128; 4]; N] {
    let mut acc = [[i32x4_splat(0); 4]; N];
    for _ in 0..kcs {
        let wv: [v128; 4] = core::array::from_fn(|r| v128_load(w.add(r * dot8::KB) as *const v128));
        for c in 0..N {
            let av = v128_load(a.add(c * dot8::KB) as *const v128);
            for r in 0..4 {
                acc[c][r] = i32x4_relaxed_dot_i8x16_i7x16_add(wv[r], av, acc[c][r]);
            }
        }
        w = w.add(dot8::STEP);
        a = a.add(dot8::STEP);
    }
    acc
}

pub fn dot8(job: Job<'_>) {
    // Every activation plane holds at most 7 bits (8-bit activations come as two, dot8.rs).
    // SAFETY: as in simd128::dot8.
    simd128::dot8_driver(job, |w, a, kcs| unsafe { dot8_tile::<2>(w, a, kcs) })
}
