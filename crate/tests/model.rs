//! The model executor: graph wiring (residual branches, value lifetimes), width switching without
//! reloading, and typed errors for inputs and graphs that do not fit.

use anybit::format::{
    self, width_tensor, F32Tensor, Graph, Node, Op, Precision, QuantWeight, Width, FORMAT_NAME, FORMAT_VERSION,
};
use anybit::layers::{Add, Affine, Context, Conv2d, Dense, Flatten, Layer, Pool, PoolKind, QuantWeights, WidthParams};
use anybit::{Bits, ErrorKind, Model, Tensor};
use std::collections::BTreeMap;

mod common;
use common::Rng;

const WIDTHS: [u8; 4] = [8, 4, 2, 1];

fn b(n: u8) -> Bits {
    Bits::new(n).unwrap()
}

fn qw(shape: Vec<usize>, code_offset: usize, precision: Precision, bias: bool) -> QuantWeight {
    QuantWeight { shape, code_offset, precision, bias }
}

/// input [6,6,1] -> conv1 (8-bit) -> bn1 -> conv2 -> bn2 -> add(bn1, bn2) -> maxpool -> flatten -> fc
fn graph() -> Graph {
    let node = |name: &str, inputs: &[&str], op| Node { name: name.into(), inputs: inputs.iter().map(|s| s.to_string()).collect(), op };
    let conv = |weight| Op::Conv2d { weight, stride: [1, 1], padding: [1; 4], dilation: [1, 1], groups: 1 };
    Graph {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        name: "wiring-test".into(),
        input_shape: vec![6, 6, 1],
        text: None,
        labels: Some(vec!["a".into(), "b".into(), "c".into()]),
        widths: WIDTHS.iter().map(|&n| Width::new(n, n).unwrap()).collect(),
        nodes: vec![
            node("conv1", &["input"], conv(qw(vec![4, 3, 3, 1], 0, Precision::Fixed8, false))),
            node("bn1", &["conv1"], Op::Affine),
            node("conv2", &["bn1"], conv(qw(vec![4, 3, 3, 4], 40, Precision::Model, false))),
            node("bn2", &["conv2"], Op::Affine),
            node("res", &["bn1", "bn2"], Op::Add),
            node("pool", &["res"], Op::MaxPool { kernel: [2, 2], stride: [2, 2], padding: [0; 4] }),
            node("flat", &["pool"], Op::Flatten),
            node("fc", &["flat"], Op::Dense { weight: qw(vec![3, 36], 184, Precision::Fixed8, true) }),
        ],
        task: None,
        eval: vec![],
        sha256: None,
    }
}

struct Fixture {
    graph: Graph,
    codes: Vec<u8>,
    tensors: BTreeMap<String, F32Tensor>,
}

fn fixture(seed: u64) -> Fixture {
    let mut rng = Rng(seed);
    let graph = graph();
    let codes: Vec<u8> = (0..184 + 108 + 4).map(|_| rng.next() as u8).collect();
    let mut tensors = BTreeMap::new();
    let mut put = |name: String, data: Vec<f32>| {
        tensors.insert(name, F32Tensor { shape: vec![data.len()], data });
    };
    for b in WIDTHS.map(b) {
        for (node, outputs) in [("conv1", 4), ("conv2", 4), ("fc", 3)] {
            put(width_tensor(node, b, "wscale"), vec![rng.f32(0.05, 0.3)]);
            put(width_tensor(node, b, "clip"), vec![rng.f32(0.5, 2.0)]);
            if node == "fc" {
                put(width_tensor(node, b, "bias"), (0..outputs).map(|_| rng.f32(-0.5, 0.5)).collect());
            }
        }
        for bn in ["bn1", "bn2"] {
            put(width_tensor(bn, b, "scale"), (0..4).map(|_| rng.f32(0.5, 1.5)).collect());
            put(width_tensor(bn, b, "bias"), (0..4).map(|_| rng.f32(-0.2, 0.5)).collect());
        }
    }
    Fixture { graph, codes, tensors }
}

fn bytes(f: &Fixture) -> Vec<u8> {
    format::write(&f.graph, &f.codes, &f.tensors).unwrap()
}

/// The same network assembled by hand from the layer structs.
fn by_hand(f: &Fixture, width_index: usize, x: &[f32]) -> Vec<f32> {
    let t = |name: &str, b: Bits, s: &str| f.tensors[&width_tensor(name, b, s)].data.clone();
    let params = |name: &str, bias: bool| -> Vec<WidthParams> {
        WIDTHS
            .iter()
            .map(|&n| b(n))
            .map(|b| WidthParams { wscale: t(name, b, "wscale")[0], clip: t(name, b, "clip")[0], bias: bias.then(|| t(name, b, "bias")), row_scales: None })
            .collect()
    };
    let width = Width::new(WIDTHS[width_index], WIDTHS[width_index]).unwrap();
    let mut conv1 = Conv2d::new(QuantWeights::new("conv1", f.codes[0..36].to_vec(), 1, 4, 9, Precision::Fixed8, params("conv1", false)).unwrap(), [3, 3], [1, 1], [1; 4], [1, 1], 1).unwrap();
    let mut conv2 = Conv2d::new(QuantWeights::new("conv2", f.codes[40..184].to_vec(), 1, 4, 36, Precision::Model, params("conv2", false)).unwrap(), [3, 3], [1, 1], [1; 4], [1, 1], 4).unwrap();
    let mut fc = Dense::new(QuantWeights::new("fc", f.codes[184..292].to_vec(), 1, 3, 36, Precision::Fixed8, params("fc", true)).unwrap()).unwrap();
    let affine = |name: &str| Affine::new(name, WIDTHS.map(b).iter().map(|&b| (t(name, b, "scale"), t(name, b, "bias"))).collect()).unwrap();
    let (mut bn1, mut bn2) = (affine("bn1"), affine("bn2"));
    for l in [&mut conv1 as &mut dyn Layer, &mut conv2, &mut fc, &mut bn1, &mut bn2] {
        l.set_width(width_index, width).unwrap();
    }
    let mut ctx = Context::default();
    let x = Tensor::new(vec![6, 6, 1], x.to_vec()).unwrap();
    let a = bn1.forward(&[&conv1.forward(&[&x], &mut ctx).unwrap()], &mut ctx).unwrap();
    let b = bn2.forward(&[&conv2.forward(&[&a], &mut ctx).unwrap()], &mut ctx).unwrap();
    let r = Add { name: "res".into() }.forward(&[&a, &b], &mut ctx).unwrap();
    let p = Pool { name: "pool".into(), kind: PoolKind::Max, kernel: [2, 2], stride: [2, 2], padding: [0; 4] }.forward(&[&r], &mut ctx).unwrap();
    let flat = Flatten { name: "flat".into() }.forward(&[&p], &mut ctx).unwrap();
    fc.forward(&[&flat], &mut ctx).unwrap().into_data()
}

fn input(seed: u64) -> Vec<f32> {
    let mut rng = Rng(seed);
    (0..36).map(|_| rng.f32(0.0, 1.0)).collect()
}

#[test]
fn model_equals_the_layers_wired_by_hand_at_every_width() {
    let f = fixture(1);
    let mut model = Model::from_bytes(&bytes(&f)).unwrap();
    assert_eq!(model.width(), 8, "a model starts at its highest width");
    assert_eq!(model.input_shape(), &[6, 6, 1]);
    assert_eq!(model.output_shape(), &[3]);
    assert_eq!(model.labels().unwrap().len(), 3);
    assert_eq!(model.macs(), 36 * 4 * 9 + 36 * 4 * 36 + 3 * 36);
    for (i, &w) in WIDTHS.iter().enumerate() {
        model.set_width(b(w)).unwrap();
        for s in 0..3 {
            let x = input(100 + s);
            assert_eq!(model.run(&x).unwrap(), by_hand(&f, i, &x), "width {w}");
        }
    }
}

#[test]
fn switching_width_is_reversible_without_reloading() {
    let f = fixture(2);
    let mut model = Model::from_bytes(&bytes(&f)).unwrap();
    let x = input(7);
    let at8 = model.run(&x).unwrap();
    model.set_width(b(1)).unwrap();
    let at1 = model.run(&x).unwrap();
    assert_ne!(at8, at1, "1-bit weights must change the logits");
    model.set_width(b(8)).unwrap();
    assert_eq!(model.run(&x).unwrap(), at8);
}

#[test]
fn bad_inputs_and_widths_are_typed_errors() {
    let mut model = Model::from_bytes(&bytes(&fixture(3))).unwrap();
    assert_eq!(model.run(&[0.0; 35]).unwrap_err().kind(), ErrorKind::ShapeMismatch);
    assert_eq!(model.run(&[]).unwrap_err().kind(), ErrorKind::ShapeMismatch);
    let mut x = input(1);
    x[5] = f32::NAN;
    assert_eq!(model.run(&x).unwrap_err().kind(), ErrorKind::BadValue);
    assert_eq!(model.set_width(b(3)).unwrap_err().kind(), ErrorKind::UnsupportedWidth);
    assert_eq!(Bits::new(0).unwrap_err().kind(), ErrorKind::UnsupportedWidth);
    assert_eq!(Bits::new(9).unwrap_err().kind(), ErrorKind::UnsupportedWidth);
    assert_eq!(model.width(), 8, "a failed switch keeps the old width");
}

/// Progressive loading: a prefix with p planes runs exactly the widths up to p, each with the
/// outputs of the whole file (the fixed 8-bit layers are whole in every prefix), and refuses to
/// switch above p.
#[test]
fn a_prefix_runs_its_widths_exactly_and_refuses_wider_ones() {
    let f = fixture(3);
    let b = bytes(&f);
    let mut whole = Model::from_bytes(&b).unwrap();
    let x = input(7);
    let widths: Vec<Bits> = f.graph.widths.iter().map(|w| w.w).collect();
    let narrowest = *widths.iter().min().unwrap();
    for planes in 1..=8u8 {
        let end = format::prefix_len(&b, planes).unwrap();
        let built = Model::from_prefix(&b[..end], planes);
        if narrowest.get() > planes {
            assert_eq!(built.err().unwrap().kind(), ErrorKind::Truncated, "{planes} planes");
            continue;
        }
        let mut m = built.unwrap();
        let loaded: Vec<Bits> = widths.iter().copied().filter(|&w| w.get() <= planes).collect();
        assert_eq!((m.planes_loaded(), m.loaded_widths()), (planes, loaded.clone()));
        assert_eq!(m.width(), *loaded.iter().max().unwrap());
        for &w in &loaded {
            m.set_width(w).unwrap();
            whole.set_width(w).unwrap();
            assert_eq!(m.run(&x).unwrap(), whole.run(&x).unwrap(), "{planes} planes, width {w}");
        }
        for &w in widths.iter().filter(|&&w| w.get() > planes) {
            let e = m.set_width(w).unwrap_err();
            assert!(e.kind() == ErrorKind::Truncated && e.message().contains("planes"), "{e}");
        }
    }
}

#[test]
fn graphs_whose_shapes_do_not_chain_are_rejected_at_load() {
    // conv2 declared for 3 input channels while conv1 produces 4.
    let mut f = fixture(4);
    if let Op::Conv2d { weight, .. } = &mut f.graph.nodes[2].op {
        weight.shape = vec![4, 3, 3, 3];
    }
    f.graph.nodes[7].op = Op::Dense { weight: qw(vec![3, 36], 184, Precision::Fixed8, true) };
    let err = format::write(&f.graph, &f.codes, &f.tensors).and_then(|b| Model::from_bytes(&b)).err().unwrap();
    assert!(matches!(err.kind(), ErrorKind::ShapeMismatch | ErrorKind::BadGraph | ErrorKind::BadLayout), "{err}");

    // A residual add of two different shapes.
    let mut f = fixture(5);
    f.graph.nodes[4].inputs = vec!["bn1".into(), "pool".into()];
    let err = format::write(&f.graph, &f.codes, &f.tensors).and_then(|b| Model::from_bytes(&b)).err().unwrap();
    assert!(matches!(err.kind(), ErrorKind::BadGraph | ErrorKind::ShapeMismatch), "{err}");

    // The dense layer expecting more inputs than the flatten gives.
    let mut f = fixture(6);
    f.graph.input_shape = vec![8, 8, 1];
    let err = Model::from_bytes(&bytes(&f)).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::ShapeMismatch, "{err}");
}
