//! Input gradients (crate/src/grad.rs, `Model::backward`, the layers' backward passes) checked
//! against central finite differences of an independent f64 interpreter of the float twin
//! (grad_support), on the shipped models at several widths and on small graphs covering every
//! op; then the quantized pass's straight-through gates, ADV-ReLU's gate flips, and typed errors.
//! Runs natively and as wasm (scripts/wasm-test.sh), with fewer points in wasm.
//!
//! Kinks: the twin is piecewise smooth (gates, max-pool winners, the margin's runner-up). A
//! finite difference is used only where the reference takes the same piecewise decisions at
//! `x + h d` and `x - h d` as at `x` (`central_differences`); a point where some step crosses a
//! kink is moved (a fresh draw of its noise) and the move is counted, the tolerance never changes.
//! A step that crosses a kink is first retried at h / 10 and h / 100 (grad_support). Real images
//! are moved off the kinks they sit on by construction: pixels are squeezed into [0.05, 0.95] and
//! get uniform noise of +-0.04, so none lies on the first quantizer's edge 0, and flat
//! background regions, whose conv outputs would otherwise differ only by the noise, do not turn
//! every max-pool window into a near-tie.
//!
//! Set ANYBIT_GRAD_FULL=1 (native) to difference every input coordinate of the shipped models
//! instead of a sample of them (slow: 2 x 784 passes of the f64 interpreter per point).

mod grad_support;

use anybit::format::{self, Precision};
use anybit::grad::{gradients, AdvRelu, Loss};
use anybit::quant::{derive_code, weight_value};
use anybit::{Bits, ErrorKind, Model};
use grad_support::*;

/// Allowed relative error: |runtime - FD| / |FD| over the checked coordinates or directions.
const TOL: f64 = 1e-3;
/// FD step: in f64 the rounding error of a central difference is ~1e-16 / h relative, and a
/// small step keeps kink crossings rare.
const H: f64 = 1e-5;
const LIGHT: bool = cfg!(target_arch = "wasm32");

fn full() -> bool {
    !LIGHT && std::env::var_os("ANYBIT_GRAD_FULL").is_some()
}

/// The runtime's twin gradient of each loss at `x`, and its logits.
fn twin_gradients(model: &mut Model, x: &[f32], losses: &[Loss]) -> (Vec<f32>, Vec<Vec<f64>>) {
    let trace = model.trace(x, true).unwrap();
    let grads = losses
        .iter()
        .map(|l| {
            let (_, dz) = l.eval(trace.logits()).unwrap();
            model.backward(&trace, &dz, &[]).unwrap().into_iter().map(f64::from).collect()
        })
        .collect();
    (trace.logits().to_vec(), grads)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Checks every loss's runtime gradient against FD along `dirs` at `x`; returns the largest
/// relative error, or `Err` when a step crosses a kink.
fn check_point(model: &mut Model, r: &Reference, x: &[f32], losses: &[Loss], dirs: &[Vec<f64>], what: &str) -> Result<f64, usize> {
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let fd = central_differences(r, &x64, dirs, losses, H)?;
    let (_, grads) = twin_gradients(model, x, losses);
    let mut worst = 0.0f64;
    for ((loss, g), fd) in losses.iter().zip(&grads).zip(&fd) {
        let analytic: Vec<f64> = dirs.iter().map(|d| dot(g, d)).collect();
        let e = rel_err(&analytic, fd);
        let fd_norm = fd.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!(
            e <= TOL,
            "{what}, {loss:?}: relative error {e:.3e} > {TOL:e} (|FD| = {fd_norm:.3e})\nruntime {:?}\nFD      {:?}",
            &analytic[..analytic.len().min(8)],
            &fd[..fd.len().min(8)]
        );
        worst = worst.max(e);
    }
    Ok(worst)
}

/// A real image moved off the kinks it sits on (see the module docs).
fn noisy(image: &[f32], rng: &mut Rng) -> Vec<f32> {
    image.iter().map(|&p| (p.clamp(0.05, 0.95) as f64 + rng.f64(-0.04, 0.04)) as f32).collect()
}

fn real_losses(label: usize, logits: &[f32]) -> Vec<Loss> {
    let runner_up = (0..logits.len()).filter(|&i| i != label).max_by(|&a, &b| logits[a].total_cmp(&logits[b])).unwrap();
    vec![
        Loss::CrossEntropy { class: label, away: true },
        Loss::CrossEntropy { class: runner_up, away: false },
        Loss::Difference { to: runner_up, from: label },
        Loss::Margin { class: label, away: true, kappa: 1e3 },
    ]
}

fn real_model_fd(name: &str, bytes: &[u8], fashion: bool) {
    let mut model = Model::from_bytes(bytes).unwrap();
    let samples = samples(fashion);
    let widths: &[u8] = if LIGHT { &[8, 1] } else { &[8, 4, 2, 1] };
    let picks: &[usize] = if LIGHT { &[3] } else { &[0, 7, 13] };
    let n = 784;
    for &w in widths {
        model.set_width(bits(w)).unwrap();
        let r = Reference::new(bytes, bits(w));
        let (mut worst, mut moves, mut coords) = (0.0f64, 0, 0);
        for &s in picks {
            let (image, label) = &samples[s];
            let mut rng = Rng(1000 * w as u64 + s as u64);
            let mut tries = 0;
            loop {
                let x = noisy(image, &mut rng);
                let (logits, g) = twin_gradients(&mut model, &x, &[Loss::CrossEntropy { class: *label, away: true }]);
                let losses = real_losses(*label, &logits);
                // Coordinates: the largest components of the gradient (where its mass is) and
                // random others; then dense random directions, which see every coordinate.
                let mut dirs: Vec<Vec<f64>> = if full() {
                    (0..n).map(|i| unit(n, i)).collect()
                } else {
                    let mut order: Vec<usize> = (0..n).collect();
                    order.sort_by(|&a, &b| g[0][b].abs().total_cmp(&g[0][a].abs()));
                    let k = if LIGHT { 6 } else { 12 };
                    let mut picked: Vec<usize> = order[..k].to_vec();
                    picked.extend((0..k).map(|_| rng.below(n)));
                    picked.into_iter().map(|i| unit(n, i)).collect()
                };
                let coord_dirs = dirs.len();
                let dense: Vec<Vec<f64>> = (0..if LIGHT { 2 } else { 4 })
                    .map(|_| {
                        let v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
                        let norm = dot(&v, &v).sqrt();
                        v.into_iter().map(|a| a / norm).collect()
                    })
                    .collect();
                let what = format!("{name} w{w} sample {s}");
                let a = check_point(&mut model, &r, &x, &losses, &dirs, &format!("{what}, coordinates"));
                let b = a.and_then(|e| check_point(&mut model, &r, &x, &losses, &dense, &format!("{what}, directions")).map(|f| e.max(f)));
                match b {
                    Ok(e) => {
                        worst = worst.max(e);
                        coords += coord_dirs;
                        break;
                    }
                    Err(_) => {
                        moves += 1;
                        tries += 1;
                        assert!(tries < 8, "{what}: every one of 8 noisy points straddles a kink within h = {H}");
                    }
                }
                dirs.clear();
            }
        }
        println!("{name} w{w}: max relative error {worst:.2e} over {} points ({coords} coordinates + directions), {moves} points moved off kinks", picks.len());
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn mnist_twin_gradient_matches_finite_differences() {
    real_model_fd("mnist", MNIST, false);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn fashion_twin_gradient_matches_finite_differences() {
    real_model_fd("fashion-mnist", FASHION, true);
}

/// Every op and conv option: all input coordinates differenced, points drawn across both sides
/// of the first quantizer's range (so blocked coordinates are checked to be zero as well).
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn op_graph_twin_gradients_match_finite_differences() {
    let points = if LIGHT { 2 } else { 6 };
    for (name, bytes) in op_graphs() {
        let mut model = Model::from_bytes(&bytes).unwrap();
        let classes = model.output_shape().iter().product::<usize>();
        let losses = [
            Loss::CrossEntropy { class: 0, away: true },
            Loss::CrossEntropy { class: classes - 1, away: false },
            Loss::Difference { to: 1, from: 0 },
            Loss::Margin { class: 1, away: false, kappa: 1e3 },
        ];
        for w in WIDTHS {
            model.set_width(bits(w)).unwrap();
            let r = Reference::new(&bytes, bits(w));
            let n = r.input_len();
            let dirs: Vec<Vec<f64>> = (0..n).map(|i| unit(n, i)).collect();
            let (mut worst, mut moves, mut nonzero) = (0.0f64, 0, 0);
            let mut rng = Rng(77 + w as u64);
            let mut done = 0;
            while done < points {
                let x: Vec<f32> = (0..n).map(|_| rng.f64(-0.3, 2.0) as f32).collect();
                match check_point(&mut model, &r, &x, &losses, &dirs, &format!("{name} w{w}")) {
                    Ok(e) => {
                        worst = worst.max(e);
                        done += 1;
                        let (_, g) = twin_gradients(&mut model, &x, &losses[..1]);
                        nonzero += g[0].iter().any(|&v| v != 0.0) as usize;
                    }
                    Err(_) => {
                        moves += 1;
                        assert!(moves < 10 * points, "{name} w{w}: too many points straddle kinks");
                    }
                }
            }
            // A graph whose gradient is always zero would pass vacuously.
            assert!(nonzero * 2 >= points, "{name} w{w}: only {nonzero} of {points} points have a nonzero gradient");
            println!("{name} w{w}: max relative error {worst:.2e} over {points} points x {n} coordinates, {moves} points moved off kinks");
        }
    }
}

/// The runtime's float twin and the reference compute the same logits: validates the
/// interpreter (weights, clips, layouts, padding rules) against the runtime, per width.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn twin_logits_match_the_reference() {
    let mut cases: Vec<(String, Vec<u8>, Vec<Vec<f32>>)> = Vec::new();
    let picks = if LIGHT { 2 } else { 5 };
    for (name, bytes, fashion) in [("mnist", MNIST, false), ("fashion-mnist", FASHION, true)] {
        let xs = samples(fashion).into_iter().take(picks).map(|(x, _)| x).collect();
        cases.push((name.into(), bytes.to_vec(), xs));
    }
    for (name, bytes) in op_graphs() {
        let mut rng = Rng(5);
        let n = Reference::new(&bytes, bits(8)).input_len();
        let xs = (0..picks).map(|_| (0..n).map(|_| rng.f64(-0.3, 2.0) as f32).collect()).collect();
        cases.push((name.into(), bytes, xs));
    }
    for (name, bytes, xs) in &cases {
        let mut model = Model::from_bytes(bytes).unwrap();
        let widths: Vec<u8> = if LIGHT { vec![8, 2] } else { (1..=8).rev().filter(|w| model.widths().iter().any(|x| x.w.get() == *w)).collect() };
        for w in widths {
            model.set_width(bits(w)).unwrap();
            let r = Reference::new(bytes, bits(w));
            let mut worst = 0.0f64;
            for x in xs {
                let trace = model.trace(x, true).unwrap();
                let want = r.run(&x.iter().map(|&v| v as f64).collect::<Vec<_>>());
                let scale = want.logits().iter().fold(1.0f64, |m, v| m.max(v.abs()));
                let err = trace.logits().iter().zip(want.logits()).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max) / scale;
                assert!(err <= 1e-5, "{name} w{w}: twin logits {:?} vs reference {:?} (error {err:.2e})", trace.logits(), want.logits());
                worst = worst.max(err);
            }
            println!("{name} w{w}: twin vs reference logits, max error {worst:.2e} (relative to max(1, |z|))");
        }
    }
}

/// The quantized pass blocks the gradient of every input outside the first quantizer's
/// [0, clip] and passes it on the edges themselves.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn gradient_is_zero_outside_the_first_gate() {
    let mut model = Model::from_bytes(MNIST).unwrap();
    let (image, label) = samples(false).swap_remove(0);
    for w in [8u8, 2] {
        model.set_width(bits(w)).unwrap();
        let clip = Reference::new(MNIST, bits(w)).clips[0].unwrap() as f32;
        let mut x = noisy(&image, &mut Rng(9));
        let (mut below, mut above) = (Vec::new(), Vec::new());
        for i in (0..784).step_by(5) {
            if i % 2 == 0 {
                x[i] = -0.25;
                below.push(i);
            } else {
                x[i] = clip + 0.25;
                above.push(i);
            }
        }
        for twin in [false, true] {
            let trace = model.trace(&x, twin).unwrap();
            let gates = model.gates(&trace);
            assert_eq!((gates[0].node, gates[0].range), (0, (0.0, clip)), "w{w}: the first gate is conv1's quantizer");
            assert_eq!(gates[0].pre, &x[..]);
            let (_, dz) = Loss::CrossEntropy { class: label, away: true }.eval(trace.logits()).unwrap();
            let g = model.backward(&trace, &dz, &[]).unwrap();
            for &i in below.iter().chain(&above) {
                assert_eq!(g[i], 0.0, "w{w} twin {twin}: pixel {i} = {} is outside [0, {clip}] but has gradient {}", x[i], g[i]);
            }
            let inside = (0..784).filter(|i| i % 5 != 0 && g[*i] != 0.0).count();
            assert!(inside > 100, "w{w} twin {twin}: only {inside} pixels inside the range have a gradient");
        }
        // On the edges the gate is inclusive: a pixel at exactly 0 or clip passes its gradient.
        let mut edge = noisy(&image, &mut Rng(10));
        let trace = model.trace(&edge, false).unwrap();
        let (_, dz) = Loss::CrossEntropy { class: label, away: true }.eval(trace.logits()).unwrap();
        let g = model.backward(&trace, &dz, &[]).unwrap();
        let i = (0..784).max_by(|&a, &b| g[a].abs().total_cmp(&g[b].abs())).unwrap();
        for v in [0.0, clip] {
            edge[i] = v;
            let trace = model.trace(&edge, false).unwrap();
            let (_, dz) = Loss::CrossEntropy { class: label, away: true }.eval(trace.logits()).unwrap();
            assert_ne!(model.backward(&trace, &dz, &[]).unwrap()[i], 0.0, "w{w}: pixel {i} at the edge {v} is blocked");
        }
    }
}

/// input [1, 1, 4] -> clamp [-1, 1] -> flatten -> dense 4 -> 2 (fixed 8-bit, no bias): small
/// enough to write every gate decision down.
fn flip_model() -> (Vec<u8>, Vec<f32>, f32) {
    let mut off = 0;
    let g = anybit::format::Graph {
        format: format::FORMAT_NAME.into(),
        version: format::FORMAT_VERSION,
        name: "flips".into(),
        input_shape: vec![1, 1, 4],
        text: None,
        labels: None,
        widths: vec![format::Width::new(8, 8).unwrap()],
        nodes: vec![
            format::Node { name: "cl".into(), inputs: vec!["input".into()], op: format::Op::Clamp { min: -1.0, max: 1.0 } },
            format::Node { name: "fl".into(), inputs: vec!["cl".into()], op: format::Op::Flatten },
            format::Node { name: "fc".into(), inputs: vec!["fl".into()], op: dense(&mut off, 2, 4, Precision::Fixed8, false) },
        ],
        task: None,
        eval: vec![],
        sha256: None,
    };
    let bytes = grad_support::write(&g, 11);
    let file = format::read(&bytes).unwrap();
    let b8 = Bits::MAX;
    let weight = file.graph().nodes[2].op.weight().unwrap().clone();
    let e = file.tensor("fc", b8, "wscale").unwrap().data[0];
    let clip = file.tensor("fc", b8, "clip").unwrap().data[0];
    let w = file.layer_codes(&weight).unwrap().iter().map(|&c| weight_value(derive_code(c, b8), b8, e)).collect();
    (bytes, w, clip)
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn flips_invert_exactly_the_listed_gates() {
    let (bytes, w, clip) = flip_model();
    assert!(clip >= 0.5, "clip {clip}");
    let mut model = Model::from_bytes(&bytes).unwrap();
    // Clamp outputs [-1, -0.5, 0.4, 1]: the clamp passes elements 1 and 2, the quantizer
    // (inside [0, clip], clip >= 0.5) elements 2 and, when clip >= 1, 3.
    let x = [-2.0f32, -0.5, 0.4, 3.0];
    let dz = [1.0f32, -2.0];
    let wtg: Vec<f32> = (0..4).map(|i| dz[0] * w[i] + dz[1] * w[4 + i]).collect();
    let clamp_pass = [false, true, true, false];
    let quant_pass = [false, false, true, clip >= 1.0];
    for twin in [false, true] {
        let trace = model.trace(&x, twin).unwrap();
        for (flips, clamp_flip, quant_flip) in [
            (vec![], vec![], vec![]),
            (vec![vec![], vec![], vec![]], vec![], vec![]),
            (vec![vec![0, 3], vec![], vec![1]], vec![0, 3], vec![1]),
            (vec![vec![0, 1, 2, 3], vec![], vec![0, 1, 2, 3]], vec![0, 1, 2, 3], vec![0, 1, 2, 3]),
            (vec![vec![], vec![], vec![3, 0]], vec![], vec![3, 0]),
        ] {
            let g = model.backward(&trace, &dz, &flips).unwrap();
            for i in 0..4 {
                let c = clamp_pass[i] != clamp_flip.contains(&i);
                let q = quant_pass[i] != quant_flip.contains(&i);
                let want = if c && q { wtg[i] } else { 0.0 };
                assert!((g[i] - want).abs() <= 1e-6 * want.abs() && (want == 0.0) == (g[i] == 0.0),
                    "twin {twin} flips {flips:?}: element {i} gradient {} , want {want} (clamp passes {c}, quantizer {q})", g[i]);
            }
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn bad_arguments_are_typed_errors() {
    let (bytes, _, _) = flip_model();
    let mut model = Model::from_bytes(&bytes).unwrap();
    let x = [0.1f32, 0.2, 0.3, 0.4];
    let trace = model.trace(&x, false).unwrap();
    let kind = |r: anybit::Result<Vec<f32>>| r.unwrap_err().kind();
    let msg = |r: anybit::Result<Vec<f32>>| r.unwrap_err().message().to_string();
    assert_eq!(kind(model.backward(&trace, &[1.0, 0.0], &[vec![], vec![]])), ErrorKind::InvalidArgument);
    let m = msg(model.backward(&trace, &[1.0, 0.0], &[vec![4], vec![], vec![]]));
    assert!(m.contains("cl") && m.contains("#4"), "{m}");
    assert_eq!(kind(model.backward(&trace, &[1.0, 0.0], &[vec![], vec![], vec![u32::MAX]])), ErrorKind::InvalidArgument);
    let m = msg(model.backward(&trace, &[1.0, 0.0], &[vec![], vec![0], vec![]]));
    assert!(m.contains("fl") && m.contains("no gate"), "{m}");
    assert_eq!(kind(model.backward(&trace, &[1.0, 0.0], &[vec![], vec![0], vec![]])), ErrorKind::InvalidArgument);
    assert_eq!(kind(model.backward(&trace, &[1.0], &[])), ErrorKind::ShapeMismatch);
    assert_eq!(kind(model.backward(&trace, &[1.0, 0.0, 0.0], &[])), ErrorKind::ShapeMismatch);
    // A trace of another model.
    let mut mnist = Model::from_bytes(MNIST).unwrap();
    let other = mnist.trace(&[0.5; 784], false).unwrap();
    assert_eq!(kind(model.backward(&other, &[1.0, 0.0], &[])), ErrorKind::InvalidArgument);
    assert_eq!(kind(mnist.backward(&trace, &[0.0; 10], &[])), ErrorKind::InvalidArgument);
    // Inputs and losses.
    assert_eq!(model.trace(&[0.0; 3], false).err().unwrap().kind(), ErrorKind::ShapeMismatch);
    assert_eq!(model.trace(&[0.0, f32::NAN, 0.0, 0.0], true).err().unwrap().kind(), ErrorKind::BadValue);
    assert_eq!(model.trace(&[0.0, 0.0, f32::INFINITY, 0.0], false).err().unwrap().kind(), ErrorKind::BadValue);
    let z = trace.logits();
    for loss in [
        Loss::CrossEntropy { class: 2, away: true },
        Loss::Difference { to: 0, from: 2 },
        Loss::Difference { to: 5, from: 0 },
        Loss::Margin { class: 2, away: false, kappa: 0.0 },
    ] {
        let e = loss.eval(z).unwrap_err();
        assert!(e.kind() == ErrorKind::InvalidArgument && e.message().contains("out of range"), "{loss:?}: {e}");
    }
    let e = Loss::Margin { class: 0, away: true, kappa: 0.0 }.eval(&[1.0]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    for (eta, fraction) in [(0.0, 0.5), (-1.0, 0.5), (f32::NAN, 0.5), (f32::INFINITY, 0.5), (0.5, 0.0), (0.5, 1.5), (0.5, f32::NAN)] {
        let adv = AdvRelu { eta, fraction, ..AdvRelu::default() };
        let e = gradients(&mut model, &x, &[Loss::CrossEntropy { class: 0, away: true }], Some(&adv), false).err().unwrap();
        assert!(e.kind() == ErrorKind::InvalidArgument && e.message().contains("ADV-ReLU"), "eta {eta} fraction {fraction}: {e}");
    }
}

/// ADV-ReLU's corrected gradient is the plain one with the flips `grad.rs` documents; checked
/// here only where that is easy to state: with no gate input changing state, nothing changes,
/// and the corrected gradient is finite and of the input's size.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn adv_relu_gradients_are_well_formed() {
    let mut model = Model::from_bytes(MNIST).unwrap();
    let (image, label) = samples(false).swap_remove(1);
    let loss = [Loss::CrossEntropy { class: label, away: true }];
    for w in [8u8, 1] {
        model.set_width(bits(w)).unwrap();
        let plain = gradients(&mut model, &image, &loss, None, false).unwrap();
        let adv = gradients(&mut model, &image, &loss, Some(&AdvRelu::default()), false).unwrap();
        assert_eq!(plain.logits, adv.logits);
        assert_eq!(plain.losses[0].0, adv.losses[0].0);
        let (g0, g1) = (&plain.losses[0].1, &adv.losses[0].1);
        assert_eq!(g1.len(), 784);
        assert!(g1.iter().all(|v| v.is_finite()));
        // A tiny tentative step changes no gate decision: the corrected gradient is the plain one.
        let tiny = AdvRelu { eta: 1e-30, ..AdvRelu::default() };
        let same = gradients(&mut model, &image, &loss, Some(&tiny), false).unwrap();
        assert_eq!(&same.losses[0].1, g0, "w{w}: a step that changes no gate must not change the gradient");
        // The default step does change gates on this image, so the correction is not a no-op.
        assert_ne!(g1, g0, "w{w}: ADV-ReLU changed nothing");
    }
}
