//! Layers against straightforward f32 references built from the quantizer definitions.

use anybit::format::{Precision, Width};
use anybit::layers::{
    Add, Affine, Clamp, Context, Conv2d, Dense, Flatten, GlobalAvgPool, Layer, Pool, PoolKind,
    QuantWeights, Softmax, WidthParams,
};
use anybit::quant::{act_code, act_value, derive_code, weight_value};
use anybit::{Bits, ErrorKind, Tensor};

mod common;
use common::Rng;

struct ConvCase {
    h: usize,
    w: usize,
    cin: usize,
    cout: usize,
    k: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 4],
    dil: [usize; 2],
    groups: usize,
}

fn params(rng: &mut Rng, outputs: usize, bias: bool) -> WidthParams {
    WidthParams {
        wscale: rng.f32(0.05, 0.5),
        clip: rng.f32(0.5, 3.0),
        bias: bias.then(|| rng.floats(outputs, -1.0, 1.0)),
        row_scales: None,
    }
}

/// f32 convolution of the dequantized input and weights: what the integer path must equal.
fn conv_reference(c: &ConvCase, x: &[f32], codes8: &[u8], p: &WidthParams, wb: u8, ab: u8) -> Vec<f32> {
    let (wb, ab) = (Bits::new(wb).unwrap(), Bits::new(ab).unwrap());
    let (cg, mg) = (c.cin / c.groups, c.cout / c.groups);
    let ho = (c.h + c.pad[0] + c.pad[2] - c.dil[0] * (c.k[0] - 1) - 1) / c.stride[0] + 1;
    let wo = (c.w + c.pad[1] + c.pad[3] - c.dil[1] * (c.k[1] - 1) - 1) / c.stride[1] + 1;
    let xq: Vec<f32> = x.iter().map(|&v| act_value(act_code(v, p.clip, ab), p.clip, ab)).collect();
    let mut out = vec![0f32; ho * wo * c.cout];
    for oy in 0..ho {
        for ox in 0..wo {
            for m in 0..c.cout {
                let g = m / mg;
                let mut s = 0f64;
                for ky in 0..c.k[0] {
                    for kx in 0..c.k[1] {
                        let iy = (oy * c.stride[0] + ky * c.dil[0]) as isize - c.pad[0] as isize;
                        let ix = (ox * c.stride[1] + kx * c.dil[1]) as isize - c.pad[1] as isize;
                        if iy < 0 || ix < 0 || iy >= c.h as isize || ix >= c.w as isize {
                            continue;
                        }
                        for ci in 0..cg {
                            let code = codes8[((m * c.k[0] + ky) * c.k[1] + kx) * cg + ci];
                            let wv = weight_value(derive_code(code, wb), wb, p.wscale);
                            let xv = xq[(iy as usize * c.w + ix as usize) * c.cin + g * cg + ci];
                            s += wv as f64 * xv as f64;
                        }
                    }
                }
                out[(oy * wo + ox) * c.cout + m] = s as f32 + p.bias.as_ref().map_or(0.0, |b| b[m]);
            }
        }
    }
    out
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-4 * scale, "{what}: [{i}] got {g}, want {w}");
    }
}

fn conv_cases() -> Vec<ConvCase> {
    let c = |h, w, cin, cout, k: usize, s: usize, p: usize, d: usize, g| ConvCase {
        h,
        w,
        cin,
        cout,
        k: [k, k],
        stride: [s, s],
        pad: [p, p, p, p],
        dil: [d, d],
        groups: g,
    };
    vec![
        c(5, 5, 1, 3, 3, 1, 1, 1, 1),   // first-layer-like, odd sizes
        c(7, 6, 4, 8, 3, 2, 1, 1, 1),   // stride 2, non-square
        c(9, 9, 3, 5, 3, 1, 2, 2, 1),   // dilation 2
        c(6, 6, 8, 8, 3, 1, 1, 1, 8),   // depthwise
        c(6, 5, 6, 4, 1, 1, 0, 1, 2),   // grouped 1x1
        c(4, 4, 17, 9, 2, 2, 0, 1, 1),  // depth not a multiple of 8
        c(5, 5, 32, 6, 3, 1, 1, 1, 2),  // two groups of 16 channels (im2col's 16-wide copies)
        c(4, 5, 35, 4, 3, 1, 1, 1, 1),  // 35 channels: two 16-wide copies and 3 alone per tap
        c(2, 3, 2, 3, 3, 3, 2, 1, 1),   // padding wider than the image is tall, stride past it
        c(3, 2, 1, 2, 3, 2, 2, 2, 1),   // dilated window wider than the image
        ConvCase { h: 5, w: 8, cin: 2, cout: 3, k: [1, 3], stride: [1, 2], pad: [0, 1, 0, 2], dil: [1, 1], groups: 1 },
    ]
}

#[test]
fn conv_matches_float_reference_at_every_width() {
    let mut rng = Rng(7);
    for (ci, case) in conv_cases().iter().enumerate() {
        let cg = case.cin / case.groups;
        let depth = case.k[0] * case.k[1] * cg;
        let codes8 = rng.bytes(case.cout * depth);
        let x = rng.floats(case.h * case.w * case.cin, -1.0, 3.0);
        for (wb, ab) in (1..=8u8).flat_map(|b| [(b, b), (b, 8)]) {
            let p = params(&mut rng, case.cout, ci % 2 == 0);
            let q = QuantWeights::new("conv", codes8.clone(), case.groups, case.cout / case.groups, depth, Precision::Model, vec![p.clone()]).unwrap();
            let mut conv = Conv2d::new(q, case.k, case.stride, case.pad, case.dil, cg).unwrap();
            conv.set_width(0, Width::new(wb, ab).unwrap()).unwrap();
            let input = Tensor::new(vec![case.h, case.w, case.cin], x.clone()).unwrap();
            let mut ctx = Context::default();
            let got = conv.forward(&[&input], &mut ctx).unwrap();
            let shape = conv.output_shape(&[input.shape()]).unwrap();
            assert_eq!(got.shape(), &shape[..]);
            let want = conv_reference(case, &x, &codes8, &p, wb, ab);
            assert_close(got.data(), &want, &format!("case {ci} w{wb}a{ab}"));
        }
    }
}

#[test]
fn fixed8_layers_ignore_the_model_width() {
    let mut rng = Rng(11);
    let codes8 = rng.bytes(4 * 9);
    let p = params(&mut rng, 4, false);
    let q = QuantWeights::new("first", codes8, 1, 4, 9, Precision::Fixed8, vec![p.clone(), p]).unwrap();
    let mut conv = Conv2d::new(q, [3, 3], [1, 1], [1; 4], [1, 1], 1).unwrap();
    let input = Tensor::new(vec![4, 4, 1], rng.floats(16, 0.0, 1.0)).unwrap();
    let mut ctx = Context::default();
    conv.set_width(0, Width::new(8, 8).unwrap()).unwrap();
    let at8 = conv.forward(&[&input], &mut ctx).unwrap();
    conv.set_width(1, Width::new(1, 1).unwrap()).unwrap();
    let at1 = conv.forward(&[&input], &mut ctx).unwrap();
    assert_eq!(at8, at1);
}

#[test]
fn dense_matches_reference_and_flattens_hwc() {
    let mut rng = Rng(3);
    let (inp, out) = (2 * 3 * 5, 7);
    let codes8 = rng.bytes(out * inp);
    let x = rng.floats(inp, -0.5, 2.0);
    for wb in 1..=8u8 {
        let p = params(&mut rng, out, true);
        let q = QuantWeights::new("fc", codes8.clone(), 1, out, inp, Precision::Model, vec![p.clone()]).unwrap();
        let mut fc = Dense::new(q).unwrap();
        fc.set_width(0, Width::new(wb, wb).unwrap()).unwrap();
        let input = Tensor::new(vec![2, 3, 5], x.clone()).unwrap();
        let got = fc.forward(&[&input], &mut Context::default()).unwrap();
        // A dense layer is a 1x1 conv over a 1x1 image with `inp` channels.
        let case = ConvCase { h: 1, w: 1, cin: inp, cout: out, k: [1, 1], stride: [1, 1], pad: [0; 4], dil: [1, 1], groups: 1 };
        let want = conv_reference(&case, &x, &codes8, &p, wb, wb);
        assert_close(got.data(), &want, &format!("dense w{wb}"));
    }
}

#[test]
fn quantized_layers_reject_wrong_shapes_and_unset_width() {
    let q = QuantWeights::new("c", vec![0; 2 * 9 * 3], 1, 2, 27, Precision::Model, vec![WidthParams { wscale: 1.0, clip: 1.0, bias: None, row_scales: None }]).unwrap();
    let mut conv = Conv2d::new(q, [3, 3], [1, 1], [0; 4], [1, 1], 3).unwrap();
    let x = Tensor::zeros(vec![5, 5, 3]);
    let err = conv.forward(&[&x], &mut Context::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    conv.set_width(0, Width::new(4, 4).unwrap()).unwrap();
    for bad in [vec![5, 5, 2], vec![2, 2, 3], vec![25, 3], vec![0, 5, 3]] {
        let err = conv.output_shape(&[&bad]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ShapeMismatch, "{bad:?}: {err}");
    }
    assert_eq!(conv.set_width(3, Width::new(4, 4).unwrap()).unwrap_err().kind(), ErrorKind::UnsupportedWidth);
    assert_eq!(Width::new(9, 4).unwrap_err().kind(), ErrorKind::UnsupportedWidth);
    // Codes that do not fill the declared shape.
    let err = QuantWeights::new("c", vec![0; 10], 1, 2, 27, Precision::Model, vec![]).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::BadShape);
    // A non-positive clip.
    let err = QuantWeights::new("c", vec![0; 54], 1, 2, 27, Precision::Model, vec![WidthParams { wscale: 1.0, clip: 0.0, bias: None, row_scales: None }]).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::BadValue);
}

fn pool_reference(x: &[f32], h: usize, w: usize, c: usize, k: usize, s: usize, p: usize, max: bool) -> Vec<f32> {
    let ho = (h + 2 * p - k) / s + 1;
    let wo = (w + 2 * p - k) / s + 1;
    let mut out = Vec::new();
    for oy in 0..ho {
        for ox in 0..wo {
            for ch in 0..c {
                let mut vals = Vec::new();
                for ky in 0..k {
                    for kx in 0..k {
                        let (iy, ix) = ((oy * s + ky) as isize - p as isize, (ox * s + kx) as isize - p as isize);
                        if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                            vals.push(x[(iy as usize * w + ix as usize) * c + ch]);
                        }
                    }
                }
                out.push(if max {
                    vals.iter().copied().fold(f32::NEG_INFINITY, f32::max)
                } else {
                    vals.iter().sum::<f32>() / vals.len() as f32
                });
            }
        }
    }
    out
}

#[test]
fn pooling_matches_reference() {
    let mut rng = Rng(5);
    for &(h, w, c, k, s, p) in &[(4, 4, 3, 2, 2, 0), (5, 7, 2, 3, 2, 1), (3, 3, 1, 3, 1, 1), (6, 5, 4, 2, 1, 0)] {
        let x = rng.floats(h * w * c, -2.0, 2.0);
        let input = Tensor::new(vec![h, w, c], x.clone()).unwrap();
        for (kind, max) in [(PoolKind::Max, true), (PoolKind::Avg, false)] {
            let pool = Pool { name: "p".into(), kind, kernel: [k, k], stride: [s, s], padding: [p; 4] };
            let got = pool.forward(&[&input], &mut Context::default()).unwrap();
            assert_close(got.data(), &pool_reference(&x, h, w, c, k, s, p, max), &format!("{kind:?} {h}x{w} k{k} s{s} p{p}"));
        }
    }
    let x = rng.floats(3 * 2 * 4, -1.0, 1.0);
    let gap = GlobalAvgPool { name: "g".into() };
    let got = gap.forward(&[&Tensor::new(vec![3, 2, 4], x.clone()).unwrap()], &mut Context::default()).unwrap();
    assert_eq!(got.shape(), &[1, 1, 4]);
    for ch in 0..4 {
        let mean = (0..6).map(|i| x[i * 4 + ch]).sum::<f32>() / 6.0;
        assert!((got.data()[ch] - mean).abs() < 1e-6);
    }
}

#[test]
fn elementwise_layers() {
    let mut ctx = Context::default();
    let x = Tensor::new(vec![1, 2, 3], vec![-1.0, 0.5, 7.0, 2.0, -0.0, 6.5]).unwrap();
    let relu6 = Clamp { name: "r".into(), min: 0.0, max: 6.0 };
    assert_eq!(relu6.forward(&[&x], &mut ctx).unwrap().data(), &[0.0, 0.5, 6.0, 2.0, 0.0, 6.0]);
    // NaN and infinities as f32::max/min treat them (NaN becomes the lower bound).
    let odd = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e-30, 3.0, 0.0];
    let x_odd = Tensor::new(vec![1, 1, odd.len()], odd.clone()).unwrap();
    for (lo, hi) in [(0.0, f32::INFINITY), (0.0, 6.0), (-1.0, 1.0)] {
        let clamp = Clamp { name: "c".into(), min: lo, max: hi };
        let want: Vec<f32> = odd.iter().map(|v| v.max(lo).min(hi)).collect();
        assert_eq!(clamp.forward(&[&x_odd], &mut ctx).unwrap().data(), &want[..], "clamp({lo}, {hi})");
    }

    let mut aff = Affine::new("bn", vec![(vec![1.0, 2.0, 3.0], vec![0.0, 1.0, -1.0]), (vec![0.0; 3], vec![5.0; 3])]).unwrap();
    assert_eq!(aff.forward(&[&x], &mut ctx).unwrap().data(), &[-1.0, 2.0, 20.0, 2.0, 1.0, 18.5]);
    aff.set_width(1, Width::new(1, 1).unwrap()).unwrap();
    assert_eq!(aff.forward(&[&x], &mut ctx).unwrap().data(), &[5.0; 6]);
    assert_eq!(aff.output_shape(&[&[2, 2]]).unwrap_err().kind(), ErrorKind::ShapeMismatch);
    assert!(Affine::new("bn", vec![(vec![f32::NAN], vec![0.0])]).is_err());

    let add = Add { name: "add".into() };
    assert_eq!(add.forward(&[&x, &x], &mut ctx).unwrap().data(), &[-2.0, 1.0, 14.0, 4.0, 0.0, 13.0]);
    assert_eq!(add.output_shape(&[&[1, 2, 3], &[3, 2, 1]]).unwrap_err().kind(), ErrorKind::ShapeMismatch);
    assert_eq!(add.output_shape(&[&[1, 2, 3]]).unwrap_err().kind(), ErrorKind::ShapeMismatch);

    let flat = Flatten { name: "f".into() };
    assert_eq!(flat.forward(&[&x], &mut ctx).unwrap().shape(), &[6]);

    let sm = Softmax { name: "s".into() };
    let y = sm.forward(&[&Tensor::new(vec![3], vec![1000.0, 1000.0, -1000.0]).unwrap()], &mut ctx).unwrap();
    assert!((y.data()[0] - 0.5).abs() < 1e-6 && (y.data()[1] - 0.5).abs() < 1e-6 && y.data()[2] == 0.0);
}
