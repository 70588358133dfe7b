//! Attacks on a session (crate/src/session/attack.rs): a real MNIST test digit attacked at a
//! chosen width in slices, the report (rounded image, norms, predictions at every loaded width),
//! the session's width afterwards, and typed refusals of bad requests. The first and the refusals
//! also run as wasm (scripts/wasm-test.sh): the report a page receives is computed there.

use anybit::attack::{AttackKind, Params};
use anybit::session::{AttackRequest, Session};
use anybit::ErrorKind;

mod common;
use common::{b, clock};

const MNIST: &[u8] = include_bytes!("../../models/mnist.anybit");
const MNIST_IMAGES: &[u8] = include_bytes!("../../fixtures/mnist-t100-images.idx3");


/// Test digit `i` (0..100) as model input in [0, 1].
fn digit(i: usize) -> Vec<f32> {
    MNIST_IMAGES[16 + i * 784..16 + (i + 1) * 784].iter().map(|&p| p as f32 / 255.0).collect()
}

fn pgd(eps: f32) -> AttackRequest {
    let mut r = AttackRequest::new(AttackKind::PgdLinf);
    r.params = Params { eps: Some(eps), steps: Some(20), ..Params::default() };
    r
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn pgd_in_slices_changes_the_prediction_and_restores_the_width() {
    let mut s = Session::load(MNIST, 1).unwrap();
    s.set_width(b(3)).unwrap();
    let now = clock();
    let x = digit(0); // a 7
    let mut req = pgd(0.2);
    req.width = Some(b(8));
    s.attack_start(&x, &req, &now).unwrap();
    assert_eq!(s.width(), b(3), "the width is the caller's between calls");
    let mut last = 0;
    loop {
        // 1 ms slices on a clock that advances 0.5 ms per reading: one or two steps per slice.
        let p = s.attack_step(1.0, &now).unwrap();
        assert!(p.done >= last && p.done <= p.total, "{p:?}");
        assert_eq!(s.width(), b(3));
        last = p.done;
        if p.finished {
            assert_eq!(p.done, p.total);
            break;
        }
    }
    let r = s.attack_finish(&now).unwrap();
    assert_eq!(s.width(), b(3));
    assert!(!s.attacking());
    assert_eq!((r.attack, r.width, r.label, r.target, r.adv_relu), ("pgd-linf", b(8), 7, None, false));
    assert!(r.success);
    let at8 = r.predictions.iter().find(|p| p.width == b(8)).unwrap();
    assert_eq!(at8.original.index, 7);
    assert_ne!(at8.adversarial.index, 7);
    assert_eq!(r.predictions.iter().map(|p| p.width).collect::<Vec<_>>(), (1..=8).map(b).collect::<Vec<_>>());
    for p in &r.predictions {
        assert!(p.original.probability > 0.0 && p.original.probability <= 1.0);
        assert_eq!(p.original.label.as_deref(), Some(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"][p.original.index]));
    }
    // Rounded to pixel levels, inside the budget, and the perturbation and norms are the rounded image's.
    assert!(r.adversarial.iter().all(|&v| (v * 255.0 - (v * 255.0).round()).abs() < 1e-3 && (0.0..=1.0).contains(&v)));
    assert!(r.linf <= 0.2 + 1e-6 && r.linf > 0.1, "linf {}", r.linf);
    let l2 = r.perturbation.iter().map(|d| d * d).sum::<f32>().sqrt() as f64;
    assert!((l2 - r.l2).abs() < 1e-4);
    assert!(r.perturbation.iter().zip(r.adversarial.iter().zip(&r.original)).all(|(d, (a, o))| (d - (a - o)).abs() < 1e-7));
    assert_eq!(r.original, x);
    assert_eq!(r.input_shape, vec![28, 28, 1]);
    assert!(r.gradients >= 1 && r.gradients <= 20);
    assert_eq!((r.settings.eps, r.settings.steps), (Some(0.2), 20), "eps reads as given");
    assert!(r.ms > 0.0);
    // The run's own check agrees with a plain run of the rounded image at the attacked width.
    s.set_width(b(8)).unwrap();
    assert_eq!(s.run(&r.adversarial, &now).unwrap().predicted, at8.adversarial.index);
}

#[test]
fn floats_are_kept_on_request_and_a_label_or_target_can_be_given() {
    let mut s = Session::load(MNIST, 1).unwrap();
    let now = clock();
    let x = digit(1); // a 2
    let mut req = pgd(0.25);
    req.round = false;
    let r = s.attack(&x, &req, &now).unwrap();
    assert_eq!(r.width, b(8), "the current width by default");
    assert!(r.adversarial.iter().any(|&v| (v * 255.0 - (v * 255.0).round()).abs() > 1e-3), "not rounded");
    let mut targeted = pgd(0.3);
    targeted.params.target = Some(3);
    targeted.label = Some(2);
    let r = s.attack(&x, &targeted, &now).unwrap();
    assert_eq!((r.label, r.target), (2, Some(3)));
    assert_eq!(r.success, r.predictions.iter().find(|p| p.width == b(8)).unwrap().adversarial.index == 3);
}

#[test]
fn every_attack_runs_to_a_report() {
    let mut s = Session::load(MNIST, 1).unwrap();
    let now = clock();
    for kind in AttackKind::ALL {
        let mut req = AttackRequest::new(kind);
        req.params.steps = Some(if kind == AttackKind::Fgsm { 1 } else { 3 });
        req.params.search_steps = Some(1);
        req.width = Some(b(2));
        let r = s.attack(&digit(2), &req, &now).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(r.attack, kind.name());
        assert_eq!(r.settings.eps.is_some(), kind.has_eps(), "{kind}");
        assert_eq!(s.width(), b(8));
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn bad_requests_are_typed_errors_and_leave_the_session_as_it_was() {
    let mut s = Session::load(MNIST, 1).unwrap();
    s.set_width(b(5)).unwrap();
    let now = clock();
    let x = digit(0);
    let with = |f: &dyn Fn(&mut AttackRequest)| {
        let mut r = pgd(0.1);
        f(&mut r);
        r
    };
    let invalid: Vec<(&str, AttackRequest)> = vec![
        ("eps", with(&|r| r.params.eps = Some(-0.1))),
        ("eps", with(&|r| r.params.eps = Some(f32::NAN))),
        ("eps", with(&|r| r.params.eps = Some(f32::INFINITY))),
        ("eps", with(&|r| r.params.eps = Some(1e9))),
        ("steps", with(&|r| r.params.steps = Some(0))),
        ("steps", with(&|r| r.params.steps = Some(1_000_000))),
        ("step size", with(&|r| r.params.step_size = Some(f32::NAN))),
        ("target class 10", with(&|r| r.params.target = Some(10))),
        ("label 10", with(&|r| r.label = Some(10))),
    ];
    for (what, req) in invalid {
        let e = s.attack_start(&x, &req, &now).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{what}: {e}");
        assert!(e.message().contains(what), "{what}: {e}");
        assert!(!s.attacking());
        assert_eq!(s.width(), b(5));
    }
    assert_eq!("pgd".parse::<AttackKind>().unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(s.attack_start(&x[..783], &pgd(0.1), &now).unwrap_err().kind(), ErrorKind::ShapeMismatch);
    let mut nan = x.clone();
    nan[5] = f32::NAN;
    assert_eq!(s.attack_start(&nan, &pgd(0.1), &now).unwrap_err().kind(), ErrorKind::BadValue);
    assert_eq!(s.attack_step(10.0, &now).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(s.attack_finish(&now).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(s.width(), b(5));
}

#[test]
fn a_width_the_loaded_planes_do_not_serve_is_refused() {
    let layout = anybit::format::Layout::read(MNIST).unwrap();
    let anybit::format::HeaderRead::Complete(layout) = layout else { panic!("complete header expected") };
    let mut s = Session::load_prefix(&MNIST[..layout.prefix_ends[2] as usize], 2, 1).unwrap();
    let now = clock();
    let mut req = pgd(0.1);
    req.width = Some(b(4));
    let e = s.attack_start(&digit(0), &req, &now).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsupportedWidth);
    assert!(e.message().contains("loaded widths are 1, 2"), "{e}");
    // The report lists the loaded widths only.
    req.width = Some(b(1));
    let r = s.attack(&digit(0), &req, &now).unwrap();
    assert_eq!(r.predictions.iter().map(|p| p.width).collect::<Vec<_>>(), vec![b(1), b(2)]);
    assert_eq!(s.width(), b(2));
}

#[test]
fn an_rgba_image_is_converted_as_run_image_converts_it() {
    let mut s = Session::load(MNIST, 1).unwrap();
    let now = clock();
    let x = digit(3);
    let rgba: Vec<u8> = MNIST_IMAGES[16 + 3 * 784..16 + 4 * 784].iter().flat_map(|&v| [v, v, v, 255]).collect();
    let mut req = AttackRequest::new(AttackKind::Fgsm);
    req.params.eps = Some(0.05);
    s.attack_start_image(&rgba, (28, 28), Default::default(), &req, &now).unwrap();
    let r = s.attack_finish(&now).unwrap();
    assert!(r.original.iter().zip(&x).all(|(a, b)| (a - b).abs() < 1e-6));
    // fit: mnist resamples, whose area weights sum to 1 only up to rounding: this drawn stroke
    // (a white bar on a 64x64 black canvas) came out at 1.0000001 before image.rs clamped, and
    // the attack refused it.
    let fit = anybit::image::ImageOptions { fit: anybit::image::Fit::Mnist, ..Default::default() };
    let side = 64;
    let mut over = vec![0u8; side * side * 4];
    for (i, px) in over.chunks_mut(4).enumerate() {
        let (r, c) = (i / side, i % side);
        let ink = if (12..51).contains(&r) && (32..35).contains(&c) { 255 } else { 0 };
        px.copy_from_slice(&[ink, ink, ink, 255]);
    }
    let fitted = s.image_input(&over, side, side, fit).unwrap();
    assert!(fitted.iter().all(|v| (0.0..=1.0).contains(v)), "max {}", fitted.iter().fold(0.0f32, |a, &b| a.max(b)));
    assert!(fitted.contains(&1.0), "the stroke reaches full white");
    s.attack_start_image(&over, (side, side), fit, &req, &now).unwrap();
    let r = s.attack_finish(&now).unwrap();
    assert!(r.original.iter().all(|v| (0.0..=1.0).contains(v)));
}
