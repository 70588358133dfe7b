//! Convolutions without an im2col, against an im2col written out here and `gemm_reference`, on
//! every instruction set of the build and 1 and 2 threads, natively and in the wasm builds
//! (scripts/wasm-test.sh):
//! - the window path (`kernels::Window`: a stride-1 convolution's Lut or Dot8 GEMM): random and
//!   edge-case codes at every width pair, odd image sizes, kernels of 1-3 taps across and down,
//!   padding from none to more than the kernel, channel counts that are and are not multiples of
//!   16 (Dot8's: multiples of 16 only);
//! - the direct path (`kernels::DirectActs`: a shallow convolution's Dot16 GEMM on the padded
//!   image): every weight width at 8-bit and narrower activations, 1-4 channels, rows of an odd
//!   and even number of values, up to its 8 pairs per pixel.

use std::sync::Mutex;

use anybit::format::{Precision, Width};
use anybit::kernels::{
    best_direct_scheme, best_scheme, direct_conv, direct_fits, direct_gemm_then, direct_kernel_fits, gemm_reference, im2col_reference, window_gemm_then, DirectActs, Isa, PackedWeights, Scheme, Window, WindowActs,
};
use anybit::layers::{Context, Conv2d, Layer, QuantWeights, WidthParams};
use anybit::quant::act_codes;
use anybit::{Bits, ErrorKind, Tensor};

#[path = "common/suite.rs"]
#[macro_use]
mod suite;

mod common;
use common::Rng;

fn thread_counts() -> &'static [usize] {
    if cfg!(feature = "threads") {
        &[1, 2]
    } else {
        &[1]
    }
}

/// `win` with its output size from the padding below and right.
fn window(h: usize, w: usize, c: usize, kh: usize, kw: usize, [top, left, bottom, right]: [usize; 4]) -> Window {
    Window { h, w, c, kh, kw, top, left, ho: h + top + bottom + 1 - kh, wo: w + left + right + 1 - kw }
}

/// What a path's epilogue is called with: first pixel, accumulators, code sums, the run's end.
type Then<'a> = dyn Fn(usize, &[i32], &[i32], usize) + Sync + 'a;

/// Runs a path (`run(isa, threads, then)`, `then` called per run of pixels with its end as the
/// part) on every instruction set and thread count and asserts that every pixel reaches the
/// epilogue once, with the products and code sum of the im2col. Returns the runs.
fn check_path(weights: &[u8], img: &[u8], rows: usize, win: Window, what: &str, run: &dyn Fn(Isa, usize, &Then<'_>)) -> usize {
    let (pixels, depth) = (win.ho * win.wo, win.depth());
    let cols = im2col_reference(img, &win);
    let mut want = vec![0i32; rows * pixels];
    gemm_reference(weights, &cols, rows, pixels, depth, &mut want);
    let want_sums: Vec<i32> = cols.chunks(depth).map(|c| c.iter().map(|&x| x as i32).sum()).collect();
    let mut runs = 0;
    for isa in Isa::available() {
        for &threads in thread_counts() {
            let seen = Mutex::new(vec![None; pixels]);
            let then = |p0: usize, acc: &[i32], sums: &[i32], p1: usize| {
                assert_eq!((acc.len(), sums.len()), ((p1 - p0) * rows, p1 - p0), "{what}: block {p0}..{p1}");
                let mut seen = seen.lock().unwrap();
                for (i, p) in (p0..p1).enumerate() {
                    assert!(seen[p].replace((acc[i * rows..(i + 1) * rows].to_vec(), sums[i])).is_none(), "{what}: pixel {p} twice");
                }
            };
            run(isa, threads, &then);
            for (p, got) in seen.into_inner().unwrap().into_iter().enumerate() {
                let (acc, sum) = got.unwrap_or_else(|| panic!("{what}: pixel {p} never reached the epilogue"));
                let how = format!("{what}: {isa:?} {threads} threads rows={rows} {win:?}, pixel {p}");
                assert_eq!(acc, want[p * rows..(p + 1) * rows], "{how}: products");
                assert_eq!(sum, want_sums[p], "{how}: code sum");
            }
            runs += 1;
        }
    }
    runs
}

/// [`check_path`] on the window path, with weights and activations packed for `scheme`.
fn check_on(scheme: Scheme, weights: &[u8], img: &[u8], rows: usize, win: Window, wb: u8, ab: u8, what: &str) -> usize {
    let pw = PackedWeights::new(weights, rows, win.depth(), Bits::new(wb).unwrap(), scheme).unwrap();
    let acts = Mutex::new(WindowActs::default());
    acts.lock().unwrap().pack(img, win, Bits::new(ab).unwrap(), scheme).unwrap();
    check_path(weights, img, rows, win, &format!("{what} {} w{wb}a{ab}", scheme.name()), &|isa, threads, then| {
        // Poisoned scratch: every accumulator the epilogue sees must have been written.
        let mut scratch = vec![i32::MIN + 7; rows * win.columns()];
        window_gemm_then(isa, &pw, &mut acts.lock().unwrap(), &mut scratch, threads, |_, p1| p1, then).unwrap();
    })
}

/// [`check_on`] Lut.
fn check(weights: &[u8], img: &[u8], rows: usize, win: Window, wb: u8, ab: u8, what: &str) -> usize {
    check_on(Scheme::Lut, weights, img, rows, win, wb, ab, what)
}

/// Activation widths whose Dot8 pack is one plane here (the window path's): 1-7 bits, and 8
/// where the relaxed dot product takes them as they are.
fn dot8_widths() -> Vec<u8> {
    (1..=8u8).filter(|&ab| window(1, 1, 16, 1, 1, [0; 4]).fits(Scheme::Dot8, Bits::new(ab).unwrap())).collect()
}

/// [`check_path`] on the direct path. Its input is floats: codes as f32 under a clip of the
/// activation's top level quantize to themselves.
fn check_direct(weights: &[u8], img: &[u8], rows: usize, win: Window, wb: u8, ab: u8, what: &str) -> usize {
    let pw = PackedWeights::new(weights, rows, win.depth(), Bits::new(wb).unwrap(), Scheme::Dot16).unwrap();
    let x: Vec<f32> = img.iter().map(|&a| a as f32).collect();
    let mut acts = DirectActs::default();
    acts.pack_floats(&x, win, ((1u32 << ab) - 1) as f32, Bits::new(ab).unwrap()).unwrap();
    check_path(weights, img, rows, win, &format!("{what} direct w{wb}a{ab}"), &|isa, threads, then| {
        let mut scratch = vec![i32::MIN + 7; rows * win.ho * win.wo];
        direct_gemm_then(isa, &pw, &acts, &mut scratch, threads, |_, p1| p1, then).unwrap();
    })
}

/// Every pixel's products and code sum on the window path, by pixel: `acts` packed already.
fn products(isa: Isa, pw: &PackedWeights, acts: &mut WindowActs, win: Window, rows: usize) -> Vec<(Vec<i32>, i32)> {
    let seen = Mutex::new(vec![None; win.ho * win.wo]);
    let then = |p0: usize, acc: &[i32], sums: &[i32], (): ()| {
        let mut seen = seen.lock().unwrap();
        for (i, &sum) in sums.iter().enumerate() {
            seen[p0 + i] = Some((acc[i * rows..(i + 1) * rows].to_vec(), sum));
        }
    };
    let mut scratch = vec![0; rows * win.columns()];
    window_gemm_then(isa, pw, acts, &mut scratch, 1, |_, _| (), &then).unwrap();
    seen.into_inner().unwrap().into_iter().map(|p| p.expect("every pixel")).collect()
}

suite! {
    fn every_width_pair_on_random_windows() {
        let mut rng = Rng(41);
        let mut runs = 0;
        for wb in 1..=8u8 {
            for ab in 1..=8u8 {
                let (kh, kw) = (1 + rng.below(3), 1 + rng.below(3));
                let (h, w) = (kh + rng.below(6), kw + rng.below(6));
                let c = 4 * (1 + rng.below(9));
                let pads = [rng.below(kh), rng.below(kw), rng.below(kh), rng.below(kw)];
                let win = window(h, w, c, kh, kw, pads);
                let rows = 1 + rng.below(9);
                let (weights, img) = (rng.codes(rows * win.depth(), wb), rng.codes(h * w * c, ab));
                runs += check(&weights, &img, rows, win, wb, ab, "random");
            }
        }
        assert!(runs >= 64);
    }

    fn shapes_of_real_layers() {
        // A ResNet-20 stage-1 conv (16 channels, 3x3, same padding), MNIST's conv3 (7x7, 64
        // channels: 49 pixels in 63 columns) and a 1x1 conv, at 1 and 2 bits.
        let mut rng = Rng(7);
        for (h, c, k, rows) in [(32, 16, 3, 16), (7, 64, 3, 64), (8, 32, 1, 20)] {
            for (wb, ab) in [(1, 1), (1, 2), (2, 2)] {
                let pad = k / 2;
                let win = window(h, h, c, k, k, [pad; 4]);
                let (weights, img) = (rng.codes(rows * win.depth(), wb), rng.codes(h * h * c, ab));
                assert!(check(&weights, &img, rows, win, wb, ab, "layer shape") > 0);
            }
        }
    }

    fn dot8_every_width_pair_on_random_windows() {
        // Dot8 reads 16 channels of one tap per vector: channels in whole 16s, every weight
        // width, every activation width that is one plane here.
        let mut rng = Rng(43);
        let mut runs = 0;
        for wb in 1..=8u8 {
            for ab in dot8_widths() {
                let (kh, kw) = (1 + rng.below(3), 1 + rng.below(3));
                let (h, w) = (kh + rng.below(6), kw + rng.below(6));
                let c = 16 * (1 + rng.below(3));
                let pads = [rng.below(kh + 1), rng.below(kw + 1), rng.below(kh), rng.below(kw)];
                let win = window(h, w, c, kh, kw, pads);
                let rows = 1 + rng.below(9);
                let (weights, img) = (rng.codes(rows * win.depth(), wb), rng.codes(h * w * c, ab));
                runs += check_on(Scheme::Dot8, &weights, &img, rows, win, wb, ab, "random");
            }
        }
        assert!(runs >= 56);
    }

    fn dot8_shapes_of_real_layers_and_saturating_codes() {
        // ResNet-20's three stages (16, 32, 64 channels, same padding), the 3x3 conv 64 -> 64 at
        // 7x7 and a 1x1 conv; then all-zero and all-top codes, where the 8-bit weights' offset
        // (code - 128, dot8.rs) and the column sums meet their extremes.
        let mut rng = Rng(8);
        let top = *dot8_widths().last().unwrap();
        for (h, c, k, rows) in [(32, 16, 3, 16), (16, 32, 3, 32), (8, 64, 3, 64), (7, 64, 3, 64), (8, 32, 1, 20)] {
            for (wb, ab) in [(8, top), (4, 4), (2, 3)] {
                let pad = k / 2;
                let win = window(h, h, c, k, k, [pad; 4]);
                let (weights, img) = (rng.codes(rows * win.depth(), wb), rng.codes(h * h * c, ab));
                assert!(check_on(Scheme::Dot8, &weights, &img, rows, win, wb, ab, "layer shape") > 0);
            }
        }
        let win = window(6, 7, 48, 3, 3, [1, 1, 1, 1]);
        for (wb, ab) in [(1, 1), (8, top), (3, 5)] {
            let (wmax, amax) = ((1u16 << wb) - 1, (1u16 << ab) - 1);
            for (wv, av) in [(0, 0), (wmax, amax), (0, amax), (wmax, 0)] {
                let weights = vec![wv as u8; 5 * win.depth()];
                let img = vec![av as u8; 6 * 7 * 48];
                assert!(check_on(Scheme::Dot8, &weights, &img, 5, win, wb, ab, "saturating") > 0);
            }
        }
    }

    fn odd_sizes_channel_tails_and_wide_padding() {
        let mut rng = Rng(99);
        // Channels 4..=36: whole 16-channel vectors, a tail of groups, or both. Images of one
        // pixel, rows shorter than the kernel, padding wider than the kernel reaches (output rows
        // and columns that see only padding).
        let cases = [
            (1, 1, 4, 1, 1, [0, 0, 0, 0]),
            (1, 1, 20, 3, 3, [1, 1, 1, 1]),
            (2, 5, 36, 3, 3, [2, 2, 2, 2]),
            (5, 2, 12, 2, 3, [1, 2, 0, 0]),
            (3, 17, 8, 3, 1, [0, 0, 2, 0]),
            (9, 9, 16, 3, 3, [0, 0, 0, 0]),
        ];
        for (h, w, c, kh, kw, pads) in cases {
            for rows in [1, 4, 5, 17] {
                let win = window(h, w, c, kh, kw, pads);
                for (wb, ab) in [(1, 1), (3, 2), (8, 1)] {
                    let (weights, img) = (rng.codes(rows * win.depth(), wb), rng.codes(h * w * c, ab));
                    assert!(check(&weights, &img, rows, win, wb, ab, "odd") > 0);
                }
            }
        }
    }

    fn all_zero_and_all_max_codes() {
        let win = window(6, 7, 24, 3, 3, [1, 1, 1, 1]);
        for (wb, ab) in [(1, 1), (2, 2), (6, 2), (8, 8)] {
            let (wmax, amax) = ((1u16 << wb) - 1, (1u16 << ab) - 1);
            for (wv, av) in [(0, 0), (wmax, amax), (0, amax), (wmax, 0)] {
                let weights = vec![wv as u8; 5 * win.depth()];
                let img = vec![av as u8; 6 * 7 * 24];
                assert!(check(&weights, &img, 5, win, wb, ab, "saturating") > 0);
            }
        }
    }

    fn bad_inputs_give_typed_errors() {
        let mut acts = WindowActs::default();
        let two = Bits::new(2).unwrap();
        let win = window(4, 4, 8, 3, 3, [1, 1, 1, 1]);
        // A code wider than the activation bits.
        let mut img = vec![1u8; 4 * 4 * 8];
        img[37] = 4;
        assert_eq!(acts.pack(&img, win, two, Scheme::Lut).unwrap_err().kind(), ErrorKind::BadValue);
        // The wrong number of codes, and channels not in groups of 4 (Lut) or 16 (Dot8), and
        // schemes without a window layout.
        assert_eq!(acts.pack(&img[1..], win, two, Scheme::Lut).unwrap_err().kind(), ErrorKind::ShapeMismatch);
        let odd = window(4, 4, 6, 3, 3, [1, 1, 1, 1]);
        assert!(!odd.fits(Scheme::Lut, two));
        assert_eq!(acts.pack(&[0; 96], odd, two, Scheme::Lut).unwrap_err().kind(), ErrorKind::InvalidArgument);
        assert!(win.fits(Scheme::Lut, two) && !win.fits(Scheme::Dot8, two) && !win.fits(Scheme::Dot16, two) && !win.fits(Scheme::BitSerial, two));
        assert_eq!(acts.pack(&[0; 4 * 4 * 8], win, two, Scheme::Dot8).unwrap_err().kind(), ErrorKind::InvalidArgument);
        assert_eq!(acts.pack(&[0; 4 * 4 * 8], win, two, Scheme::Dot16).unwrap_err().kind(), ErrorKind::InvalidArgument);
        let wide = window(4, 4, 16, 3, 3, [1, 1, 1, 1]);
        let mut bad = vec![3u8; 4 * 4 * 16];
        bad[100] = 4;
        assert_eq!(acts.pack(&bad, wide, two, Scheme::Dot8).unwrap_err().kind(), ErrorKind::BadValue);
        if !dot8_widths().contains(&8) {
            // 8-bit activations in two planes (no exact unsigned relaxed dot product here).
            assert_eq!(acts.pack(&[0; 4 * 4 * 16], wide, Bits::MAX, Scheme::Dot8).unwrap_err().kind(), ErrorKind::InvalidArgument);
        }
        // After a failed pack nothing is packed; weights of another scheme or depth are refused.
        let pw = PackedWeights::new(&vec![0; 3 * win.depth()], 3, win.depth(), two, Scheme::Lut).unwrap();
        let mut out = vec![0; 3 * win.columns()];
        let then = |_: usize, _: &[i32], _: &[i32], _: ()| {};
        let err = window_gemm_then(Isa::Scalar, &pw, &mut acts, &mut out, 1, |_, _| (), &then).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        acts.pack(&[0; 4 * 4 * 8], win, two, Scheme::Lut).unwrap();
        let dot16 = PackedWeights::new(&vec![0; 3 * win.depth()], 3, win.depth(), two, Scheme::Dot16).unwrap();
        assert_eq!(window_gemm_then(Isa::Scalar, &dot16, &mut acts, &mut out, 1, |_, _| (), &then).unwrap_err().kind(), ErrorKind::InvalidArgument);
        // A Dot8 pack with Lut weights, and Lut's with Dot8 weights: refused, not misread.
        let dot8 = PackedWeights::new(&vec![0; 3 * win.depth()], 3, win.depth(), two, Scheme::Dot8).unwrap();
        assert_eq!(window_gemm_then(Isa::Scalar, &dot8, &mut acts, &mut out, 1, |_, _| (), &then).unwrap_err().kind(), ErrorKind::InvalidArgument);
        let mut bytes = WindowActs::default();
        bytes.pack(&[1; 4 * 4 * 16], wide, two, Scheme::Dot8).unwrap();
        let lut16 = PackedWeights::new(&vec![0; 3 * wide.depth()], 3, wide.depth(), two, Scheme::Lut).unwrap();
        let mut out16 = vec![0; 3 * wide.columns()];
        assert_eq!(window_gemm_then(Isa::Scalar, &lut16, &mut bytes, &mut out16, 1, |_, _| (), &then).unwrap_err().kind(), ErrorKind::InvalidArgument);
        let shallow = PackedWeights::new(&[0; 3 * 8], 3, 8, two, Scheme::Lut).unwrap();
        assert_eq!(window_gemm_then(Isa::Scalar, &shallow, &mut acts, &mut out, 1, |_, _| (), &then).unwrap_err().kind(), ErrorKind::ShapeMismatch);
        // Too little scratch for the accumulators.
        assert_eq!(window_gemm_then(Isa::Scalar, &pw, &mut acts, &mut out[1..], 1, |_, _| (), &then).unwrap_err().kind(), ErrorKind::ShapeMismatch);
    }

    fn conv_layers_give_the_same_output_either_way() {
        // Conv2d on the window path against the same layer through im2col (Context::window_convs
        // off): the same integer products and the same epilogue, so the same floats exactly. The
        // window path runs where this build multiplies the width on Lut (SIMD wasm builds at 1-2
        // activation bits); elsewhere both runs take im2col, and the count below says so.
        let mut rng = Rng(5);
        let mut windowed = 0;
        let mut direct = 0;
        // The last four are shallow (depth 9, 8, 4 and an RGB stem's 27): the direct path where
        // they run Dot16.
        for (h, w, cin, cout, k, pad) in [(7, 7, 64, 64, 3, 1), (9, 6, 16, 12, 3, 1), (5, 5, 24, 3, 1, 0), (6, 6, 12, 5, 3, 0), (28, 28, 1, 32, 3, 1), (5, 8, 2, 6, 2, 0), (4, 3, 1, 9, 2, 1), (9, 7, 3, 16, 3, 1)] {
            let depth = k * k * cin;
            let codes8: Vec<u8> = (0..cout * depth).map(|_| rng.next() as u8).collect();
            let x: Vec<f32> = (0..h * w * cin).map(|_| (rng.below(4000) as f32) / 1000.0 - 1.0).collect();
            let input = Tensor::new(vec![h, w, cin], x).unwrap();
            for (wb, ab) in [(1, 1), (1, 2), (2, 2), (4, 4), (8, 8)] {
                let p = WidthParams { wscale: 0.3, clip: 2.0, bias: Some((0..cout).map(|i| i as f32 / 10.0).collect()), row_scales: None };
                let q = QuantWeights::new("conv", codes8.clone(), 1, cout, depth, Precision::Model, vec![p]).unwrap();
                let mut conv = Conv2d::new(q, [k, k], [1, 1], [pad; 4], [1, 1], cin).unwrap();
                conv.set_width(0, Width::new(wb, ab).unwrap()).unwrap();
                let mut ctx = Context::default();
                let fast = conv.forward(&[&input], &mut ctx).unwrap();
                ctx.window_convs = false;
                let im2col = conv.forward(&[&input], &mut ctx).unwrap();
                assert_eq!(fast.shape(), im2col.shape());
                assert_eq!(fast.data(), im2col.data(), "{h}x{w}x{cin} -> {cout}, k{k} pad {pad}, w{wb}a{ab}");
                let (wbits, abits) = (Bits::new(wb).unwrap(), Bits::new(ab).unwrap());
                let scheme = if direct_conv(k, k, cin) { best_direct_scheme(wbits, abits, depth) } else { best_scheme(wbits, abits, depth) };
                let win = window(h, w, cin, k, k, [pad; 4]);
                windowed += usize::from(win.fits(scheme, abits));
                direct += usize::from(scheme == Scheme::Dot16 && !win.fits(scheme, abits) && direct_fits(&win));
            }
        }
        let simd = Isa::best() != Isa::Scalar;
        assert!(!simd || windowed >= 12, "a SIMD build runs 1-2-bit activations on Lut, so on the window path: {windowed} cases");
        // Every build runs the shallow layers' and the RGB stem's 8-bit width on Dot16 (scalar
        // wasm runs 4-bit widths on BitSerial, native code on Dot16); SIMD builds run every
        // width of the shallow layers there, and the stem's 3-8-bit ones (best_direct_scheme).
        assert!(direct >= if simd { 17 } else { 4 }, "shallow layers on the direct path: {direct} cases");
    }

    fn floats_pack_as_their_codes() {
        // pack_floats quantizes on the way (SIMD at 1-2 bits: a compare per level, no
        // truncation): it must pack exactly the codes quant::act_codes gives, on values below 0,
        // above the clip, on the rounding boundaries and the floats either side of them, and NaN
        // and infinities.
        let mut rng = Rng(13);
        for (h, w, c) in [(5, 6, 16), (3, 4, 20), (4, 4, 36), (2, 3, 4), (3, 4, 32)] {
            let win = window(h, w, c, 3, 3, [1, 1, 1, 1]);
            for (scheme, ab) in (1..=8u8).map(|ab| (Scheme::Lut, ab)).chain(dot8_widths().into_iter().map(|ab| (Scheme::Dot8, ab))) {
                if !win.fits(scheme, Bits::new(ab).unwrap()) {
                    continue;
                }
                let abits = Bits::new(ab).unwrap();
                let clip = 0.5 + rng.below(300) as f32 / 100.0;
                let k = ((1u32 << ab) - 1) as f32 / clip;
                let mut special = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, clip, clip * 1.01];
                for b in [0.5 / k, 1.5 / k, 2.5 / k, clip - 0.5 / k] {
                    special.extend([f32::from_bits(b.to_bits() - 1), b, f32::from_bits(b.to_bits() + 1)]);
                }
                let x: Vec<f32> = (0..h * w * c)
                    .map(|i| if i % 7 == 3 { special[i % special.len()] } else { rng.below(4000) as f32 / 4000.0 * clip * 1.6 - 0.3 * clip })
                    .collect();
                let mut codes = vec![0u8; x.len()];
                act_codes(&x, clip, abits, &mut codes);
                let rows = 3;
                let pw = PackedWeights::new(&rng.codes(rows * win.depth(), 2), rows, win.depth(), Bits::new(2).unwrap(), scheme).unwrap();
                let (mut from_codes, mut from_floats) = (WindowActs::default(), WindowActs::default());
                from_codes.pack(&codes, win, abits, scheme).unwrap();
                from_floats.pack_floats(&x, win, clip, abits, scheme, 1).unwrap();
                // Asked for 2 threads (an image this small stays on one; the split is
                // a_large_image_packs_the_same_split_over_threads's), and from codes so: the same packs.
                let (mut floats2, mut codes2) = (WindowActs::default(), WindowActs::default());
                floats2.pack_floats(&x, win, clip, abits, scheme, 2).unwrap();
                codes2.pack_threads(&codes, win, abits, scheme, 2).unwrap();
                let s = scheme.name();
                for isa in Isa::available() {
                    let want = products(isa, &pw, &mut from_codes, win, rows);
                    assert_eq!(products(isa, &pw, &mut from_floats, win, rows), want, "{s} {isa:?} a{ab} {h}x{w}x{c}");
                    assert_eq!(products(isa, &pw, &mut floats2, win, rows), want, "{s} {isa:?} a{ab} {h}x{w}x{c}, 2 threads");
                    assert_eq!(products(isa, &pw, &mut codes2, win, rows), want, "{s} {isa:?} a{ab} {h}x{w}x{c}, codes, 2 threads");
                }
            }
        }
        let mut acts = WindowActs::default();
        let win = window(2, 2, 8, 1, 1, [0; 4]);
        assert_eq!(acts.pack_floats(&[0.0; 31], win, 1.0, Bits::new(2).unwrap(), Scheme::Lut, 1).unwrap_err().kind(), ErrorKind::ShapeMismatch);
    }

    fn a_large_image_packs_the_same_split_over_threads() {
        // Small images pack on one thread whatever the count; from 2^18 values the rows are
        // split (window.rs MIN_SPLIT_VALUES). Both must pack what one thread packs.
        let mut rng = Rng(17);
        let (h, w, c) = (64, 64, 64);
        let win = window(h, w, c, 3, 3, [1, 1, 1, 1]);
        for (scheme, ab) in [(Scheme::Lut, 1u8), (Scheme::Lut, 2), (Scheme::Lut, 8), (Scheme::Dot8, 4), (Scheme::Dot8, 7)] {
            let pw = PackedWeights::new(&rng.codes(win.depth(), 2), 1, win.depth(), Bits::new(2).unwrap(), scheme).unwrap();
            let abits = Bits::new(ab).unwrap();
            let clip = 1.5;
            let x: Vec<f32> = (0..h * w * c).map(|_| rng.below(4000) as f32 / 4000.0 * 2.0 - 0.2).collect();
            let mut codes = vec![0u8; x.len()];
            act_codes(&x, clip, abits, &mut codes);
            let mut one = WindowActs::default();
            one.pack(&codes, win, abits, scheme).unwrap();
            let (mut codes2, mut floats2) = (WindowActs::default(), WindowActs::default());
            codes2.pack_threads(&codes, win, abits, scheme, 2).unwrap();
            floats2.pack_floats(&x, win, clip, abits, scheme, 2).unwrap();
            let isa = Isa::available()[0];
            let want = products(isa, &pw, &mut one, win, 1);
            assert_eq!(products(isa, &pw, &mut codes2, win, 1), want, "{} a{ab}, codes, 2 threads", scheme.name());
            assert_eq!(products(isa, &pw, &mut floats2, win, 1), want, "{} a{ab}, floats, 2 threads", scheme.name());
        }
    }

    fn direct_path_on_random_shallow_convolutions() {
        let mut rng = Rng(23);
        let mut runs = 0;
        let mut cases = 0;
        while cases < 60 {
            let (c, kh, kw) = (1 + rng.below(4), 1 + rng.below(4), 1 + rng.below(4));
            let (h, w) = (kh + rng.below(7), kw + rng.below(7));
            let win = window(h, w, c, kh, kw, [rng.below(kh), rng.below(kw), rng.below(kh), rng.below(kw)]);
            if !direct_fits(&win) {
                continue;
            }
            cases += 1;
            let (wb, ab) = (1 + rng.below(8) as u8, if cases % 2 == 0 { 8 } else { 1 + rng.below(8) as u8 });
            let rows = 1 + rng.below(11);
            let (weights, img) = (rng.codes(rows * win.depth(), wb), rng.codes(h * w * c, ab));
            runs += check_direct(&weights, &img, rows, win, wb, ab, "random");
        }
        assert!(runs >= 60);
    }

    fn direct_path_on_first_layers_and_saturating_codes() {
        // MNIST's and Fashion-MNIST's first convs (28x28, one channel, 3x3, same padding, 32 and
        // 48 outputs), then all-zero and all-255 codes: the largest products the pairs sum.
        let mut rng = Rng(3);
        for rows in [32, 48] {
            let win = window(28, 28, 1, 3, 3, [1; 4]);
            let (weights, img) = (rng.codes(rows * 9, 8), rng.codes(28 * 28, 8));
            assert!(check_direct(&weights, &img, rows, win, 8, 8, "first layer") > 0);
        }
        // ResNet-20's stem: 32x32 RGB, 3x3, same padding, 16 outputs (15 pairs per pixel).
        let win = window(32, 32, 3, 3, 3, [1; 4]);
        assert!(direct_fits(&win));
        let (weights, img) = (rng.codes(16 * 27, 8), rng.codes(32 * 32 * 3, 8));
        assert!(check_direct(&weights, &img, 16, win, 8, 8, "RGB stem") > 0);
        let win = window(5, 6, 2, 2, 3, [1, 1, 0, 1]);
        for (wv, av) in [(0u8, 0u8), (255, 255), (0, 255), (255, 0)] {
            let weights = vec![wv; 7 * win.depth()];
            let img = vec![av; 5 * 6 * 2];
            assert!(check_direct(&weights, &img, 7, win, 8, 8, "saturating") > 0);
        }
    }

    fn direct_path_quantizes_floats_as_act_codes() {
        // NaN, infinities, values below 0 and above the clip, and the rounding boundaries: the
        // padded image holds exactly the codes quant::act_codes gives.
        let mut rng = Rng(17);
        for ab in 1..=8u8 {
            let win = window(6, 5, 1, 3, 3, [1; 4]);
            let clip = 0.5 + rng.below(300) as f32 / 100.0;
            let k = ((1u32 << ab) - 1) as f32 / clip;
            let special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, clip, clip * 1.01, 0.5 / k, 1.5 / k, 2.5 / k];
            let x: Vec<f32> = (0..30).map(|i| if i % 3 == 1 { special[i % special.len()] } else { rng.below(4000) as f32 / 4000.0 * clip * 1.6 - 0.3 * clip }).collect();
            let mut codes = vec![0u8; x.len()];
            act_codes(&x, clip, Bits::new(ab).unwrap(), &mut codes);
            let rows = 5;
            let weights = rng.codes(rows * 9, 8);
            let pw = PackedWeights::new(&weights, rows, 9, Bits::new(8).unwrap(), Scheme::Dot16).unwrap();
            let mut acts = DirectActs::default();
            acts.pack_floats(&x, win, clip, Bits::new(ab).unwrap()).unwrap();
            check_path(&weights, &codes, rows, win, &format!("floats a{ab}"), &|isa, threads, then| {
                let mut scratch = vec![0; rows * 30];
                direct_gemm_then(isa, &pw, &acts, &mut scratch, threads, |_, p1| p1, then).unwrap();
            });
        }
    }

    fn direct_path_bad_inputs_give_typed_errors() {
        let eight = Bits::new(8).unwrap();
        let mut acts = DirectActs::default();
        let win = window(4, 4, 1, 3, 3, [1; 4]);
        // Too many pairs per pixel (4 channels x 3 taps: 6 per tap row, 18 in all).
        let wide = window(4, 4, 4, 3, 3, [1; 4]);
        assert!(!direct_fits(&wide) && !direct_kernel_fits(3, 3, 4) && direct_kernel_fits(3, 3, 3));
        // A 1x1 kernel fits, but its weights stay on best_scheme's choice (no im2col to save).
        assert!(direct_kernel_fits(1, 1, 24) && !direct_conv(1, 1, 24) && direct_conv(3, 3, 3));
        assert_eq!(acts.pack_floats(&[0.0; 64], wide, 1.0, eight).unwrap_err().kind(), ErrorKind::InvalidArgument);
        assert_eq!(acts.pack_floats(&[0.0; 15], win, 1.0, eight).unwrap_err().kind(), ErrorKind::ShapeMismatch);
        // Nothing packed after a failed pack; weights of another scheme or depth; short scratch.
        let pw = PackedWeights::new(&[1; 3 * 9], 3, 9, eight, Scheme::Dot16).unwrap();
        let mut out = vec![0; 3 * 16];
        let then = |_: usize, _: &[i32], _: &[i32], _: ()| {};
        assert_eq!(direct_gemm_then(Isa::Scalar, &pw, &acts, &mut out, 1, |_, _| (), &then).unwrap_err().kind(), ErrorKind::InvalidArgument);
        acts.pack_floats(&[0.5; 16], win, 1.0, eight).unwrap();
        let lut = PackedWeights::new(&[1; 3 * 9], 3, 9, eight, Scheme::Lut).unwrap();
        assert_eq!(direct_gemm_then(Isa::Scalar, &lut, &acts, &mut out, 1, |_, _| (), &then).unwrap_err().kind(), ErrorKind::InvalidArgument);
        let shallow = PackedWeights::new(&[1; 3 * 8], 3, 8, eight, Scheme::Dot16).unwrap();
        assert_eq!(direct_gemm_then(Isa::Scalar, &shallow, &acts, &mut out, 1, |_, _| (), &then).unwrap_err().kind(), ErrorKind::ShapeMismatch);
        assert_eq!(direct_gemm_then(Isa::Scalar, &pw, &acts, &mut out[1..], 1, |_, _| (), &then).unwrap_err().kind(), ErrorKind::ShapeMismatch);
        direct_gemm_then(Isa::Scalar, &pw, &acts, &mut out, 1, |_, _| (), &then).unwrap();
    }
}
