//! The counterfactual fine-tuner (`anybit cf-train`) on a small random BERT folder and real
//! SemEval rows (tools/tests/fixtures/cf): every trained tensor moves in one step (candle's fused
//! LayerNorm and softmax have no backward pass and would silently cut the graph), the loss falls, a
//! checkpoint resumes exactly, and the exported file computes what the trainer computed.

use std::collections::HashMap;
use std::path::PathBuf;

use anybit::Bits;
use anybit_tools::cf::train::{bio_tags, export, CfConfig, Trainer};
use anybit_tools::cf::data::CharSpan;

mod common;
use common::root;
use common::tiny_bert::tiny_bert;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("anybit-cf-train-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(model: PathBuf, joint: bool) -> CfConfig {
    CfConfig {
        model,
        data: root().join("tools/tests/fixtures/cf"),
        joint,
        epochs: 50,
        batch: 8,
        lr: 3e-3,
        head_lr: 1e-2,
        weight_decay: 0.0,
        warmup: 0.0,
        distill: 0.5,
        seed: 7,
        max_tokens: 40,
        embed_bits: Bits::new(5).unwrap(),
    }
}

fn values(t: &Trainer) -> HashMap<String, Vec<f32>> {
    t.enc.vars().into_iter().map(|(n, v)| (n, v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())).collect()
}

#[test]
fn bio_tags_follow_the_character_spans() {
    // "If I had , I would" with [CLS]/[SEP] specials at (0, 0).
    let offsets = [(0, 0), (0, 2), (3, 4), (5, 8), (8, 9), (10, 11), (12, 17), (0, 0)];
    let tags = bio_tags(&offsets, CharSpan { start: 0, end: 7 }, Some(CharSpan { start: 10, end: 16 }));
    assert_eq!(tags, vec![0, 1, 2, 2, 0, 3, 4, 0]);
    let tags = bio_tags(&offsets, CharSpan { start: 3, end: 7 }, None);
    assert_eq!(tags, vec![0, 0, 1, 2, 0, 0, 0, 0]);
}

#[test]
fn one_step_moves_every_trained_tensor_and_the_loss_falls() {
    let dir = tmp("step");
    tiny_bert(&dir);
    let mut t = Trainer::new(config(dir.clone(), true)).unwrap();
    assert!(!t.splits.dev1.is_empty() && !t.splits.dev2.is_empty());
    let before = values(&t);
    // Both kinds of sentence: the training set holds subtask 1's, then subtask 2's.
    let n1 = t.splits.train1.len();
    let batch: Vec<usize> = (0..4).chain(n1..n1 + 4).collect();
    let first = t.train_step(&batch).unwrap();
    let after = values(&t);
    // This step trained width 8 and one lower width: their LayerNorm affines and every weight
    // must have moved; the other widths' affines must not.
    let moved = |n: &str| before[n] != after[n];
    for (name, _) in t.enc.vars() {
        let width = name.split('.').find_map(|p| p.strip_prefix('w').and_then(|b| b.parse::<u8>().ok()));
        match width {
            Some(8) => assert!(moved(&name), "{name} did not move"),
            Some(_) => {}
            None => assert!(moved(&name), "{name} did not move"),
        }
    }
    let lower: Vec<u8> = (1..8).filter(|b| moved(&format!("embed.ln.w{b}.weight"))).collect();
    assert_eq!(lower.len(), 1, "exactly one lower width trains per step, moved: {lower:?}");
    assert!((2..=7).contains(&lower[0]));
    // Larger steps than a fine-tune takes: Adam moves each value by about the rate per step.
    t.cfg.lr = 2e-2;
    t.cfg.head_lr = 5e-2;
    let mut last = first;
    for _ in 0..25 {
        last = t.train_step(&batch).unwrap();
    }
    assert!(last < 0.5 * first, "the loss on one repeated batch went from {first} to {last}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_checkpoint_resumes_exactly() {
    let dir = tmp("resume");
    tiny_bert(&dir);
    let ckpt = dir.join("ckpt");
    let mut a = Trainer::new(config(dir.clone(), true)).unwrap();
    a.train_step(&[0, 1, 2, 3]).unwrap();
    a.save(&ckpt, 1.0).unwrap();
    let mut b = Trainer::new(config(dir.clone(), true)).unwrap();
    assert_eq!(b.resume(&ckpt).unwrap(), 1.0);
    assert_eq!(values(&a), values(&b));
    // The same next step on both (the optimizer's moments came back too).
    a.train_step(&[4, 5, 6, 7]).unwrap();
    b.train_step(&[4, 5, 6, 7]).unwrap();
    assert_eq!(values(&a), values(&b));
    // Another configuration is refused with a message.
    let mut other = config(dir.clone(), false);
    other.seed = 8;
    let mut c = Trainer::new(other).unwrap();
    let err = c.resume(&ckpt).unwrap_err().to_string();
    assert!(err.contains("another configuration"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_exported_file_computes_what_the_trainer_computed() {
    let dir = tmp("export");
    tiny_bert(&dir);
    let mut t = Trainer::new(config(dir.clone(), true)).unwrap();
    for k in 0..6 {
        t.train_step(&[k, k + 8, k + 16, k + 24, k + 40, k + 60, k + 70, k + 75]).unwrap();
    }
    let folder = dir.join("finetuned");
    t.write_folder(&folder).unwrap();
    let (bytes, scores) = export(&folder, "cf-test", &t.cfg, &t.splits).unwrap();
    assert_eq!(scores.len(), 8);
    let mut model = anybit::Model::from_bytes(&bytes).unwrap();
    let graph = model.graph().clone();
    assert!(graph.task.is_some());
    assert_eq!(graph.eval.len(), 3);
    assert_eq!(graph.eval[0].metric.as_deref(), Some("f1"));
    let texts: Vec<&str> = t.splits.dev1.iter().map(|s| s.text.as_str()).take(4).collect();
    let ids: Vec<Vec<u32>> = texts.iter().map(|s| t.tokenizer.encode_with_max(s, 40).ids).collect();
    for b in [8u8, 4, 2] {
        let bits = Bits::new(b).unwrap();
        let ours = t.outputs(&ids, bits).unwrap();
        model.set_width(bits).unwrap();
        for (i, x) in ids.iter().enumerate() {
            let n = x.len();
            let out = model.run_tokens(x, &vec![0; n], &vec![1; n]).unwrap();
            let theirs = out.data();
            let dot: f64 = ours[i].iter().zip(theirs).map(|(a, b)| (*a as f64) * (*b as f64)).sum();
            let na: f64 = ours[i].iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
            let nb: f64 = theirs.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
            let cos = dot / (na * nb);
            // The runtime also quantizes each projection's input per token at 8 bits; the trainer
            // does not, which is all that should separate them.
            assert!(cos > 0.995, "width {b}, sentence {i}: trainer and runtime logits differ (cosine {cos})");
        }
    }
    // The stored thresholds are the ones the runtime's evaluation picked.
    let anybit::format::Task::Counterfactual { thresholds } = graph.task.clone().unwrap();
    assert_eq!(thresholds.len(), 8);
    std::fs::remove_dir_all(&dir).ok();
}
