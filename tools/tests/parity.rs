//! Export/runtime parity: the trainer's quantized forward pass (frozen BN, the runtime's own
//! quantizer functions) and the runtime running the exported `.anybit` file must agree at every
//! width: same predicted class on every fixture image, logits within a stated tolerance.

mod common;

use anybit_tools::net::Mode;
use anybit_tools::rng::Rng;
use anybit_tools::train::{self, TrainConfig, Trainer};
use anybit_tools::{evaluate, export};
use candle_core::{Device, Tensor};
use common::bits;


/// Logit tolerance: both sides compute the same quantized values; only the float summation
/// order of the convolutions and the folded affine (fma or not) differ. Relative to the largest
/// logit magnitude of the sample.
const TOL: f32 = 1e-3;

#[test]
fn runtime_matches_trainer_at_every_width() {
    parity_at_every_width(1);
}

/// The 1-bit width with 2-bit activations (W1A2): the file declares it and the runtime runs it.
#[test]
fn runtime_matches_trainer_with_two_bit_activations_at_one_bit() {
    parity_at_every_width(2);
}

fn parity_at_every_width(min_act_bits: u8) {
    let widths = bits(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let ds = common::fixture();
    let cfg = TrainConfig {
        dataset: "mnist".into(),
        arch: "c8,p,c16,p,c16,f10".into(),
        widths: bits(&[8, 4, 2, 1]),
        epochs: 6,
        batch: 25,
        lr: 3e-3,
        clip_init: 3.0,
        seed: 42,
        min_act_bits: bits(&[min_act_bits])[0],
        ..TrainConfig::default()
    };
    // A short run so BN statistics, clips and weights are not at their initial values.
    let mut t = Trainer::new(cfg, &ds).unwrap();
    t.run(None, usize::MAX, None).unwrap();
    train::fill_untrained(&t.net, &t.cfg.widths, &widths, &ds, 2, 25, 7).unwrap();
    let bytes = export::write(&t.net, "parity", &widths, None, vec![]).unwrap();
    let mut model = anybit::model::Model::from_bytes(&bytes).unwrap();
    let declared: Vec<(u8, u8)> = model.widths().iter().map(|w| (w.w.get(), w.a.get())).collect();
    let expected: Vec<(u8, u8)> = widths.iter().map(|w| (w.get(), w.get().max(min_act_bits))).collect();
    assert_eq!(declared, expected, "(weight, activation) bits the file declares");

    let x = Tensor::from_slice(&ds.images, (ds.len(), 28, 28, 1), &Device::Cpu).unwrap();
    let mut worst = 0f32;
    for &w in &widths {
        let ours = t.net.forward(&x, w, Mode::Eval).unwrap().to_vec2::<f32>().unwrap();
        model.set_width(w).unwrap();
        for i in 0..ds.len() {
            let theirs = model.run(ds.image(i)).unwrap();
            assert_eq!(theirs.len(), 10);
            let scale = ours[i].iter().fold(1f32, |m, v| m.max(v.abs()));
            let diff = ours[i].iter().zip(&theirs).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
            worst = worst.max(diff);
            assert!(diff <= TOL, "width {w} image {i}: relative logit difference {diff}\n ours {:?}\n runtime {theirs:?}", ours[i]);
            // Same class, unless the trainer's own top two are within the tolerance (a tie).
            let (a, b) = (evaluate::argmax(&ours[i]), evaluate::argmax(&theirs));
            if a != b {
                assert!((ours[i][a] - ours[i][b]).abs() <= TOL * scale, "width {w} image {i}: class {a} vs {b}");
            }
        }
    }
    eprintln!("worst relative logit difference over 8 widths x {} images: {worst:e}", ds.len());
}

#[test]
fn export_rejects_nothing_the_runtime_needs() {
    // The exported graph names every tensor the format requires at every width: the writer reads
    // its output back, so a missing tensor would fail here.
    let ds = common::fixture();
    let t = Trainer::new(
        TrainConfig {
            dataset: "mnist".into(),
            arch: "c4,p,c4,f10".into(),
            widths: bits(&[2]),
            epochs: 1,
            batch: 10,
            lr: 1e-3,
            clip_init: 3.0,
            seed: 1,
            ..TrainConfig::default()
        },
        &ds,
    )
    .unwrap();
    let (graph, codes, tensors) = export::build(&t.net, "x", &bits(&[2, 5]), None, vec![]).unwrap();
    assert_eq!(graph.widths.len(), 2);
    assert_eq!(codes.len() % 8, 0);
    // conv1 (fixed 8) + conv2 + fc, 2 widths: wscale+clip each, fc bias, 2 affines x (scale, bias).
    assert_eq!(tensors.len(), 2 * (3 * 2 + 1 + 2 * 2));
    let _ = Rng::new(0);
}
