//! The attacks (crate/src/attack) on the shipped MNIST model and the foolbox samples (test images
//! 0..19): valid images within budget, success rates and perturbation sizes that say the
//! gradients lead somewhere, the resumable run's bookkeeping, determinism, ADV-ReLU, and typed
//! refusals of every bad parameter. Runs natively and as wasm, with fewer samples in wasm and a
//! shorter C&W there (its success rates are asserted natively). wasm-bindgen's runner gives up on
//! a headless Chromium page that stays busy for 20 s, and a test binary's tests run back to back
//! without yielding: the scalar wasm build (several times slower than SIMD128) therefore runs only
//! the first and the last test here and marks the others ignored; the SIMD128 and relaxed builds
//! run them all.

mod grad_support;

use anybit::attack::{argmax, norms, Attack, AttackKind, Outcome, Params};
use anybit::grad::AdvRelu;
use anybit::{ErrorKind, Model};
use grad_support::{bits, samples, MNIST};

const LIGHT: bool = cfg!(target_arch = "wasm32");

/// C&W kept short in tests: the point is that it runs and finds small perturbations.
fn cw_params() -> Params {
    Params { steps: Some(40), search_steps: Some(6), step_size: Some(0.05), ..Params::default() }
}

/// Shorter still where only the run's validity is checked, in wasm.
fn cw_light() -> Params {
    if LIGHT {
        Params { steps: Some(8), search_steps: Some(3), step_size: Some(0.1), ..Params::default() }
    } else {
        cw_params()
    }
}

/// The defaults, shortened in wasm where only the run's validity is checked.
fn params_for(kind: AttackKind) -> Params {
    match kind {
        AttackKind::CwL2 => cw_light(),
        AttackKind::Bim | AttackKind::PgdLinf | AttackKind::PgdL2 | AttackKind::MiFgsm if LIGHT => {
            Params { steps: Some(5), ..Params::default() }
        }
        _ => Params::default(),
    }
}

/// Runs step by step, checking the bookkeeping on the way, and checks the outcome against the
/// settings and an independent forward pass.
fn run_checked(model: &mut Model, x: &[f32], label: usize, kind: AttackKind, p: &Params, what: &str) -> Outcome {
    let mut a = Attack::new(model, x, label, kind, p).unwrap_or_else(|e| panic!("{what}: {e}"));
    let s = a.settings().clone();
    let mut last = a.progress();
    assert_eq!(last.0, 0, "{what}: progress starts at 0");
    let total = last.1;
    assert!(total > 0);
    while !a.step(model).unwrap() {
        let now = a.progress();
        assert!(now.0 >= last.0 && now.0 < total && now.1 == total, "{what}: progress {last:?} -> {now:?}");
        last = now;
    }
    assert_eq!(a.progress(), (total, total), "{what}: a finished run reports its total");
    let o = a.finish(model).unwrap();
    // Once done, a step is a no-op.
    assert!(a.step(model).unwrap() && a.is_done());
    assert_eq!(a.progress(), (total, total));
    assert_eq!(a.finish(model).unwrap(), o, "{what}: stepping a finished run changed its outcome");

    assert_eq!(o.adversarial.len(), x.len(), "{what}");
    assert!(o.adversarial.iter().all(|v| (0.0..=1.0).contains(v)), "{what}: a pixel left [0, 1]");
    assert!(o.work <= total, "{what}: work {} > total {total}", o.work);
    let (l2, linf) = norms(&o.adversarial, x);
    assert!((l2 - o.l2).abs() <= 1e-5 && (linf - o.linf).abs() <= 1e-6, "{what}: reported norms {} {} vs {l2} {linf}", o.l2, o.linf);
    match kind {
        AttackKind::Fgsm | AttackKind::Bim | AttackKind::PgdLinf | AttackKind::MiFgsm => {
            assert!(o.linf <= s.eps + 1e-6, "{what}: Linf {} > eps {}", o.linf, s.eps)
        }
        AttackKind::PgdL2 => assert!(o.l2 <= s.eps + 1e-4, "{what}: L2 {} > eps {}", o.l2, s.eps),
        AttackKind::DeepFool | AttackKind::CwL2 => {}
    }
    let z = model.run(&o.adversarial).unwrap();
    let met = match p.target {
        Some(t) => argmax(&z) == t,
        None => argmax(&z) != label,
    };
    assert_eq!(o.success, met, "{what}: success {} but the model says class {}", o.success, argmax(&z));
    o
}

/// The samples the model classifies correctly at its current width.
fn correct(model: &mut Model, n: usize) -> Vec<(Vec<f32>, usize)> {
    samples(false).into_iter().take(n).filter(|(x, l)| argmax(&model.run(x).unwrap()) == *l).collect()
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn every_attack_gives_valid_images_within_budget() {
    let mut model = Model::from_bytes(MNIST).unwrap();
    let widths: &[u8] = if LIGHT { &[8] } else { &[8, 4, 1] };
    let picks: &[usize] = if LIGHT { &[0] } else { &[0, 1, 2] };
    let all = samples(false);
    for &w in widths {
        model.set_width(bits(w)).unwrap();
        for &i in picks {
            let (x, label) = &all[i];
            for kind in AttackKind::ALL {
                run_checked(&mut model, x, *label, kind, &params_for(kind), &format!("w{w} sample {i} {kind}"));
            }
            // Budgets other than the defaults are respected too.
            for (kind, eps) in [(AttackKind::PgdLinf, 0.05), (AttackKind::Bim, 0.1), (AttackKind::PgdL2, 0.7), (AttackKind::MiFgsm, 0.02)] {
                let p = Params { eps: Some(eps), ..params_for(kind) };
                run_checked(&mut model, x, *label, kind, &p, &format!("w{w} sample {i} {kind} eps {eps}"));
            }
        }
    }
}

/// PGD-Linf at its defaults (eps 0.3, 40 steps) fools the model on (almost) every sample it
/// gets right; DeepFool and C&W succeed with far smaller L2 perturbations.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(all(target_arch = "wasm32", not(target_feature = "simd128")), ignore)]
fn untargeted_success_and_minimal_perturbations() {
    let mut model = Model::from_bytes(MNIST).unwrap();
    let widths: &[u8] = if LIGHT { &[8] } else { &[8, 4, 1] };
    for &w in widths {
        model.set_width(bits(w)).unwrap();
        let taken = if LIGHT { 2 } else if w == 8 { 20 } else { 10 };
        let set = correct(&mut model, taken);
        let n = set.len();
        assert!(n * 10 >= taken * 9, "w{w}: only {n} of {taken} samples classified correctly");
        let (mut pgd_ok, mut pgd_l2, mut df_ok, mut df_l2, mut cw_ok, mut cw_l2) = (0, 0.0, 0, 0.0, 0, 0.0);
        for (i, (x, label)) in set.iter().enumerate() {
            let o = run_checked(&mut model, x, *label, AttackKind::PgdLinf, &Params::default(), &format!("w{w} #{i} pgd"));
            pgd_ok += o.success as usize;
            pgd_l2 += if o.success { o.l2 } else { 0.0 };
            let o = run_checked(&mut model, x, *label, AttackKind::DeepFool, &Params::default(), &format!("w{w} #{i} deepfool"));
            df_ok += o.success as usize;
            df_l2 += if o.success { o.l2 } else { 0.0 };
            if !LIGHT {
                let o = run_checked(&mut model, x, *label, AttackKind::CwL2, &cw_params(), &format!("w{w} #{i} cw"));
                cw_ok += o.success as usize;
                cw_l2 += if o.success { o.l2 } else { 0.0 };
            }
        }
        let mean = |s: f32, k: usize| s / k.max(1) as f32;
        let (pgd_m, df_m, cw_m) = (mean(pgd_l2, pgd_ok), mean(df_l2, df_ok), mean(cw_l2, cw_ok));
        println!("w{w}: {n} correct; pgd-linf {pgd_ok} (mean L2 {pgd_m:.2}), deepfool {df_ok} ({df_m:.2}), cw {cw_ok} ({cw_m:.2})");
        // At 1 bit the straight-through gradient of 1-bit activations is a weaker guide
        // (measured on all 20: pgd-linf 17 of 19, the short C&W 9 of 19), so less is required there.
        let (pgd_min, cw_min) = if w == 1 { (0.8, 0.3) } else { (1.0, 0.8) };
        assert!(pgd_ok as f32 + 1.0 >= pgd_min * n as f32, "w{w}: pgd-linf fooled {pgd_ok} of {n}");
        assert!(df_ok * 10 >= n * 9, "w{w}: deepfool fooled {df_ok} of {n}");
        assert!(df_m < 0.6 * pgd_m, "w{w}: mean L2 deepfool {df_m}, pgd {pgd_m}");
        if !LIGHT {
            assert!(cw_ok as f32 >= cw_min * n as f32, "w{w}: cw fooled {cw_ok} of {n}");
            assert!(cw_m < 0.6 * pgd_m, "w{w}: mean L2 cw {cw_m}, pgd {pgd_m}");
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(all(target_arch = "wasm32", not(target_feature = "simd128")), ignore)]
fn targeted_attacks_reach_the_target() {
    let mut model = Model::from_bytes(MNIST).unwrap();
    let set = correct(&mut model, if LIGHT { 3 } else { 12 });
    let (mut pgd_ok, mut cw_ok) = (0, 0);
    for (i, (x, label)) in set.iter().enumerate() {
        let target = (label + 1 + i % 9) % 10;
        let p = Params { target: Some(target), ..Params::default() };
        let o = run_checked(&mut model, x, *label, AttackKind::PgdLinf, &p, &format!("#{i} pgd -> {target}"));
        pgd_ok += o.success as usize;
        if !LIGHT {
            let p = Params { target: Some(target), ..cw_params() };
            let o = run_checked(&mut model, x, *label, AttackKind::CwL2, &p, &format!("#{i} cw -> {target}"));
            cw_ok += o.success as usize;
        }
    }
    let n = set.len();
    println!("targeted: pgd-linf {pgd_ok} of {n}, cw {cw_ok} of {n}");
    assert!(pgd_ok * 10 >= n * 8, "targeted pgd-linf reached {pgd_ok} of {n}");
    // The short C&W reaches 9 of the 12 (natively only: see the module comment).
    if !LIGHT {
        assert!(cw_ok >= (n * 7).div_ceil(10), "targeted cw reached {cw_ok} of {n}");
    }
}

/// The minimal-budget search stays within its budget and finds less than the full budget.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(all(target_arch = "wasm32", not(target_feature = "simd128")), ignore)]
fn min_eps_search_stays_within_the_budget() {
    let mut model = Model::from_bytes(MNIST).unwrap();
    let set = correct(&mut model, if LIGHT { 1 } else { 5 });
    for (i, (x, label)) in set.iter().enumerate() {
        // Step sizes that let one run cross its whole budget (they scale with the searched eps).
        let (steps, k) = if LIGHT { (10, 2.0) } else { (20, 1.0) };
        for (kind, eps, step) in [(AttackKind::PgdLinf, 0.3f32, 0.03 * k), (AttackKind::PgdL2, 3.0, 0.3 * k)] {
            let p = Params { eps: Some(eps), min_eps: true, steps: Some(steps), step_size: Some(step), search_steps: Some(if LIGHT { 3 } else { 5 }), ..Params::default() };
            let o = run_checked(&mut model, x, *label, kind, &p, &format!("#{i} {kind} min-eps"));
            let size = if kind == AttackKind::PgdL2 { o.l2 } else { o.linf };
            assert!(o.success, "#{i} {kind}: the search found nothing within eps {eps}");
            assert!(size <= eps + 1e-4, "#{i} {kind}: perturbation {size} > eps {eps}");
            // Bisection from eps: a success at eps / 2 or below is expected on MNIST.
            assert!(size < 0.75 * eps, "#{i} {kind}: the search did not shrink the budget ({size} of {eps})");
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(all(target_arch = "wasm32", not(target_feature = "simd128")), ignore)]
fn adv_relu_attacks_give_valid_outputs() {
    let mut model = Model::from_bytes(MNIST).unwrap();
    let (x, label) = samples(false).swap_remove(4);
    for w in if LIGHT { vec![8u8] } else { vec![8, 2] } {
        model.set_width(bits(w)).unwrap();
        for kind in AttackKind::ALL {
            let p = Params { adv_relu: Some(AdvRelu::default()), ..params_for(kind) };
            run_checked(&mut model, &x, label, kind, &p, &format!("w{w} {kind} adv-relu"));
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(all(target_arch = "wasm32", not(target_feature = "simd128")), ignore)]
fn same_seed_same_result() {
    let mut model = Model::from_bytes(MNIST).unwrap();
    let (x, label) = samples(false).swap_remove(2);
    for kind in AttackKind::ALL {
        let p = Params { seed: 7, ..params_for(kind) };
        let a = Attack::new(&model, &x, label, kind, &p).unwrap().run(&mut model).unwrap();
        let b = Attack::new(&model, &x, label, kind, &p).unwrap().run(&mut model).unwrap();
        assert_eq!(a, b, "{kind}: two runs with one seed differ");
    }
    // The seed is used: PGD's random start differs between seeds.
    for kind in [AttackKind::PgdLinf, AttackKind::PgdL2] {
        let run = |seed, model: &mut Model| {
            let p = Params { seed, steps: Some(1), ..Params::default() };
            Attack::new(model, &x, label, kind, &p).unwrap().run(model).unwrap().adversarial
        };
        assert_ne!(run(1, &mut model), run(2, &mut model), "{kind}: seeds 1 and 2 gave the same start");
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn bad_parameters_are_refused_with_typed_errors() {
    use AttackKind::*;
    let model = Model::from_bytes(MNIST).unwrap();
    let (x, label) = samples(false).swap_remove(0);
    let p = Params::default;
    let ia = ErrorKind::InvalidArgument;
    let adv = |eta, fraction| Some(AdvRelu { eta, fraction, ..AdvRelu::default() });
    let cases: Vec<(AttackKind, Params, ErrorKind, &str)> = vec![
        (PgdLinf, Params { eps: Some(-0.1), ..p() }, ia, "eps"),
        (PgdLinf, Params { eps: Some(0.0), ..p() }, ia, "eps"),
        (Fgsm, Params { eps: Some(f32::NAN), ..p() }, ia, "eps"),
        (Bim, Params { eps: Some(f32::INFINITY), ..p() }, ia, "eps"),
        (MiFgsm, Params { eps: Some(1.5), ..p() }, ia, "eps"),
        (PgdL2, Params { eps: Some(28.5), ..p() }, ia, "eps"),
        (PgdL2, Params { eps: Some(f32::NEG_INFINITY), ..p() }, ia, "eps"),
        (PgdLinf, Params { steps: Some(0), ..p() }, ia, "steps"),
        (Bim, Params { steps: Some(10_001), ..p() }, ia, "steps"),
        (CwL2, Params { steps: Some(u32::MAX), ..p() }, ia, "steps"),
        (Fgsm, Params { steps: Some(2), ..p() }, ia, "single step"),
        (PgdLinf, Params { step_size: Some(f32::NAN), ..p() }, ia, "step size"),
        (PgdLinf, Params { step_size: Some(-0.01), ..p() }, ia, "step size"),
        (CwL2, Params { step_size: Some(1e9), ..p() }, ia, "step size"),
        (PgdLinf, Params { target: Some(10), ..p() }, ia, "target"),
        (CwL2, Params { target: Some(usize::MAX), ..p() }, ia, "target"),
        (DeepFool, Params { target: Some(3), ..p() }, ia, "untargeted"),
        (DeepFool, Params { eps: Some(0.5), ..p() }, ia, "no eps"),
        (CwL2, Params { eps: Some(0.5), ..p() }, ia, "no eps"),
        (Fgsm, Params { min_eps: true, ..p() }, ia, "minimal-budget"),
        (DeepFool, Params { min_eps: true, ..p() }, ia, "minimal-budget"),
        (CwL2, Params { min_eps: true, ..p() }, ia, "minimal-budget"),
        (PgdLinf, Params { min_eps: true, search_steps: Some(0), ..p() }, ia, "search steps"),
        (CwL2, Params { search_steps: Some(21), ..p() }, ia, "search steps"),
        (PgdLinf, Params { adv_relu: adv(0.0, 0.5), ..p() }, ia, "ADV-ReLU"),
        (PgdLinf, Params { adv_relu: adv(f32::NAN, 0.5), ..p() }, ia, "ADV-ReLU"),
        (DeepFool, Params { adv_relu: adv(0.5, 0.0), ..p() }, ia, "ADV-ReLU"),
        (CwL2, Params { adv_relu: adv(0.5, 1.01), ..p() }, ia, "ADV-ReLU"),
    ];
    for (kind, params, want, needle) in cases {
        let e = Attack::new(&model, &x, label, kind, &params).err().unwrap_or_else(|| panic!("{kind} {params:?} was accepted"));
        assert!(e.kind() == want && e.message().contains(needle), "{kind} {params:?}: got {:?} {:?}, want {want:?} mentioning {needle:?}", e.kind(), e.message());
    }
    // Images and labels.
    let bad = |image: &[f32], label: usize| Attack::new(&model, image, label, PgdLinf, &Params::default()).err().unwrap();
    let mut img = x.clone();
    img[100] = 1.0001;
    assert_eq!(bad(&img, label).kind(), ErrorKind::BadValue);
    img[100] = -0.01;
    assert_eq!(bad(&img, label).kind(), ErrorKind::BadValue);
    img[100] = f32::NAN;
    let e = bad(&img, label);
    assert!(e.kind() == ErrorKind::BadValue && e.message().contains("#100"), "{e}");
    assert_eq!(bad(&x[..783], label).kind(), ErrorKind::ShapeMismatch);
    assert_eq!(bad(&[x.clone(), vec![0.0]].concat(), label).kind(), ErrorKind::ShapeMismatch);
    assert_eq!(bad(&[], label).kind(), ErrorKind::ShapeMismatch);
    let e = bad(&x, 10);
    assert!(e.kind() == ErrorKind::InvalidArgument && e.message().contains("label"), "{e}");
    // Names.
    assert_eq!("pgd".parse::<AttackKind>().unwrap_err().kind(), ErrorKind::InvalidArgument);
    for kind in AttackKind::ALL {
        assert_eq!(kind.name().parse::<AttackKind>().unwrap(), kind);
    }
}
