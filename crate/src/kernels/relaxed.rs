//! Relaxed-SIMD micro-kernels (compiled only with `+relaxed-simd`). The relaxed swizzle lives in
//! `simd128`'s Lut kernel (a const switch); here is the Dot8 kernel on
//! `i32x4.relaxed_dot_i8x16_i7x16_add`, whose result is only specified for a second operand in
//! 0..=127: activations of up to 7 bits as they are, 8-bit ones as two planes (dot8.rs), or as
//! they are where [`unsigned_dot_is_exact`].

use core::arch::wasm32::*;
use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

use super::job::{Driver, Job};
use super::{simd128, Scheme};

/// Dot16 and BitSerial gain nothing from relaxed SIMD and run the SIMD128 kernels.
pub fn driver(scheme: Scheme) -> Driver {
    match scheme {
        Scheme::Dot16 => simd128::dot16,
        Scheme::BitSerial => simd128::bitserial,
        Scheme::Lut => simd128::lut_relaxed,
        Scheme::Dot8 => dot8,
    }
}

/// Whether this engine's `i32x4.relaxed_dot_i8x16_i7x16_add` takes second-operand bytes of
/// 128..=255 as unsigned and sums the four products of a lane exactly, as for 0..=127. The
/// relaxed-SIMD spec lets such bytes give one of several results (signed, as ARM's `sdot`; pairs
/// saturated to i16, as x64's `pmaddubsw`; exact, as x64's AVX-VNNI `vpdpbusd`, which V8 emits
/// where the CPU has it). An engine lowers the instruction to one fixed sequence for the CPU it
/// runs on (V8's baseline and optimizing tiers give the same sums: BENCHMARKS.md), so one probe
/// decides for the whole run: 8-bit activations then go as one plane of bytes, half the dot
/// products of two planes. Inputs that tell the three apart: a lane of -128 x 255 saturates
/// under `pmaddubsw` and is 512 when signed.
pub fn unsigned_dot_is_exact() -> bool {
    // 0: not probed yet, 1: no, 2: yes.
    static KNOWN: AtomicU8 = AtomicU8::new(0);
    match KNOWN.load(Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let exact = probe_unsigned_dot();
            KNOWN.store(if exact { 2 } else { 1 }, Relaxed);
            exact
        }
    }
}

#[inline(never)]
fn probe_unsigned_dot() -> bool {
    let w: [i8; 16] = [-128, -128, -128, -128, 127, 127, 127, 127, -1, 2, -3, 4, -128, 127, 0, 1];
    let a: [u8; 16] = [255, 255, 255, 255, 255, 255, 255, 255, 200, 129, 128, 255, 128, 1, 255, 254];
    let acc = [7, -9, 11, 0];
    // black_box: the sums must come from the engine's instruction, not from LLVM folding it.
    let (wv, av, cv) = core::hint::black_box((bytes(w.map(|x| x as u8)), bytes(a), i32x4(acc[0], acc[1], acc[2], acc[3])));
    let got = i32x4_relaxed_dot_i8x16_i7x16_add(wv, av, cv);
    let got = [i32x4_extract_lane::<0>(got), i32x4_extract_lane::<1>(got), i32x4_extract_lane::<2>(got), i32x4_extract_lane::<3>(got)];
    (0..4).all(|l| got[l] == acc[l] + (0..4).map(|j| w[4 * l + j] as i32 * a[4 * l + j] as i32).sum::<i32>())
}

fn bytes(b: [u8; 16]) -> v128 {
    // SAFETY: 16 bytes, unaligned load.
    unsafe { v128_load(b.as_ptr() as *const v128) }
}

pub fn dot8(job: Job<'_>) {
    // Every activation plane holds at most 7 bits (8-bit activations come as two, dot8.rs), or 8
    // where the engine's dot product is exact for them (`unsigned_dot_is_exact`).
    // One instruction per 16 depth, row and column.
    simd128::dot8_driver(job, |w, a, acc| i32x4_relaxed_dot_i8x16_i7x16_add(w, a, acc))
}
