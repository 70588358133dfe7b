//! The precision policy: calibration on a real model (shapes and bookkeeping, not speed: speed is
//! for benchmarks) and the width choice for budgets, on calibrations with known numbers.

use anybit::policy::{calibrate, decide, Budget, Calibration};
use anybit::{Bits, ErrorKind, Model};

const MNIST: &[u8] = include_bytes!("../../models/mnist.anybit");

fn b(n: u8) -> Bits {
    Bits::new(n).unwrap()
}

/// Per-width figures written with plain numbers.
fn per<T: Copy>(xs: &[(u8, T)]) -> Vec<(Bits, T)> {
    xs.iter().map(|&(w, x)| (b(w), x)).collect()
}

fn cal(gemm_ms: &[(u8, f64)], other_ms: f64) -> Calibration {
    Calibration {
        isa: "simd128".into(),
        threads: 1,
        gemm_ms: per(gemm_ms),
        other_ms,
        pass_ms: vec![],
        one_thread_ms: vec![],
        measured_ms: gemm_ms[0].1 + other_ms,
        measured_width: b(gemm_ms[0].0),
        took_ms: 1.0,
    }
}

/// 8 bits slowest and most accurate, 1 bit fastest and least accurate.
fn ladder() -> (Calibration, Vec<(Bits, f64)>, Vec<(Bits, u64)>) {
    let c = cal(&[(8, 4.0), (4, 3.0), (2, 2.0), (1, 1.0)], 0.5);
    let acc = per(&[(8, 0.992), (4, 0.991), (2, 0.990), (1, 0.988)]);
    let bytes = per(&[(8, 800), (4, 400), (2, 200), (1, 100)]);
    (c, acc, bytes)
}

#[test]
fn gemms_account_for_every_mac_at_every_width() {
    let model = Model::from_bytes(MNIST).unwrap();
    for w in model.widths().iter().map(|w| w.w) {
        let g = model.gemms(w).unwrap();
        assert!(!g.is_empty());
        assert_eq!(g.iter().map(|g| g.macs()).sum::<u64>(), model.macs(), "width {w}");
        // The any-precision layers run at the width; the first conv and last dense stay 8-bit.
        assert!(g.iter().any(|g| g.wbits == w && g.abits == w), "width {w}: {g:?}");
        assert_eq!((g[0].wbits, g.last().unwrap().wbits), (Bits::MAX, Bits::MAX));
    }
    assert_eq!(Bits::new(9).unwrap_err().kind(), ErrorKind::UnsupportedWidth);
}

#[test]
fn calibration_covers_every_width_and_leaves_the_width_alone() {
    let mut model = Model::from_bytes(MNIST).unwrap();
    model.set_width(b(4)).unwrap();
    // A clock that advances 0.5 ms per reading: deterministic, few calls per timing (debug builds
    // are slow), and available on wasm32 too (std::time::Instant is not).
    let clock = std::cell::Cell::new(0.0f64);
    let now = || {
        clock.set(clock.get() + 0.5);
        clock.get()
    };
    let c = calibrate(&mut model, &now, 2.0).unwrap();
    assert_eq!(model.width(), 4);
    assert_eq!(c.measured_width, 4);
    let widths: Vec<Bits> = model.widths().iter().map(|w| w.w).collect();
    assert_eq!(c.gemm_ms.iter().map(|x| x.0).collect::<Vec<_>>(), widths);
    for &(w, ms) in &c.gemm_ms {
        assert!(ms.is_finite() && ms > 0.0, "width {w}: {ms}");
        assert!(c.per_layer_ms(w).unwrap() >= ms);
    }
    // A whole file: every width has a measured pass, and that is its prediction.
    assert_eq!(c.pass_ms.iter().map(|x| x.0).collect::<Vec<_>>(), widths);
    for &(w, ms) in &c.pass_ms {
        assert_eq!(c.predict_ms(w), Some(ms));
    }
    assert_eq!(c.measured_ms, c.pass_ms.iter().find(|x| x.0 == 4).unwrap().1);
    assert!(c.other_ms >= 0.0 && c.measured_ms > 0.0 && c.took_ms >= c.measured_ms);
    assert!(Bits::new(9).is_err(), "a width outside 1..=8 cannot be asked for");
}

/// A progressive load with 2 planes: passes are measured for widths 1 and 2 only, the others get
/// the per-layer prediction (their planes are not there to run).
#[test]
fn calibration_of_a_prefix_predicts_the_missing_widths_per_layer() {
    let end = anybit::format::prefix_len(MNIST, 2).unwrap();
    let mut model = Model::from_prefix(&MNIST[..end], 2).unwrap();
    let clock = std::cell::Cell::new(0.0f64);
    let now = || {
        clock.set(clock.get() + 0.5);
        clock.get()
    };
    let c = calibrate(&mut model, &now, 1.0).unwrap();
    assert_eq!(c.pass_ms.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(model.width(), 2);
    assert_eq!(c.predict_ms(b(8)), c.per_layer_ms(b(8)));
    assert!(c.predict_ms(b(8)).unwrap() > 0.0);
}

#[test]
fn no_budget_takes_the_most_accurate_width() {
    let (c, acc, bytes) = ladder();
    let d = decide(&c, &Budget::default(), &acc, &bytes, &[]).unwrap();
    assert_eq!(d.width, 8);
    assert!(d.options.iter().all(|o| o.fits));
    assert!(d.reasons.iter().any(|r| r.contains("99.20%")), "{:?}", d.reasons);
}

#[test]
fn latency_budget_takes_the_most_accurate_width_that_fits() {
    let (c, acc, bytes) = ladder();
    // Predictions: 8 -> 4.5, 4 -> 3.5, 2 -> 2.5, 1 -> 1.5 ms.
    let d = decide(&c, &Budget { latency_ms: Some(3.0), ..Budget::default() }, &acc, &bytes, &[]).unwrap();
    assert_eq!(d.width, 2);
    let fits: Vec<(u8, bool)> = d.options.iter().map(|o| (o.width.get(), o.fits)).collect();
    assert_eq!(fits, vec![(8, false), (4, false), (2, true), (1, true)]);
    assert!(d.reasons.iter().any(|r| r.contains("widths 8, 4 are predicted slower")), "{:?}", d.reasons);
    // A slower device (every kernel 3x slower) gets a strictly lower width for the same budget.
    let slow = cal(&[(8, 12.0), (4, 9.0), (2, 6.0), (1, 3.0)], 1.5);
    let d2 = decide(&slow, &Budget { latency_ms: Some(3.0), ..Budget::default() }, &acc, &bytes, &[]).unwrap();
    assert!(d2.width < d.width);
}

#[test]
fn when_nothing_fits_the_fastest_width_is_taken_and_said() {
    let (c, acc, bytes) = ladder();
    let d = decide(&c, &Budget { latency_ms: Some(0.1), ..Budget::default() }, &acc, &bytes, &[]).unwrap();
    assert_eq!(d.width, 1);
    assert!(d.reasons.iter().any(|r| r.starts_with("no width fits")), "{:?}", d.reasons);
    // Within 10% of the fastest counts as equally fast: the narrowest of those is taken; a wider
    // width clearly faster still wins.
    let close = cal(&[(8, 2.0), (4, 2.05), (2, 2.15), (1, 3.0)], 0.0);
    let d = decide(&close, &Budget { latency_ms: Some(0.1), ..Budget::default() }, &acc, &bytes, &[]).unwrap();
    assert_eq!(d.width, 2);
    let clear = cal(&[(8, 2.0), (4, 2.5), (2, 2.6), (1, 3.0)], 0.0);
    assert_eq!(decide(&clear, &Budget { latency_ms: Some(0.1), ..Budget::default() }, &acc, &bytes, &[]).unwrap().width, 8);
}

#[test]
fn data_budget_limits_the_planes_downloaded() {
    let (c, acc, bytes) = ladder();
    let d = decide(&c, &Budget { max_bytes: Some(250), ..Budget::default() }, &acc, &bytes, &[]).unwrap();
    assert_eq!(d.width, 2);
    assert!(d.reasons.iter().any(|r| r.contains("250-byte data budget")));
}

#[test]
fn memory_cap_limits_the_width() {
    let (c, acc, bytes) = ladder();
    let memory = per(&[(8, 2000), (4, 1500), (2, 1250), (1, 1125)]);
    let cap = |m| Budget { max_memory_bytes: Some(m), ..Budget::default() };
    let d = decide(&c, &cap(1400), &acc, &bytes, &memory).unwrap();
    assert_eq!(d.width, 2);
    assert_eq!(d.options.iter().map(|o| o.memory_bytes).collect::<Vec<_>>(), vec![Some(2000), Some(1500), Some(1250), Some(1125)]);
    assert!(d.reasons.iter().any(|r| r.contains("widths 8, 4 need more than the 1400-byte memory cap")), "{:?}", d.reasons);
    assert_eq!(decide(&c, &cap(2000), &acc, &bytes, &memory).unwrap().width, 8);
    // Below every width: nothing fits, the fastest is taken and the reasons say so.
    let d = decide(&c, &cap(100), &acc, &bytes, &memory).unwrap();
    assert_eq!(d.width, 1);
    assert!(d.reasons.iter().any(|r| r.starts_with("no width fits")), "{:?}", d.reasons);
}

#[test]
fn one_thread_is_chosen_where_more_do_not_pay() {
    let (c, acc, bytes) = ladder();
    // Two threads; passes at 8 bits: 4.5 ms on two, 8.0 on one (threads pay); at 1 bit: 1.5 on
    // two, 1.6 on one (within 10%: one thread).
    let two = Calibration {
        threads: 2,
        pass_ms: per(&[(8, 4.5), (4, 3.5), (2, 2.5), (1, 1.5)]),
        one_thread_ms: per(&[(8, 8.0), (4, 6.0), (2, 2.6), (1, 1.6)]),
        ..c.clone()
    };
    let d = decide(&two, &Budget::default(), &acc, &bytes, &[]).unwrap();
    assert_eq!((d.width.get(), d.threads), (8, 2));
    let by_width: Vec<(u8, usize, f64)> = d.options.iter().map(|o| (o.width.get(), o.threads, o.predicted_ms)).collect();
    assert_eq!(by_width, vec![(8, 2, 4.5), (4, 2, 3.5), (2, 1, 2.6), (1, 1, 1.6)]);
    assert!(d.reasons.iter().any(|r| r.starts_with("2 threads: predicted 4.50 ms at 8 bits against 8.00 ms")), "{:?}", d.reasons);
    let d = decide(&two, &Budget { latency_ms: Some(3.0), ..Budget::default() }, &acc, &bytes, &[]).unwrap();
    assert_eq!((d.width.get(), d.threads), (2, 1));
    assert!(d.reasons.iter().any(|r| r.starts_with("1 thread: at 2 bits 2 threads are predicted 2.50 ms against 2.60 ms on one")), "{:?}", d.reasons);
    // A one-thread calibration has nothing to compare: the model's count, no thread reason.
    let d = decide(&c, &Budget::default(), &acc, &bytes, &[]).unwrap();
    assert_eq!(d.threads, 1);
    assert!(!d.reasons.iter().any(|r| r.contains("on one")), "{:?}", d.reasons);
}

#[test]
fn accuracy_outranks_width_and_missing_accuracy_prefers_wider() {
    let c = cal(&[(8, 4.0), (4, 3.0), (2, 2.0)], 0.0);
    // Width 4 stored as more accurate than 8 (it happens): it wins with no budget.
    let d = decide(&c, &Budget::default(), &per(&[(8, 0.990), (4, 0.993), (2, 0.980)]), &[], &[]).unwrap();
    assert_eq!(d.width, 4);
    // No stored accuracy: the widest width that fits.
    let d = decide(&c, &Budget { latency_ms: Some(3.5), ..Budget::default() }, &[], &[], &[]).unwrap();
    assert_eq!(d.width, 4);
}

#[test]
fn bad_budgets_are_typed_errors() {
    let (c, acc, bytes) = ladder();
    for ms in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = decide(&c, &Budget { latency_ms: Some(ms), ..Budget::default() }, &acc, &bytes, &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{ms}");
    }
    let empty = Calibration { gemm_ms: vec![], ..c };
    assert_eq!(decide(&empty, &Budget::default(), &acc, &bytes, &[]).unwrap_err().kind(), ErrorKind::InvalidArgument);
}

#[test]
fn budget_keys_are_checked() {
    let b: Budget = serde_json::from_str(r#"{"latencyMs": 3, "maxBytes": 100}"#).unwrap();
    assert_eq!((b.latency_ms, b.max_bytes), (Some(3.0), Some(100)));
    assert!(serde_json::from_str::<Budget>(r#"{"latency": 3}"#).is_err());
}

#[test]
fn typical_latency_is_a_mean_that_one_stall_does_not_move() {
    use anybit::policy::typical_ms;
    // Fifty 1 ms passes and one 70 ms stall: the plain mean doubles, the typical figure stays.
    let mut xs = vec![1.0; 50];
    xs[20] = 70.0;
    assert!(anybit::policy::mean(&xs) > 2.3);
    assert!((typical_ms(&xs) - 1.0).abs() < 1e-9, "{}", typical_ms(&xs));
    // A CPU in slices: one pass in six absorbs a long pause, all through the run. Means see it
    // (the typical figure is near the 6x mean), where a median of passes would read 1 ms.
    let sliced: Vec<f64> = (0..60).map(|i| if i % 6 == 5 { 31.0 } else { 1.0 }).collect();
    assert!((typical_ms(&sliced) - 6.0).abs() < 0.6, "{}", typical_ms(&sliced));
    // Fewer passes than groups: the plain mean.
    assert_eq!(typical_ms(&[1.0, 3.0]), 2.0);
    assert!(typical_ms(&[]).is_nan());
}
