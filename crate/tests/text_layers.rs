//! The text-model ops (linear, layer_norm, gelu, embed, attention, mean/cls pool) against the f64
//! reference in text_support: a random BERT-layout model built here, run whole (float twin and
//! quantized pass, every width 8..1, short and long inputs, padding) and layer by layer through
//! the `Layer` trait (odd sizes, edge inputs, every typed refusal), and its file (round trip,
//! truncation, a table that disagrees with its graph, a four-plane prefix). Runs natively and as
//! wasm in Node and headless Chromium; the whole file takes a few seconds in a SIMD128 build.

mod common;
mod text_support;

use anybit::format::{self, names, Precision, RowBits, Width};
use anybit::layers::{
    erf as rt_erf, gelu as rt_gelu, ActQuant, Attention, ClsPool, Context, Embed, Gelu, Layer, LayerNorm, Linear,
    MeanPool, QuantWeights, WidthParams,
};
use anybit::quant::{derive_code, weight_value};
use anybit::{Bits, ErrorKind, Model, Tensor};
use common::Rng;
use text_support::*;

/// Float twin against the f64 reference: f32 accumulation over depths of 16 and 32, two layers.
const TWIN_TOL: f64 = 1e-4;
/// One node of the quantized pass, fed the runtime's own inputs, against the reference that
/// rounds activations as the runtime does: same codes, so only f32 rounding is left (seen: 8e-7).
const NODE_TOL: f64 = 1e-5;
/// The whole quantized pass against that reference, each running on its own values: both pick
/// the same activation code unless a value lies within f32 noise (~1e-7 relative) of a rounding
/// boundary, which among the ~25 000 values a 129-token pass quantizes happens a few times; each
/// such value then moves by one step (1/255 of its token's range) and the next layers carry the
/// difference on. Seen: up to 2.6e-3 (one such code in the [CLS] token of a 7-token input), and
/// 9e-4 over 129 tokens. The node-by-node check (NODE_TOL) is the tight one.
const QUANT_TOL: f64 = 5e-3;

fn tensor(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
    Tensor::new(shape, data).unwrap()
}

fn err_kind<T>(r: anybit::Result<T>) -> ErrorKind {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.kind(),
    }
}

/// Inputs of every kind the whole-model tests use, for `n` tokens.
fn inputs(rng: &mut Rng, n: usize) -> Vec<(String, Tokens)> {
    let mut v = vec![(format!("{n} tokens"), Tokens::sentence(rng, n, 0))];
    if n > 1 {
        v.push((format!("{n} tokens, {} padding", n / 3 + 1), Tokens::sentence(rng, n, n / 3 + 1)));
        v.push((format!("{n} tokens, mask with holes"), Tokens::scattered(rng, n)));
    }
    v
}

// ---------------------------------------------------------------------------------------------
// The reference's own erf, and GELU

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn reference_erf_matches_known_values() {
    // Abramowitz & Stegun, table 7.1.
    let known = [
        (0.0, 0.0),
        (0.1, 0.1124629160182849),
        (0.5, 0.5204998778130465),
        (1.0, 0.8427007929497149),
        (1.5, 0.9661051464753108),
        (2.0, 0.9953222650189527),
        (3.0, 0.9999779095030014),
        (4.0, 0.9999999845827421),
    ];
    for (x, want) in known {
        assert!((erf(x) - want).abs() < 1e-12, "erf({x}) = {}, want {want}", erf(x));
        assert!((erf(-x) + want).abs() < 1e-12, "erf(-{x})");
    }
    // The two expansions agree where the switch between them lies.
    for x in [1.5, 2.0, 2.5, 3.0] {
        assert!((erf_series(x) - (1.0 - erfc_cf(x))).abs() < 1e-13, "series and continued fraction at {x}");
    }
    assert_eq!(erf(40.0), 1.0);
    assert!((gelu(1.0) - 0.8413447460685429).abs() < 1e-12);
}

/// The runtime's erf (Abramowitz and Stegun 7.1.28: 3e-7 by construction, plus the f32 result's
/// rounding) and GELU against the f64 ones, over the range hidden states reach and far beyond it.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn gelu_layer_matches_f64_erf() {
    let mut xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.005).collect();
    xs.extend([-1e4, -50.0, -12.0, -6.0, 6.0, 12.0, 50.0, 1e4, 1e-30, -1e-30, 0.0, -0.0, 0.4999, 0.5, 0.5001]);
    for &x in &xs {
        let e = rt_erf(x) as f64;
        assert!((e - erf(x as f64)).abs() < 5e-7, "erf({x}) = {e}, want {}", erf(x as f64));
    }
    let layer = Gelu { name: "gelu".into() };
    let mut ctx = Context::default();
    let out = layer.forward(&[&tensor(vec![xs.len()], xs.clone())], &mut ctx).unwrap();
    for (&x, &y) in xs.iter().zip(out.data()) {
        let want = gelu(x as f64);
        assert!((y as f64 - want).abs() <= 1e-6 * (x.abs() as f64).max(1.0), "gelu({x}) = {y}, want {want}");
        assert_eq!(y, rt_gelu(x));
    }
    // Any shape passes through unchanged in shape.
    let t = layer.forward(&[&tensor(vec![2, 3, 1], vec![0.5; 6])], &mut ctx).unwrap();
    assert_eq!(t.shape(), &[2, 3, 1]);
}

// ---------------------------------------------------------------------------------------------
// The whole model

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn float_twin_matches_reference_at_every_width() {
    let mut rng = Rng(0x7e57_0001);
    for pool in [Pool::Mean, Pool::Cls] {
        let built = build(pool, 11);
        let file = format::read(&built.bytes).unwrap();
        let mut model = Model::from_bytes(&built.bytes).unwrap();
        assert!(model.is_text());
        let cases: Vec<(String, Tokens)> = [1, 7, 129].iter().flat_map(|&n| inputs(&mut rng, n)).collect();
        for w in Bits::all_desc() {
            model.set_width(w).unwrap();
            let reference = Reference::new(&file, w);
            for (what, tokens) in &cases {
                let trace = model.trace(&tokens.input(), true).unwrap();
                let want = reference.run(tokens, Acts::Float);
                assert_eq!(trace.logits().len(), HIDDEN);
                assert_close(trace.logits(), &want, TWIN_TOL, &format!("{pool:?} pool, w{w}, {what}"));
            }
        }
    }
}

/// Node by node, each fed the runtime's own values of its inputs, the quantized pass equals the
/// reference to f32 rounding: same activation codes, same dequantized sum. End to end it may
/// differ by more (QUANT_TOL).
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn quantized_pass_matches_reference_with_dynamic_activations() {
    let mut rng = Rng(0x7e57_0002);
    // How far activation rounding moves a linear node: if the runtime skipped it, the per-node
    // comparison must be able to tell.
    let mut rounding_effect = 0f64;
    for pool in [Pool::Mean, Pool::Cls] {
        let built = build(pool, 12);
        let file = format::read(&built.bytes).unwrap();
        let mut model = Model::from_bytes(&built.bytes).unwrap();
        let cases: Vec<(String, Tokens)> = [1, 7, 129].iter().flat_map(|&n| inputs(&mut rng, n)).collect();
        for w in Bits::all_desc() {
            model.set_width(w).unwrap();
            let reference = Reference::new(&file, w);
            for (what, t) in &cases {
                let what = format!("{pool:?} pool, w{w}, {what}");
                let out = model.run_tokens(&t.ids, &t.types, &t.mask).unwrap();
                assert_eq!(out.shape(), &[HIDDEN]);
                assert_close(out.data(), &reference.run(t, Acts::Dynamic), QUANT_TOL, &what);
                // The same through `run` on the flattened input, and as a trace.
                assert_eq!(model.run(&t.input()).unwrap(), out.data(), "{what}: run and run_tokens");
                let trace = model.trace(&t.input(), false).unwrap();
                assert_eq!(trace.logits(), out.data(), "{what}: trace and run_tokens");
                let forced = reference.run_nodes(t, Acts::Dynamic, Some(&trace));
                let float = reference.run_nodes(t, Acts::Float, Some(&trace));
                for (i, node) in file.graph().nodes.iter().enumerate() {
                    assert_close(trace.output(i).data(), &forced[i], NODE_TOL, &format!("{what}: node {} alone", node.name));
                    if matches!(node.op, format::Op::Linear { .. }) {
                        let scale = forced[i].iter().fold(1f64, |m, v| m.max(v.abs()));
                        let moved = forced[i].iter().zip(&float[i]).fold(0f64, |m, (a, b)| m.max((a - b).abs()));
                        rounding_effect = rounding_effect.max(moved / scale);
                    }
                }
            }
        }
    }
    assert!(rounding_effect > 100.0 * NODE_TOL, "activation rounding moves a linear node by only {rounding_effect:e}");
}

/// With every token padding, each attends to all keys alike (BERT's additive mask of the most
/// negative f32 swamps the scores), and the mean pool of no token is zeros.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn all_padding_attends_to_every_key_alike() {
    for pool in [Pool::Mean, Pool::Cls] {
        let built = build(pool, 13);
        let file = format::read(&built.bytes).unwrap();
        let mut model = Model::from_bytes(&built.bytes).unwrap();
        for w in [8, 4, 1] {
            model.set_width(bits(w)).unwrap();
            let reference = Reference::new(&file, bits(w));
            for n in [1, 7, 129] {
                let t = Tokens::all_padding(n);
                let what = format!("{pool:?} pool, w{w}, {n} padding tokens");
                let twin = model.trace(&t.input(), true).unwrap();
                assert_close(twin.logits(), &reference.run(&t, Acts::Float), TWIN_TOL, &format!("twin, {what}"));
                let out = model.run_tokens(&t.ids, &t.types, &t.mask).unwrap();
                assert_close(out.data(), &reference.run(&t, Acts::Dynamic), QUANT_TOL, &format!("quantized, {what}"));
                if pool == Pool::Mean {
                    assert!(out.data().iter().all(|&v| v == 0.0), "{what}: the mean of no token");
                }
            }
        }
    }
}

/// The longest input the model takes runs (and agrees with the reference); one more token, or
/// none, is a typed error, as is every malformed token; none of them panics or spoils the model.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn model_refuses_bad_tokens_with_typed_errors() {
    let built = build(Pool::Mean, 14);
    let file = format::read(&built.bytes).unwrap();
    let mut model = Model::from_bytes(&built.bytes).unwrap();
    let mut rng = Rng(0x7e57_0004);
    let longest = Tokens::sentence(&mut rng, POSITIONS, 3);
    let want = Reference::new(&file, Bits::MAX).run(&longest, Acts::Float);
    assert_close(model.trace(&longest.input(), true).unwrap().logits(), &want, TWIN_TOL, "160 tokens");
    let good = model.run(&longest.input()).unwrap();

    let too_long = Tokens::sentence(&mut rng, POSITIONS + 1, 0);
    assert_eq!(err_kind(model.run(&too_long.input())), ErrorKind::ShapeMismatch, "161 tokens");
    assert_eq!(err_kind(model.run_tokens(&too_long.ids, &too_long.types, &too_long.mask)), ErrorKind::ShapeMismatch);
    assert_eq!(err_kind(model.run(&[])), ErrorKind::ShapeMismatch, "no token");
    assert_eq!(err_kind(model.run(&[2.0, 0.0, 1.0, 3.0])), ErrorKind::ShapeMismatch, "not whole tokens");
    assert_eq!(err_kind(model.run_tokens(&[2, 3], &[0], &[1, 1])), ErrorKind::ShapeMismatch, "types of another length");
    assert_eq!(err_kind(model.run_tokens(&[2, 3], &[0, 0], &[1])), ErrorKind::ShapeMismatch, "mask of another length");

    let base = [CLS as f32, 0.0, 1.0, 7.0, 0.0, 1.0, SEP as f32, 1.0, 1.0];
    let bad: [(usize, f32, &str); 9] = [
        (3, VOCAB as f32, "id = vocab"),
        (3, 1e9, "huge id"),
        (3, 1.5, "fractional id"),
        (3, -1.0, "negative id"),
        (4, 2.0, "type = types"),
        (4, 0.5, "fractional type"),
        (5, 0.5, "mask 0.5"),
        (5, 2.0, "mask 2"),
        (5, -1.0, "mask -1"),
    ];
    for (i, v, what) in bad {
        let mut x = base;
        x[i] = v;
        assert_eq!(err_kind(model.run(&x)), ErrorKind::BadValue, "{what}");
        assert_eq!(err_kind(model.trace(&x, true)), ErrorKind::BadValue, "{what} (twin)");
    }
    for v in [f32::NAN, f32::INFINITY] {
        let mut x = base;
        x[3] = v;
        assert_eq!(err_kind(model.run(&x)), ErrorKind::BadValue, "id {v}");
    }
    assert_eq!(err_kind(model.run_tokens(&[VOCAB as u32], &[0], &[1])), ErrorKind::BadValue, "run_tokens id = vocab");
    assert_eq!(err_kind(model.run_tokens(&[2], &[TYPES as u32], &[1])), ErrorKind::BadValue, "run_tokens type");
    assert_eq!(err_kind(model.run_tokens(&[2], &[0], &[3])), ErrorKind::BadValue, "run_tokens mask 3");
    assert_eq!(model.run(&longest.input()).unwrap(), good, "the model after the refusals");
}

// ---------------------------------------------------------------------------------------------
// The file

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn random_model_round_trips_through_the_format() {
    for pool in [Pool::Mean, Pool::Cls] {
        let built = build(pool, 15);
        let file = format::read(&built.bytes).unwrap();
        let mut graph = file.graph().clone();
        assert!(graph.sha256.is_some(), "the writer fills in the digests");
        graph.sha256 = None;
        assert_eq!(graph, built.graph, "graph");
        assert_eq!(file.tensors(), &built.tensors, "tensors");
        assert_eq!(file.table("embed").unwrap(), built.tables["embed"].as_slice(), "table");
        let expected_table = RowBits::table_bytes(&RUNS.map(|(rows, b)| RowBits { rows, bits: bits(b) }), HIDDEN);
        assert_eq!(Some(built.tables["embed"].len()), expected_table);
        for node in &built.graph.nodes {
            if let Some(w) = node.op.weight() {
                let n = w.shape[0] * w.shape[1];
                assert_eq!(file.layer_codes(w).unwrap(), &built.codes[w.code_offset..w.code_offset + n], "{}", node.name);
            }
        }
        assert_eq!(file.planes_present(), 8);
        // Rewriting a current file changes nothing.
        assert_eq!(format::upgrade(&built.bytes).unwrap(), built.bytes, "upgrade");
        // The embedding table lies before the planes, so the shortest prefix holds it whole.
        let one = format::read_prefix(&built.bytes[..format::prefix_len(&built.bytes, 1).unwrap()], 1).unwrap();
        assert_eq!(one.table("embed").unwrap(), built.tables["embed"].as_slice(), "table in a one-plane prefix");
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn truncated_files_and_lying_tables_are_refused() {
    let built = build(Pool::Mean, 16);
    let bytes = &built.bytes;
    let header = format::header_len(bytes).unwrap();
    let layout = format::read(bytes).unwrap().layout().clone();
    let mut cuts: Vec<usize> = (0..bytes.len()).step_by(211).collect();
    cuts.extend([7, 8, 9, header - 1, header, header + 1, layout.planes_start as usize - 1, bytes.len() - 1]);
    for cut in cuts {
        let kind = err_kind(format::read(&bytes[..cut]));
        assert_eq!(kind, ErrorKind::Truncated, "a file cut at {cut} of {}", bytes.len());
        if cut < layout.prefix_ends[1] as usize {
            assert_eq!(err_kind(Model::from_prefix(&bytes[..cut], 1)), ErrorKind::Truncated, "a prefix cut at {cut}");
        }
    }

    // A writer given a table one byte short (or long) of what its runs need refuses it.
    for delta in [-1i64, 1] {
        let mut tables = built.tables.clone();
        let t = tables.get_mut("embed").unwrap();
        t.resize((t.len() as i64 + delta) as usize, 0);
        let r = format::write_with_tables(&built.graph, &built.codes, &built.tensors, &tables);
        assert_eq!(err_kind(r), ErrorKind::BadLayout, "a table {delta:+} byte");
    }
    // A table missing altogether.
    let r = format::write(&built.graph, &built.codes, &built.tensors);
    assert!(matches!(err_kind(r), ErrorKind::BadLayout | ErrorKind::BadGraph), "no table");

    // A file whose graph says one run has more bits than its table holds: `"bits":5` becomes 6
    // in the header (same length, so every offset stays; the digests cover only the data).
    let needle = br#"\"rows\":25,\"bits\":5"#;
    let at = bytes[..header].windows(needle.len()).position(|w| w == needle).expect("the 5-bit run in the header");
    let mut lying = bytes.clone();
    lying[at + needle.len() - 1] = b'6';
    assert_eq!(err_kind(format::read(&lying)), ErrorKind::BadLayout, "a table shorter than its runs");
    assert_eq!(err_kind(Model::from_bytes(&lying)), ErrorKind::BadLayout);
    // Runs that no longer cover the rows of the three tables.
    lying[at + needle.len() - 1] = b'5';
    lying[at + 10] = b'4';
    assert_eq!(err_kind(format::read(&lying)), ErrorKind::BadShape, "runs of 24 + .. rows");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn four_plane_prefix_runs_width_four_like_the_whole_file() {
    let built = build(Pool::Cls, 17);
    let bytes = &built.bytes;
    let end = format::prefix_len(bytes, 4).unwrap();
    assert!(end < bytes.len());
    let mut prefix = Model::from_prefix(&bytes[..end], 4).unwrap();
    assert_eq!(prefix.planes_loaded(), 4);
    assert_eq!(prefix.width(), bits(4));
    assert_eq!(prefix.loaded_widths(), vec![bits(4), bits(3), bits(2), bits(1)]);
    assert_eq!(err_kind(prefix.set_width(bits(5))), ErrorKind::Truncated);
    let mut whole = Model::from_bytes(bytes).unwrap();
    let mut rng = Rng(0x7e57_0007);
    for w in [4, 2, 1] {
        whole.set_width(bits(w)).unwrap();
        prefix.set_width(bits(w)).unwrap();
        for n in [1, 7, 129] {
            let t = Tokens::sentence(&mut rng, n, n / 4);
            let a = prefix.run_tokens(&t.ids, &t.types, &t.mask).unwrap();
            let b = whole.run_tokens(&t.ids, &t.types, &t.mask).unwrap();
            assert_eq!(a.data(), b.data(), "w{w}, {n} tokens");
            let a = prefix.trace(&t.input(), true).unwrap();
            let b = whole.trace(&t.input(), true).unwrap();
            assert_eq!(a.logits(), b.logits(), "twin, w{w}, {n} tokens");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Each layer alone

/// A dynamic-activation linear of `out` x `depth` random codes, one parameter set per width in
/// `widths`, with per-row scales around `wscale` (not 1, unlike the model's, so that both factors
/// of the step are exercised).
fn random_linear(
    rng: &mut Rng,
    out: usize,
    depth: usize,
    widths: &[Width],
    bias: bool,
    smooth: Option<Vec<f32>>,
) -> (Linear, Vec<u8>, Vec<WidthParams>) {
    let codes = rng.bytes(out * depth);
    let params: Vec<WidthParams> = widths
        .iter()
        .map(|_| WidthParams {
            wscale: rng.f32(0.5, 2.0),
            clip: 1.0,
            bias: bias.then(|| rng.floats(out, -1.0, 1.0)),
            row_scales: Some(rng.floats(out, 0.05, 0.4)),
        })
        .collect();
    let q = QuantWeights::new("lin", codes.clone(), 1, out, depth, Precision::Model, params.clone()).unwrap();
    (Linear::new(q.with_acts(ActQuant::Dynamic), smooth).unwrap(), codes, params)
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn linear_odd_sizes_every_width_and_edge_inputs() {
    let (out, depth) = (13, 37);
    let mut rng = Rng(0x7e57_0008);
    let mut widths: Vec<Width> = (1..=8).rev().map(|w| Width::new(w, 8).unwrap()).collect();
    widths.extend([Width::new(8, 5).unwrap(), Width::new(3, 2).unwrap(), Width::new(1, 1).unwrap(), Width::new(5, 1).unwrap()]);
    for (bias, smoothed) in [(true, false), (false, false), (true, true)] {
        let smooth = smoothed.then(|| rng.floats(depth, 0.3, 3.0));
        let (mut layer, codes, params) = random_linear(&mut rng, out, depth, &widths, bias, smooth.clone());
        let smooth = smooth.as_deref();
        let tokens = 6;
        let mut x = rng.floats(tokens * depth, -3.0, 3.0);
        x[depth..2 * depth].fill(0.0);
        x[2 * depth..3 * depth].fill(-0.75);
        for (k, v) in x[3 * depth..4 * depth].iter_mut().enumerate() {
            *v = if k % 2 == 0 { 1e6 } else { -1e6 };
        }
        // Huge and tiny in one token: the tiny ones all round to the middle code.
        for (k, v) in x[4 * depth..5 * depth].iter_mut().enumerate() {
            *v = if k == 0 { 1e6 } else if k == 1 { -1e6 } else { rng.f32(-1e-3, 1e-3) };
        }
        x[5 * depth + 7] = 50.0;
        let input = tensor(vec![tokens, depth], x.clone());
        let mut ctx = Context::default();
        for (i, (&width, p)) in widths.iter().zip(&params).enumerate() {
            layer.set_width(i, width).unwrap();
            let e: Vec<f32> = p.row_scales.as_ref().unwrap().iter().map(|&r| p.wscale * r).collect();
            let w = dequantize(&codes, depth, width.w, &e);
            let bias = p.bias.as_ref().map(|b| b.iter().map(|&v| v as f64).collect::<Vec<f64>>());
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let what = format!("w{} a{} bias {} smooth {smoothed}", width.w, width.a, bias.is_some());
            assert_eq!(layer.output_shape(&[&[tokens, depth]]).unwrap(), vec![tokens, out]);

            ctx.twin = false;
            let got = layer.forward(&[&input], &mut ctx).unwrap();
            assert_eq!(got.shape(), &[tokens, out]);
            let want = linear(&x64, &w, bias.as_deref(), smooth, depth, Acts::Dynamic, width.a);
            // Token by token: each has its own scale, the huge ones 1e6 times the others'.
            for t in 0..tokens {
                let r = t * out..(t + 1) * out;
                assert_close(&got.data()[r.clone()], &want[r], 1e-5, &format!("quantized {what}, token {t}"));
            }
            // A constant token is exact: its codes are all 0 and stand for the constant itself.
            for (r, row) in w.chunks_exact(depth).enumerate().filter(|_| !smoothed) {
                let s: f64 = row.iter().sum::<f64>() * -0.75 + bias.as_ref().map_or(0.0, |b| b[r]);
                assert!((got.data()[2 * out + r] as f64 - s).abs() <= 1e-5 * s.abs().max(1.0), "{what}: constant token, row {r}");
            }
            // An all-zero token gives the bias.
            for r in 0..out {
                assert_eq!(got.data()[out + r], bias.as_ref().map_or(0.0, |b| b[r] as f32), "{what}: zero token");
            }

            ctx.twin = true;
            let got = layer.forward(&[&input], &mut ctx).unwrap();
            let want = linear(&x64, &w, bias.as_deref(), smooth, depth, Acts::Float, width.a);
            for t in 0..tokens {
                let r = t * out..(t + 1) * out;
                assert_close(&got.data()[r.clone()], &want[r], 1e-5, &format!("twin {what}, token {t}"));
            }

            // One token as `[depth]` is the first row of the batch.
            ctx.twin = false;
            let one = layer.forward(&[&tensor(vec![depth], x[..depth].to_vec())], &mut ctx).unwrap();
            assert_eq!(one.shape(), &[out]);
            assert_eq!(one.data(), &layer.forward(&[&input], &mut ctx).unwrap().data()[..out], "{what}: [depth]");
        }
        let mut ctx = Context::default();
        for shape in [vec![tokens, depth - 1], vec![depth, 1], vec![depth + 1], vec![0, depth], vec![1, 1, depth], vec![]] {
            let t = Tensor::zeros(shape.clone());
            assert_eq!(err_kind(layer.forward(&[&t], &mut ctx)), ErrorKind::ShapeMismatch, "input {shape:?}");
            assert_eq!(err_kind(layer.output_shape(&[shape.as_slice()])), ErrorKind::ShapeMismatch, "shape {shape:?}");
        }
        assert_eq!(err_kind(layer.forward(&[&input, &input], &mut ctx)), ErrorKind::ShapeMismatch, "two inputs");
        assert_eq!(err_kind(layer.set_width(widths.len(), widths[0])), ErrorKind::UnsupportedWidth);
    }
    // Smoothing factors: one per input, each finite and > 0.
    for (smooth, what) in [(vec![1.0; depth - 1], "too few"), (vec![1.0; depth + 1], "too many")] {
        let q = QuantWeights::new("lin", vec![0; out * depth], 1, out, depth, Precision::Model, Vec::new()).unwrap();
        assert_eq!(err_kind(Linear::new(q, Some(smooth))), ErrorKind::BadValue, "{what}");
    }
    for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let mut smooth = vec![1.0; depth];
        smooth[5] = bad;
        let q = QuantWeights::new("lin", vec![0; out * depth], 1, out, depth, Precision::Model, Vec::new()).unwrap();
        assert_eq!(err_kind(Linear::new(q, Some(smooth))), ErrorKind::BadValue, "smoothing factor {bad}");
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn layer_norm_normalizes_each_token_with_its_width_affine() {
    let mut rng = Rng(0x7e57_0009);
    let h = 11;
    let params: Vec<(Vec<f32>, Vec<f32>)> = (0..3).map(|_| (rng.floats(h, -2.0, 2.0), rng.floats(h, -1.0, 1.0))).collect();
    let mut layer = LayerNorm::new("ln", 1e-5, params.clone()).unwrap();
    let mut x = rng.floats(4 * h, -5.0, 5.0);
    x[h..2 * h].fill(3.25);
    for (k, v) in x[2 * h..3 * h].iter_mut().enumerate() {
        *v = 1e4 + k as f32;
    }
    let input = tensor(vec![4, h], x.clone());
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let mut ctx = Context::default();
    for (i, (s, b)) in params.iter().enumerate() {
        layer.set_width(i, Width::new(8 - i as u8, 8).unwrap()).unwrap();
        let got = layer.forward(&[&input], &mut ctx).unwrap();
        let f = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
        let want = layer_norm(&x64, &f(s), &f(b), 1e-5);
        assert_close(got.data(), &want, 1e-5, &format!("width #{i}"));
        // A constant token normalizes to zeros: only the bias is left.
        assert_eq!(&got.data()[h..2 * h], b.as_slice(), "constant token, width #{i}");
    }
    assert_eq!(err_kind(layer.forward(&[&tensor(vec![2, h + 1], vec![0.0; 2 * (h + 1)])], &mut ctx)), ErrorKind::ShapeMismatch);
    assert_eq!(err_kind(layer.set_width(3, Width::new(1, 8).unwrap())), ErrorKind::UnsupportedWidth);
    assert_eq!(err_kind(LayerNorm::new("ln", 0.0, params.clone())), ErrorKind::BadValue, "eps 0");
    assert_eq!(err_kind(LayerNorm::new("ln", f32::NAN, params)), ErrorKind::BadValue, "eps NaN");
}

/// An embedding of 13-wide rows (so rows start mid-byte) in runs of every width 1..8.
struct EmbedCase {
    vocab: usize,
    positions: usize,
    types: usize,
    hidden: usize,
    runs: Vec<(usize, u8)>,
}

impl EmbedCase {
    fn new() -> EmbedCase {
        let runs = vec![(3, 5), (2, 8), (4, 1), (3, 3), (2, 7), (3, 2), (2, 6), (4, 4)];
        EmbedCase { vocab: 11, positions: 9, types: 3, hidden: 13, runs }
    }
    fn layer(&self, table: Vec<u8>, lo: Vec<f32>, step: Vec<f32>) -> anybit::Result<Embed> {
        let rows: Vec<RowBits> = self.runs.iter().map(|&(rows, b)| RowBits { rows, bits: bits(b) }).collect();
        Embed::new("emb", self.vocab, self.positions, self.types, self.hidden, &rows, table, lo, step)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn embed_decodes_mixed_bit_runs() {
    let c = EmbedCase::new();
    let mut rng = Rng(0x7e57_000a);
    let (table, lo, step, codes) = random_table(&mut rng, &c.runs, c.hidden);
    let layer = c.layer(table.clone(), lo.clone(), step.clone()).unwrap();
    let ones = vec![1.0f32; lo.len()];
    // With offset 0 and step 1 each value is the sum of three codes: exact, so any misread bit shows.
    let counting = c.layer(table.clone(), vec![0.0; lo.len()], ones).unwrap();
    let mut ctx = Context::default();
    for start in 0..c.vocab {
        let n = c.positions;
        let ids: Vec<usize> = (0..n).map(|t| (start + t) % c.vocab).collect();
        let types: Vec<usize> = (0..n).map(|t| (start + t) % c.types).collect();
        let x: Vec<f32> = (0..n).flat_map(|t| [ids[t] as f32, types[t] as f32, (t % 2) as f32]).collect();
        let input = tensor(vec![n, 3], x);
        let got = counting.forward(&[&input], &mut ctx).unwrap();
        assert_eq!(got.shape(), &[n, c.hidden]);
        let rows = [ids.clone(), (0..n).map(|t| c.vocab + t).collect(), types.iter().map(|&y| c.vocab + c.positions + y).collect()];
        for t in 0..n {
            for j in 0..c.hidden {
                let want: u32 = rows.iter().map(|r| codes[r[t]][j] as u32).sum();
                assert_eq!(got.data()[t * c.hidden + j], want as f32, "codes of token {t}, value {j}, ids from {start}");
            }
        }
        // The real offsets and steps, against rows decoded bit by bit from the table.
        let got = layer.forward(&[&input], &mut ctx).unwrap();
        let mut at = Vec::new();
        let mut pos = 0;
        for &(rows, b) in &c.runs {
            for _ in 0..rows {
                at.push((pos, b as usize));
                pos += c.hidden * b as usize;
            }
        }
        let row = |i: usize| decode_row(&table, at[i].0, c.hidden, at[i].1, lo[i], step[i]);
        let want: Vec<f64> = (0..n)
            .flat_map(|t| {
                let (a, b, d) = (row(rows[0][t]), row(rows[1][t]), row(rows[2][t]));
                (0..c.hidden).map(move |j| a[j] + b[j] + d[j])
            })
            .collect();
        assert_close(got.data(), &want, 1e-6, &format!("values, ids from {start}"));
    }
    // Shorter inputs use the first positions.
    let one = layer.forward(&[&tensor(vec![1, 3], vec![4.0, 2.0, 0.0])], &mut ctx).unwrap();
    let want: Vec<f64> = (0..c.hidden).map(|j| [row_of(&c, &table, &lo, &step, 4), row_of(&c, &table, &lo, &step, c.vocab), row_of(&c, &table, &lo, &step, c.vocab + c.positions + 2)].iter().map(|r| r[j]).sum()).collect();
    assert_close(one.data(), &want, 1e-6, "one token");
}

fn row_of(c: &EmbedCase, table: &[u8], lo: &[f32], step: &[f32], i: usize) -> Vec<f64> {
    let (mut row, mut pos) = (0, 0);
    for &(rows, b) in &c.runs {
        if i < row + rows {
            return decode_row(table, pos + (i - row) * c.hidden * b as usize, c.hidden, b as usize, lo[i], step[i]);
        }
        row += rows;
        pos += rows * c.hidden * b as usize;
    }
    panic!("row {i} is outside the table");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn embed_refuses_bad_tokens_and_tables() {
    let c = EmbedCase::new();
    let mut rng = Rng(0x7e57_000b);
    let (table, lo, step, _) = random_table(&mut rng, &c.runs, c.hidden);
    let layer = c.layer(table.clone(), lo.clone(), step.clone()).unwrap();
    let mut ctx = Context::default();
    let base = [1.0f32, 0.0, 1.0, 2.0, 2.0, 0.0];
    let bad: [(usize, f32, &str); 11] = [
        (3, c.vocab as f32, "id = vocab"),
        (3, 2.5, "fractional id"),
        (3, -1.0, "negative id"),
        (3, f32::NAN, "NaN id"),
        (3, f32::INFINITY, "infinite id"),
        (4, c.types as f32, "type = types"),
        (4, 0.25, "fractional type"),
        (4, f32::NAN, "NaN type"),
        (5, 0.5, "mask 0.5"),
        (5, f32::NAN, "NaN mask"),
        (2, -0.5, "mask -0.5"),
    ];
    for (i, v, what) in bad {
        let mut x = base;
        x[i] = v;
        assert_eq!(err_kind(layer.forward(&[&tensor(vec![2, 3], x.to_vec())], &mut ctx)), ErrorKind::BadValue, "{what}");
    }
    let long: Vec<f32> = (0..c.positions + 1).flat_map(|_| [1.0, 0.0, 1.0]).collect();
    assert_eq!(err_kind(layer.forward(&[&tensor(vec![c.positions + 1, 3], long)], &mut ctx)), ErrorKind::LimitExceeded, "more tokens than positions");
    for shape in [vec![2, 2], vec![6], vec![0, 3], vec![1, 3, 1]] {
        let t = Tensor::zeros(shape.clone());
        assert_eq!(err_kind(layer.forward(&[&t], &mut ctx)), ErrorKind::ShapeMismatch, "input {shape:?}");
    }
    let input = tensor(vec![2, 3], base.to_vec());
    assert_eq!(err_kind(layer.forward(&[&input, &input], &mut ctx)), ErrorKind::ShapeMismatch, "two inputs");
    let mut short = table.clone();
    short.pop();
    assert_eq!(err_kind(c.layer(short, lo.clone(), step.clone())), ErrorKind::BadShape, "a table one byte short");
    let mut long = table.clone();
    long.push(0);
    assert_eq!(err_kind(c.layer(long, lo.clone(), step.clone())), ErrorKind::BadShape, "a table one byte long");
    assert_eq!(err_kind(c.layer(table, lo[1..].to_vec(), step)), ErrorKind::BadShape, "one offset missing");
}

/// Random q, k, v of `n` tokens and `hidden` values.
fn qkv(rng: &mut Rng, n: usize, hidden: usize) -> [Tensor; 3] {
    [0, 1, 2].map(|_| tensor(vec![n, hidden], rng.floats(n * hidden, -2.0, 2.0)))
}

fn mask_input(mask: &[bool]) -> Tensor {
    tensor(vec![mask.len(), 3], mask.iter().flat_map(|&m| [1.0, 0.0, m as u8 as f32]).collect())
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.data().iter().map(|&v| v as f64).collect()
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn attention_follows_the_mask() {
    let mut rng = Rng(0x7e57_000c);
    let hidden = 12;
    let mut ctx = Context::default();
    for n in [1, 2, 5, 17] {
        let masks: Vec<Vec<bool>> = vec![
            vec![true; n],
            (0..n).map(|t| t % 3 != 1).collect(),
            (0..n).map(|t| t != 0).collect(),
            (0..n).map(|t| t + 1 == n).collect(),
            (0..n).map(|t| t < n.div_ceil(2)).collect(),
        ];
        for heads in [1, 2, 3, 12] {
            let layer = Attention { name: "att".into(), heads };
            let [q, k, v] = qkv(&mut rng, n, hidden);
            for mask in &masks {
                if !mask.iter().any(|&m| m) {
                    continue; // all_masked_attention_is_uniform
                }
                let input = mask_input(mask);
                let got = layer.forward(&[&q, &k, &v, &input], &mut ctx).unwrap();
                let want = attention(&f64s(&q), &f64s(&k), &f64s(&v), mask, heads);
                assert_close(got.data(), &want, 1e-5, &format!("{n} tokens, {heads} heads, mask {mask:?}"));
                // A masked key's value is never read.
                let mut v2 = v.clone();
                for (t, &m) in mask.iter().enumerate() {
                    if !m {
                        v2.data_mut()[t * hidden..(t + 1) * hidden].fill(1e30);
                    }
                }
                assert_eq!(layer.forward(&[&q, &k, &v2, &input], &mut ctx).unwrap().data(), got.data(), "masked values");
            }
        }
    }
}

/// When no key attends, every key weighs the same (1/n): BERT's additive mask of the most
/// negative f32 makes every score equal, whatever q and k are.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn all_masked_attention_is_uniform() {
    let mut rng = Rng(0x7e57_000d);
    let hidden = 8;
    let mut ctx = Context::default();
    for n in [1, 3, 9] {
        for heads in [1, 4] {
            let layer = Attention { name: "att".into(), heads };
            let [q, k, v] = qkv(&mut rng, n, hidden);
            let mask = vec![false; n];
            let got = layer.forward(&[&q, &k, &v, &mask_input(&mask)], &mut ctx).unwrap();
            let want = attention(&f64s(&q), &f64s(&k), &f64s(&v), &mask, heads);
            // The mean of the values, for every token.
            for j in 0..hidden {
                let mean = (0..n).map(|t| v.data()[t * hidden + j] as f64).sum::<f64>() / n as f64;
                assert!((want[j] - mean).abs() < 1e-12);
            }
            assert_close(got.data(), &want, 1e-5, &format!("{n} tokens, {heads} heads, all masked"));
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn pools_follow_the_mask() {
    let mut rng = Rng(0x7e57_000e);
    let mut ctx = Context::default();
    let mean = MeanPool { name: "mean".into() };
    let cls = ClsPool { name: "cls".into() };
    for n in [1, 4, 33] {
        let x = tensor(vec![n, 7], rng.floats(n * 7, -3.0, 3.0));
        let masks = [vec![true; n], (0..n).map(|t| t % 2 == 1).collect(), vec![false; n], (0..n).map(|t| t == n - 1).collect()];
        for mask in masks {
            let got = mean.forward(&[&x, &mask_input(&mask)], &mut ctx).unwrap();
            assert_eq!(got.shape(), &[7]);
            assert_close(got.data(), &mean_pool(&f64s(&x), &mask), 1e-6, &format!("mean, {n} tokens, mask {mask:?}"));
            if !mask.contains(&true) {
                assert!(got.data().iter().all(|&v| v == 0.0), "the mean of no token is zeros");
            }
        }
        let got = cls.forward(&[&x], &mut ctx).unwrap();
        assert_eq!(got.data(), &x.data()[..7], "cls");
    }
    let x = Tensor::zeros(vec![4, 7]);
    let input = mask_input(&[true; 4]);
    for (shapes, what) in [
        (vec![vec![4, 7], vec![5, 3]], "tokens differ"),
        (vec![vec![28], vec![4, 3]], "flat x"),
        (vec![vec![4, 7], vec![4, 2]], "not a text input"),
        (vec![vec![4, 7]], "no mask"),
    ] {
        let refs: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
        assert_eq!(err_kind(mean.output_shape(&refs)), ErrorKind::ShapeMismatch, "mean: {what}");
        let ts: Vec<Tensor> = shapes.iter().map(|s| Tensor::zeros(s.clone())).collect();
        let tr: Vec<&Tensor> = ts.iter().collect();
        assert_eq!(err_kind(mean.forward(&tr, &mut ctx)), ErrorKind::ShapeMismatch, "mean forward: {what}");
    }
    for shape in [vec![7], vec![0, 7], vec![4, 0], vec![2, 2, 2]] {
        assert_eq!(err_kind(cls.forward(&[&Tensor::zeros(shape.clone())], &mut ctx)), ErrorKind::ShapeMismatch, "cls {shape:?}");
    }
    assert_eq!(err_kind(cls.forward(&[&x, &input], &mut ctx)), ErrorKind::ShapeMismatch, "cls takes one input");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn attention_refuses_wrong_shapes() {
    let layer = Attention { name: "att".into(), heads: 4 };
    let mut ctx = Context::default();
    let z = |s: &[usize]| Tensor::zeros(s.to_vec());
    let input = mask_input(&[true; 3]);
    let cases: [(Vec<Tensor>, &str); 7] = [
        (vec![z(&[3, 8]), z(&[3, 8]), z(&[3, 8])], "no mask"),
        (vec![z(&[3, 8]), z(&[3, 8]), z(&[3, 4]), input.clone()], "v narrower"),
        (vec![z(&[3, 8]), z(&[2, 8]), z(&[3, 8]), input.clone()], "k shorter"),
        (vec![z(&[2, 8]), z(&[2, 8]), z(&[2, 8]), input.clone()], "mask of another length"),
        (vec![z(&[3, 6]), z(&[3, 6]), z(&[3, 6]), input.clone()], "hidden not a multiple of the heads"),
        (vec![z(&[24]), z(&[24]), z(&[24]), input.clone()], "flat"),
        (vec![z(&[3, 8]), z(&[3, 8]), z(&[3, 8]), z(&[3, 2])], "not a text input"),
    ];
    for (ts, what) in &cases {
        let tr: Vec<&Tensor> = ts.iter().collect();
        assert_eq!(err_kind(layer.forward(&tr, &mut ctx)), ErrorKind::ShapeMismatch, "{what}");
        let shapes: Vec<&[usize]> = ts.iter().map(|t| t.shape()).collect();
        assert_eq!(err_kind(layer.output_shape(&shapes)), ErrorKind::ShapeMismatch, "{what} (shape)");
    }
    let ok = [z(&[3, 8]), z(&[3, 8]), z(&[3, 8]), input];
    assert_eq!(layer.output_shape(&ok.iter().map(|t| t.shape()).collect::<Vec<_>>()).unwrap(), vec![3, 8]);
}

/// The weight a code stands for, written out, so that `dequantize` in the support module is not
/// its own reference.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn reference_dequantizes_nested_codes() {
    let codes = [0u8, 127, 128, 255, 0b1010_0110];
    let w = dequantize(&codes, 5, bits(3), &[2.0]);
    // 3-bit codes 0, 3, 4, 7, 5 on the mid-rise grid E ((2c + 1) / 8 - 1).
    assert_eq!(w, vec![-1.75, -0.25, 0.25, 1.75, 0.75]);
    assert_eq!(dequantize(&[200], 1, bits(1), &[0.5]), vec![0.25]);
    assert_eq!(weight_value(derive_code(77, bits(8)), bits(8), 1.0), (2.0 * 77.0 + 1.0) / 256.0 - 1.0);
    // The packing is the one `anybit import` writes: least significant bit first, back to back.
    assert_eq!(pack_lsb_first(&[(0b101, 3), (0b11111, 5), (1, 1)]), vec![0b1111_1101, 0b0000_0001]);
    let t = pack_lsb_first(&[(5, 3), (31, 5), (1, 1), (6, 3)]);
    assert_eq!(decode_row(&t, 0, 1, 3, 0.0, 1.0), vec![5.0]);
    assert_eq!(decode_row(&t, 9, 1, 3, 0.0, 1.0), vec![6.0]);
    assert_eq!(names::table_name("embed"), "codes.embed");
}

