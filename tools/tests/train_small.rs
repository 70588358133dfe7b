//! A tiny training run on the committed fixture: the loss must fall, and a run interrupted by a
//! checkpoint must resume where it stopped; trainer options are checked.

mod common;

use anybit::Bits;
use anybit_tools::cli::Cli;
use anybit_tools::train::{TrainConfig, Trainer};
use clap::Parser;
use common::bits;

fn cfg(widths: &[u8]) -> TrainConfig {
    TrainConfig {
        dataset: "mnist".into(),
        arch: "c8,p,c16,p,c16,f10".into(),
        widths: bits(widths),
        epochs: 16,
        batch: 20,
        lr: 3e-3,
        clip_init: 3.0,
        seed: 5,
        ..TrainConfig::default()
    }
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len() as f32
}

#[test]
fn joint_training_loss_falls() {
    let ds = common::fixture();
    let mut t = Trainer::new(cfg(&[8, 4, 2, 1]), &ds).unwrap();
    // The joint loss sums four widths' terms and the distillation terms keep the teacher's
    // entropy, so it falls more slowly than a single cross-entropy: measured 0.75x after 40
    // steps; a broken gradient leaves it near 1x.
    let losses = t.run(None, usize::MAX, Some(80)).unwrap();
    let (first, last) = (mean(&losses[..5]), mean(&losses[75..]));
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(last < 0.8 * first, "loss {first} -> {last}");
}

#[test]
fn checkpoint_resumes_mid_epoch() {
    let ds = common::fixture();
    let dir = std::env::temp_dir().join(format!("anybit-ckpt-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut whole = Trainer::new(cfg(&[8, 2]), &ds).unwrap();
    let all = whole.run(None, usize::MAX, Some(13)).unwrap();
    let mut a = Trainer::new(cfg(&[8, 2]), &ds).unwrap();
    a.run(Some(&dir), 1000, Some(7)).unwrap();
    let mut b = Trainer::new(cfg(&[8, 2]), &ds).unwrap();
    b.resume(&dir).unwrap();
    assert_eq!(b.step, 7);
    let rest = b.run(Some(&dir), 1000, Some(6)).unwrap();
    // Same batches, same parameters and optimizer state: the losses agree up to the order of
    // parallel float reductions.
    for (x, y) in all[7..].iter().zip(&rest) {
        assert!((x - y).abs() <= 1e-3 * x.abs().max(1.0), "{:?} vs {:?}", &all[7..], rest);
    }
    // A checkpoint of another configuration is refused.
    let mut other = Trainer::new(cfg(&[8]), &ds).unwrap();
    assert!(other.resume(&dir).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn wavelet_path_trains_and_is_kept_out_of_the_file() {
    let ds = common::fixture();
    let mut c = cfg(&[8, 2, 1]);
    c.wavelet_widths = bits(&[2, 1]);
    c.epochs = 16;
    let mut t = Trainer::new(c, &ds).unwrap();
    let losses = t.run(None, usize::MAX, Some(80)).unwrap();
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(mean(&losses[75..]) < 0.8 * mean(&losses[..5]), "{losses:?}");
    // The runtime cannot run wavelet widths: exporting one is refused, the others export.
    assert!(anybit_tools::export::write(&t.net, "w", &bits(&[8, 2]), None, vec![]).is_err());
    let bytes = anybit_tools::export::write(&t.net, "w", &bits(&[8, 4]), None, vec![]).unwrap();
    assert!(anybit::model::Model::from_bytes(&bytes).is_ok());
}

#[test]
fn init_starts_joint_training_from_a_dedicated_run() {
    use anybit_tools::net::Mode;
    use candle_core::{Device, Tensor};
    let ds = common::fixture();
    let dir = std::env::temp_dir().join(format!("anybit-init-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut src = Trainer::new(cfg(&[8]), &ds).unwrap();
    src.run(Some(&dir), 1000, Some(60)).unwrap();

    let mut c = cfg(&[8, 2]);
    c.init = Some(dir.display().to_string());
    let mut t = Trainer::new(c, &ds).unwrap();
    assert_eq!(t.init_from(&dir).unwrap(), bits(&[8]));
    assert_eq!(t.step, 0, "a fresh schedule");
    // Width 8 is the source's model exactly; width 2 starts from width 8's BN and clips.
    let x = Tensor::from_slice(&ds.images[..10 * 784], (10, 28, 28, 1), &Device::Cpu).unwrap();
    let ours = t.net.forward(&x, Bits::MAX, Mode::Eval).unwrap().to_vec2::<f32>().unwrap();
    let theirs = src.net.forward(&x, Bits::MAX, Mode::Eval).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(ours, theirs);
    for q in t.net.qlayers().filter(|q| q.fixed_clip.is_none()) {
        assert_eq!(q.clip_value(bits(&[2])[0]).unwrap(), q.clip_value(Bits::MAX).unwrap(), "{}", q.name);
    }
    // The start shows in the loss: the first joint steps from the trained weights are far below
    // those of a run from random weights.
    let from_init = t.run(None, usize::MAX, Some(3)).unwrap();
    let fresh = Trainer::new(cfg(&[8, 2]), &ds).unwrap().run(None, usize::MAX, Some(3)).unwrap();
    assert!(mean(&from_init) < 0.7 * mean(&fresh), "{from_init:?} vs fresh {fresh:?}");
    // Another architecture cannot start from it.
    let mut other = cfg(&[8, 2]);
    other.arch = "c8,p,c8,f10".into();
    let err = Trainer::new(other, &ds).unwrap().init_from(&dir).unwrap_err().to_string();
    assert!(err.contains("c8,p,c16,p,c16,f10"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn minimum_activation_bits_raise_only_the_narrow_widths_and_are_checked() {
    let ds = common::fixture();
    let t = Trainer::new(TrainConfig { min_act_bits: bits(&[2])[0], ..cfg(&[8, 2, 1]) }, &ds).unwrap();
    assert_eq!(t.net.act_bits.map(Bits::get), [2, 2, 3, 4, 5, 6, 7, 8]);
    // Out of range it never reaches the trainer: `Bits` cannot hold it and the CLI refuses it.
    for bad in ["0", "9"] {
        let err = Cli::try_parse_from(["anybit", "train", "--min-act-bits", bad]).expect_err("out of range");
        assert!(err.to_string().contains("must be in 1..=8"), "{err}");
    }
}
