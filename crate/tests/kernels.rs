//! The shared kernel suite: every scheme x every instruction set in this build x 1 and 2 threads,
//! compared exactly with `gemm_reference`, for every weight/activation width pair, on random
//! codes and edge cases. Runs natively (`cargo test`) and as wasm in Node and headless Chromium
//! (`scripts/wasm-test.sh`), where each build variant brings its own `Isa::available()`.

use anybit::kernels::{
    best_scheme, gemm, gemm_reference, one_plane_at_8_bits, pack_gemm_then, two_planes_at_8_bits, ActCodes, Isa, PackedActs, PackedSize, PackedWeights, Scheme, MAX_DEPTH,
};
use std::sync::Mutex;
use anybit::{Bits, ErrorKind};

/// xorshift64*: tiny, seeded, good enough for test data.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn codes(&mut self, n: usize, bits: u8) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 40) as u8 & ((1u16 << bits) - 1) as u8).collect()
    }
}

/// Without the `threads` feature a thread count above 1 runs the same code as 1, so testing it
/// twice would only cost time.
fn thread_counts() -> &'static [usize] {
    if cfg!(feature = "threads") {
        &[1, 2]
    } else {
        &[1]
    }
}

/// Runs every implementation on one problem and asserts exact equality with the reference.
/// Returns how many implementations were checked, so callers can assert the suite is not empty.
#[allow(clippy::too_many_arguments)]
fn check_all(w: &[u8], a: &[u8], rows: usize, cols: usize, depth: usize, wb: u8, ab: u8, what: &str) -> usize {
    let mut want = vec![0i32; rows * cols];
    gemm_reference(w, a, rows, cols, depth, &mut want);
    let want_sums: Vec<i32> = (0..cols).map(|c| a[c * depth..(c + 1) * depth].iter().map(|&x| x as i32).sum()).collect();
    let (wbits, abits) = (Bits::new(wb).unwrap(), Bits::new(ab).unwrap());
    let mut checked = 0;
    for &scheme in Scheme::all() {
        let pw = PackedWeights::new(w, rows, depth, wbits, scheme).unwrap();
        assert_eq!((pw.rows(), pw.depth(), pw.wbits(), pw.scheme()), (rows, depth, wbits, scheme));
        let mut pa = PackedActs::new();
        for &threads in thread_counts() {
            pa.pack_threads(a, cols, depth, abits, scheme, threads).unwrap();
            assert_eq!(pa.cols(), cols);
            assert_eq!(pa.col_sums(), &want_sums[..], "{what}: col sums, {scheme:?}, {threads} threads");
            for isa in Isa::available() {
                // Poisoned output: a kernel that skips an element cannot pass by accident.
                let mut got = vec![i32::MIN + 7; rows * cols + 3];
                gemm(isa, &pw, &pa, &mut got, threads).unwrap();
                if got[..rows * cols] != want[..] {
                    let i = (0..rows * cols).find(|&i| got[i] != want[i]).unwrap();
                    panic!(
                        "{what}: {scheme:?} {isa:?} threads={threads} w{wb}a{ab} rows={rows} cols={cols} depth={depth}: \
                         first mismatch at col {} row {}: got {} want {}",
                        i / rows, i % rows, got[i], want[i]
                    );
                }
                assert!(got[rows * cols..].iter().all(|&x| x == i32::MIN + 7), "{what}: wrote past rows*cols");
                checked += 1;
                // Packing each column block in the GEMM's fork gives the same products, from codes
                // given or written block by block in the fork, and each block's epilogue sees its
                // own columns' sums, every column once.
                for filled in [false, true] {
                    let mut fused = PackedActs::new();
                    let mut got = vec![i32::MIN + 7; rows * cols + 3];
                    let seen = Mutex::new(vec![None; cols]);
                    let then = |c0: usize, acc: &[i32], sums: &[i32], c1: usize| {
                        assert_eq!((acc.len(), sums.len()), ((c1 - c0) * rows, c1 - c0), "{what}: block {c0}..{c1}");
                        let mut seen = seen.lock().unwrap();
                        for (c, &sum) in (c0..c1).zip(sums) {
                            assert!(seen[c].replace(sum).is_none(), "{what}: column {c} twice");
                        }
                    };
                    let fill = |c0: usize, c1: usize, dst: &mut [u8]| dst.copy_from_slice(&a[c0 * depth..c1 * depth]);
                    let mut buffer = vec![0xFF; cols * depth];
                    let codes = if filled { ActCodes::Fill(&mut buffer, &fill) } else { ActCodes::Ready(a) };
                    pack_gemm_then(isa, &pw, &mut fused, codes, cols, abits, &mut got, threads, |_, c1| c1, &then).unwrap();
                    let how = if filled { "filled in the fork" } else { "given" };
                    if rows > 0 {
                        let seen: Vec<i32> = seen.into_inner().unwrap().into_iter().map(|s| s.expect("every column reaches its epilogue")).collect();
                        assert_eq!(seen, want_sums, "{what}: fused col sums, codes {how}, {scheme:?} {isa:?} {threads} threads");
                    }
                    assert_eq!(fused.col_sums(), &want_sums[..], "{what}: fused pack kept");
                    if got[..rows * cols] != want[..] {
                        let i = (0..rows * cols).find(|&i| got[i] != want[i]).unwrap();
                        panic!(
                            "{what}: fused, codes {how}, {scheme:?} {isa:?} threads={threads} w{wb}a{ab} rows={rows} cols={cols} depth={depth}: \
                             first mismatch at col {} row {}",
                            i / rows, i % rows
                        );
                    }
                    assert!(got[rows * cols..].iter().all(|&x| x == i32::MIN + 7), "{what}: fused wrote past rows*cols");
                    checked += 1;
                }
            }
        }
    }
    checked
}

#[path = "common/suite.rs"]
#[macro_use]
mod suite;

suite! {
    fn every_width_pair_random() {
        let mut rng = Rng::new(1);
        let mut n = 0;
        for wb in 1..=8u8 {
            for ab in 1..=8u8 {
                // Sizes off every SIMD granule: rows not /4, cols not /4, depth not /8 or /128.
                let (rows, cols, depth) = (5, 7, 131);
                let w = rng.codes(rows * depth, wb);
                let a = rng.codes(cols * depth, ab);
                n += check_all(&w, &a, rows, cols, depth, wb, ab, "random");
            }
        }
        assert!(n >= 64 * Scheme::all().len());
    }

    fn odd_shapes() {
        let mut rng = Rng::new(2);
        let pairs = [(1u8, 1u8), (2, 2), (3, 8), (8, 8), (1, 8), (4, 4), (5, 3), (7, 7), (2, 8), (6, 1)];
        let mut p = 0;
        // 1..=16 also run SIMD128's shallow Dot16 kernel (pairs of depth), 17 the general one.
        for &depth in &[1usize, 2, 3, 7, 9, 16, 17, 127, 129, 576] {
            for &rows in &[1usize, 3, 5, 64] {
                for &cols in &[1usize, 2, 7, 33] {
                    // Rotate through width pairs rather than crossing them, to stay fast.
                    let (wb, ab) = pairs[p % pairs.len()];
                    p += 1;
                    let w = rng.codes(rows * depth, wb);
                    let a = rng.codes(cols * depth, ab);
                    check_all(&w, &a, rows, cols, depth, wb, ab, "odd shape");
                }
            }
        }
    }

    fn all_zero_and_all_max_codes() {
        // Depth 261: past one u8 flush of Lut's 1-bit tables (63 lookups = 252 depth); 9 and 16:
        // SIMD128's shallow Dot16 kernel.
        for (rows, cols, depth) in [(6, 5, 261), (6, 5, 9), (5, 3, 16)] {
            for wb in 1..=8u8 {
                for ab in 1..=8u8 {
                    let wmax = ((1u16 << wb) - 1) as u8;
                    let amax = ((1u16 << ab) - 1) as u8;
                    let zeros_w = vec![0u8; rows * depth];
                    let zeros_a = vec![0u8; cols * depth];
                    let max_w = vec![wmax; rows * depth];
                    let max_a = vec![amax; cols * depth];
                    check_all(&zeros_w, &max_a, rows, cols, depth, wb, ab, "zero weights");
                    check_all(&max_w, &zeros_a, rows, cols, depth, wb, ab, "zero acts");
                    check_all(&max_w, &max_a, rows, cols, depth, wb, ab, "all max");
                }
            }
        }
    }

    fn depth_at_the_limit_does_not_overflow() {
        // All-max codes are the worst case for every intermediate accumulator (Lut's u8/u16
        // lanes, bit-serial's byte counters, the final i32), at every weight width.
        // Full depth where the i32 result or Lut's u16 lanes (2-bit weights: 21 lookups per u8
        // flush, 256 flushes per u16) come close to their limits; half depth already overflows
        // every other width's u16 lanes several times.
        let (rows, cols) = (3, 2);
        for (wb, ab, depth) in [(8u8, 8u8, MAX_DEPTH), (2, 2, MAX_DEPTH), (1, 1, 16384), (3, 3, 16384), (4, 4, 16384), (5, 5, 16384), (6, 6, 16384), (6, 1, 16384), (7, 7, 16384), (1, 8, 16384)] {
            let wmax = ((1u16 << wb) - 1) as u8;
            let amax = ((1u16 << ab) - 1) as u8;
            let w = vec![wmax; rows * depth];
            let a = vec![amax; cols * depth];
            check_all(&w, &a, rows, cols, depth, wb, ab, "max depth, max codes");
            let mut want = vec![0; rows * cols];
            gemm_reference(&w, &a, rows, cols, depth, &mut want);
            assert!(want.iter().all(|&x| x == wmax as i32 * amax as i32 * depth as i32));
        }
        // Random codes near the limit.
        let mut rng = Rng::new(3);
        let (rows, cols, depth) = (3, 2, MAX_DEPTH - 5);
        for (wb, ab) in [(8u8, 8u8), (2, 2), (6, 3)] {
            let w = rng.codes(rows * depth, wb);
            let a = rng.codes(cols * depth, ab);
            check_all(&w, &a, rows, cols, depth, wb, ab, "near max depth");
        }
    }

    fn larger_layer_shape() {
        // One realistic tile count in every direction (several row and column tiles, threads
        // splitting mid-way), at the widths the layers use most.
        let mut rng = Rng::new(4);
        let (rows, cols, depth) = (64, 40, 576);
        for (wb, ab) in [(8u8, 8u8), (1, 1), (2, 2), (4, 8)] {
            let w = rng.codes(rows * depth, wb);
            let a = rng.codes(cols * depth, ab);
            check_all(&w, &a, rows, cols, depth, wb, ab, "layer shape");
        }
    }

    fn reused_acts_buffer_is_repacked_cleanly() {
        // The buffer only grows: a small pack after a big one must not see stale data in its
        // padding, for every scheme (bit-serial and dot16 both rely on zero padding).
        let mut rng = Rng::new(5);
        for &scheme in Scheme::all() {
            let mut pa = PackedActs::new();
            let big = vec![255u8; 33 * 700];
            pa.pack(&big, 33, 700, Bits::MAX, scheme).unwrap();
            let (rows, cols, depth, wb, ab) = (5, 3, 9, 8, 8);
            let w = rng.codes(rows * depth, wb);
            let a = rng.codes(cols * depth, ab);
            pa.pack(&a, cols, depth, Bits::new(ab).unwrap(), scheme).unwrap();
            let pw = PackedWeights::new(&w, rows, depth, Bits::new(wb).unwrap(), scheme).unwrap();
            let mut want = vec![0; rows * cols];
            gemm_reference(&w, &a, rows, cols, depth, &mut want);
            for isa in Isa::available() {
                let mut got = vec![0; rows * cols];
                gemm(isa, &pw, &pa, &mut got, 1).unwrap();
                assert_eq!(got, want, "{scheme:?} {isa:?}");
            }
            assert_eq!(pa.col_sums().len(), cols);
        }
    }

    fn bad_inputs_give_typed_errors() {
        let b = |bits: u8| Bits::new(bits).unwrap();
        for &scheme in Scheme::all() {
            // Code too large for its width.
            let e = PackedWeights::new(&[0, 1, 4, 0], 2, 2, b(2), scheme).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::BadValue, "{e}");
            let mut pa = PackedActs::new();
            let e = pa.pack(&[0, 2], 1, 2, b(1), scheme).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::BadValue, "{e}");
            // Width outside 1..=8: the kernels take `Bits`, which refuses it.
            assert_eq!(Bits::new(0).unwrap_err().kind(), ErrorKind::UnsupportedWidth);
            assert_eq!(Bits::new(9).unwrap_err().kind(), ErrorKind::UnsupportedWidth);
            // Wrong number of codes.
            assert_eq!(PackedWeights::new(&[0; 5], 2, 3, b(8), scheme).unwrap_err().kind(), ErrorKind::ShapeMismatch);
            assert_eq!(pa.pack(&[0; 5], 2, 3, b(8), scheme).unwrap_err().kind(), ErrorKind::ShapeMismatch);
            // Size overflow and depth beyond the accumulator's range.
            assert_eq!(PackedWeights::new(&[], usize::MAX, 2, b(8), scheme).unwrap_err().kind(), ErrorKind::LimitExceeded);
            let deep = vec![0u8; MAX_DEPTH + 1];
            assert_eq!(PackedWeights::new(&deep, 1, MAX_DEPTH + 1, b(8), scheme).unwrap_err().kind(), ErrorKind::LimitExceeded);
            assert_eq!(pa.pack(&deep, 1, MAX_DEPTH + 1, b(8), scheme).unwrap_err().kind(), ErrorKind::LimitExceeded);

            let w = PackedWeights::new(&[1; 6], 2, 3, b(8), scheme).unwrap();
            let isa = Isa::best();
            // Activations never (successfully) packed.
            let mut out = [0; 8];
            assert_eq!(gemm(isa, &w, &pa, &mut out, 1).unwrap_err().kind(), ErrorKind::InvalidArgument);
            // Depth mismatch.
            pa.pack(&[1; 8], 2, 4, b(8), scheme).unwrap();
            assert_eq!(gemm(isa, &w, &pa, &mut out, 1).unwrap_err().kind(), ErrorKind::ShapeMismatch);
            // Output too small.
            pa.pack(&[1; 6], 2, 3, b(8), scheme).unwrap();
            assert_eq!(gemm(isa, &w, &pa, &mut out[..3], 1).unwrap_err().kind(), ErrorKind::ShapeMismatch);
            gemm(isa, &w, &pa, &mut out[..4], 1).unwrap();
            assert_eq!(&out[..4], &[3, 3, 3, 3]);
            // Scheme mismatch.
            for &other in Scheme::all().iter().filter(|&&s| s != scheme) {
                pa.pack(&[1; 6], 2, 3, b(8), other).unwrap();
                assert_eq!(gemm(isa, &w, &pa, &mut out, 1).unwrap_err().kind(), ErrorKind::InvalidArgument);
            }
            // An Isa missing from this build.
            for isa in [Isa::Scalar, Isa::Simd128, Isa::Relaxed] {
                if !Isa::available().contains(&isa) {
                    pa.pack(&[1; 6], 2, 3, b(8), scheme).unwrap();
                    assert_eq!(gemm(isa, &w, &pa, &mut out, 1).unwrap_err().kind(), ErrorKind::InvalidArgument);
                }
            }
        }
    }

    fn empty_problems_are_fine() {
        for &scheme in Scheme::all() {
            let four = Bits::new(4).unwrap();
            let w = PackedWeights::new(&[], 3, 0, four, scheme).unwrap();
            let mut pa = PackedActs::new();
            pa.pack(&[], 2, 0, four, scheme).unwrap();
            let mut out = [9; 6];
            gemm(Isa::best(), &w, &pa, &mut out, 2).unwrap();
            assert_eq!(out, [0; 6]);
            assert_eq!(pa.col_sums(), &[0, 0]);
            pa.pack(&[], 0, 5, four, scheme).unwrap();
            let w = PackedWeights::new(&[0; 15], 3, 5, four, scheme).unwrap();
            gemm(Isa::best(), &w, &pa, &mut [], 2).unwrap();
        }
    }

    fn eight_bit_acts_in_two_planes_too() {
        // The relaxed-SIMD build packs 8-bit activations as one plane where the engine's dot
        // product is exact for bytes of 128..=255 (then every test above ran that path at 8
        // bits), else as two: this runs the two-plane path wherever the other is the default.
        // Natively there is one plane count only, and the switch changes nothing.
        two_planes_at_8_bits(true);
        assert!(!one_plane_at_8_bits());
        let mut rng = Rng::new(9);
        let mut n = 0;
        for wb in 1..=8u8 {
            for (rows, cols, depth) in [(5, 7, 131), (6, 5, 261), (64, 33, 576)] {
                let w = rng.codes(rows * depth, wb);
                let a = rng.codes(cols * depth, 8);
                n += check_all(&w, &a, rows, cols, depth, wb, 8, "two planes, random");
                let (wmax, amax) = (vec![((1u16 << wb) - 1) as u8; rows * depth], vec![255u8; cols * depth]);
                n += check_all(&wmax, &amax, rows, cols, depth, wb, 8, "two planes, all max");
            }
        }
        two_planes_at_8_bits(false);
        assert!(n >= 48 * Scheme::all().len());
    }

    fn isa_and_scheme_metadata() {
        let av = Isa::available();
        assert_eq!(av[0], Isa::Scalar);
        assert_eq!(Isa::best(), *av.last().unwrap());
        assert!(Scheme::all().contains(&Scheme::Dot16) && Scheme::all().contains(&Scheme::BitSerial));
        for wb in 1..=8 {
            for ab in 1..=8 {
                for depth in [1, 9, 16, 17, 576] {
                    assert!(Scheme::all().contains(&best_scheme(Bits::new(wb).unwrap(), Bits::new(ab).unwrap(), depth)));
                }
            }
        }
        let names: Vec<_> = av.iter().map(|i| i.name()).collect();
        assert!(names.iter().all(|n| !n.is_empty()));
    }
}

// The policy's memory cap costs widths it has not packed from `PackedSize`: it must be what
// packing really allocates, for every scheme, width and odd shape.
suite! {
    fn packed_size_is_what_packing_allocates() {
        let mut checked = 0;
        for &scheme in Scheme::all() {
            for wb in 1..=8u8 {
                for &(rows, depth) in &[(1, 1), (3, 7), (17, 33), (64, 288), (10, 3136)] {
                    let codes: Vec<u8> = (0..rows * depth).map(|i| (i % (1 << wb)) as u8).collect();
                    let wbits = Bits::new(wb).unwrap();
                    let Ok(p) = PackedWeights::new(&codes, rows, depth, wbits, scheme) else { continue };
                    let size = PackedSize::of(rows, depth, wbits, scheme);
                    assert_eq!(p.heap_bytes(), size.heap_bytes(), "{scheme:?} w{wb} {rows}x{depth}");
                    assert!(size.heap_bytes() >= rows * depth * wb as usize / 8, "{scheme:?} w{wb}: smaller than the bits");
                    checked += 1;
                }
            }
        }
        assert!(checked >= 4 * 8 * 5 / 2, "only {checked} scheme/width/shape combinations packed");
    }
}
