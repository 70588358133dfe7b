//! Shared by the format tests: a small real-layered fixture model, a deterministic PRNG, and
//! helpers that take a valid file apart and put it back together with one thing changed
//! (independently of the crate's writer, so hostile layouts can be built).
#![allow(dead_code)]

use std::collections::BTreeMap;

use anybit::format::{self, F32Tensor, Graph, Node, Op, Precision, QuantWeight, Width};
use serde_json::{json, Map, Value};

/// splitmix64: enough randomness for test data, no dependency.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform in [lo, hi).
    pub fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

fn qw(shape: &[usize], code_offset: usize, precision: Precision, bias: bool) -> QuantWeight {
    QuantWeight { shape: shape.to_vec(), code_offset, precision, bias }
}

fn node(name: &str, inputs: &[&str], op: Op) -> Node {
    Node { name: name.into(), inputs: inputs.iter().map(|s| s.to_string()).collect(), op }
}

/// conv (bias) -> affine -> relu -> maxpool -> depthwise conv -> add (residual) -> global pool
/// -> dense (bias) -> softmax, on 8x8x1 inputs, at widths 8, 4, 2 (8-bit activations) and 1.
/// Codes: conv1 [0, 36), dw [40, 76), fc [80, 92): gaps where offsets round up to 8.
pub fn graph() -> Graph {
    let conv = |shape: &[usize], off, prec, bias, groups| Op::Conv2d {
        weight: qw(shape, off, prec, bias),
        stride: [1, 1],
        padding: [1, 1, 1, 1],
        dilation: [1, 1],
        groups,
    };
    Graph {
        format: "anybit".into(),
        version: 1,
        name: "tiny".into(),
        input_shape: vec![8, 8, 1],
        text: None,
        labels: Some(vec!["a".into(), "b".into(), "c".into()]),
        widths: vec![
            Width::new(8, 8).unwrap(),
            Width::new(4, 4).unwrap(),
            Width::new(2, 8).unwrap(),
            Width::new(1, 1).unwrap(),
        ],
        nodes: vec![
            node("conv1", &["input"], conv(&[4, 3, 3, 1], 0, Precision::Fixed8, true, 1)),
            node("bn1", &["conv1"], Op::Affine),
            node("relu1", &["bn1"], Op::Relu),
            node(
                "pool1",
                &["relu1"],
                Op::MaxPool { kernel: [2, 2], stride: [2, 2], padding: [0; 4] },
            ),
            node("block.dw", &["pool1"], conv(&[4, 3, 3, 1], 40, Precision::Model, false, 4)),
            node("add", &["pool1", "block.dw"], Op::Add),
            node("gap", &["add"], Op::GlobalAvgPool),
            node("fc", &["gap"], Op::Dense { weight: qw(&[3, 4], 80, Precision::Fixed8, true) }),
            node("prob", &["fc"], Op::Softmax),
        ],
        task: None,
        eval: vec![],
        sha256: None,
    }
}

/// Flat codes of `graph()`: random in the layers, 0 in the gaps and the padding to 96.
pub fn codes(seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut c = vec![0u8; 96];
    for r in [0..36, 40..76, 80..92] {
        for i in r {
            c[i] = rng.next() as u8;
        }
    }
    c
}

pub fn tensors(g: &Graph, seed: u64) -> BTreeMap<String, F32Tensor> {
    let mut rng = Rng(seed);
    let mut t = BTreeMap::new();
    let mut put = |name: String, shape: Vec<usize>, data: Vec<f32>| {
        t.insert(name, F32Tensor { shape, data });
    };
    for n in &g.nodes {
        for w in &g.widths {
            let name = |s: &str| format::width_tensor(&n.name, w.w, s);
            match &n.op {
                Op::Conv2d { weight, .. } | Op::Dense { weight } => {
                    put(name("wscale"), vec![1], vec![rng.f32(0.01, 1.0)]);
                    put(name("clip"), vec![1], vec![rng.f32(0.5, 6.0)]);
                    if weight.bias {
                        let out = weight.shape[0];
                        put(
                            name("bias"),
                            vec![out],
                            (0..out).map(|_| rng.f32(-1.0, 1.0)).collect(),
                        );
                    }
                }
                Op::Affine => {
                    put(name("scale"), vec![4], (0..4).map(|_| rng.f32(0.5, 2.0)).collect());
                    put(name("bias"), vec![4], (0..4).map(|_| rng.f32(-1.0, 1.0)).collect());
                }
                _ => {}
            }
        }
    }
    t
}

/// The graph as a file stores it: version 2, `model` layers packed in the planes (block.dw at 0),
/// fixed 8-bit ones in the fixed8 tensor (conv1 at 0, fc at 40).
pub fn stored_graph() -> Graph {
    let mut g = graph();
    g.version = format::version_needed(&g);
    for (node, off) in [(0, 0), (4, 0), (7, 40)] {
        match &mut g.nodes[node].op {
            Op::Conv2d { weight, .. } | Op::Dense { weight } => weight.code_offset = off,
            _ => unreachable!(),
        }
    }
    g
}

/// The planes' code sequence of `stored_graph()` for `codes(seed)`: block.dw padded to 40.
pub fn plane_codes(codes: &[u8]) -> Vec<u8> {
    [&codes[40..76], &[0u8; 4][..]].concat()
}

/// The fixed8 tensor of `stored_graph()`: conv1, padding to 40, fc.
pub fn fixed_codes(codes: &[u8]) -> Vec<u8> {
    [&codes[0..36], &[0u8; 4][..], &codes[80..92]].concat()
}

/// Every quantized layer's codes, in node order, as a file holds them.
pub fn file_layers(m: &format::ModelFile) -> Vec<Vec<u8>> {
    m.graph()
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Conv2d { weight, .. } | Op::Dense { weight } => Some(m.layer_codes(weight).unwrap().to_vec()),
            _ => None,
        })
        .collect()
}

/// The same from `graph()`'s flat sequence.
pub fn given_layers(codes: &[u8]) -> Vec<Vec<u8>> {
    vec![codes[0..36].to_vec(), codes[40..76].to_vec(), codes[80..92].to_vec()]
}

/// A valid fixture file, as the writer makes it (with SHA-256 digests of its data).
pub fn signed_file() -> Vec<u8> {
    let g = graph();
    format::write(&g, &codes(1), &tensors(&g, 2)).expect("fixture must be valid")
}

/// The fixture without digests (also valid: digests are optional). The structural tests edit
/// this one, so each edit meets the check it is aimed at rather than the digest check first.
pub fn file() -> Vec<u8> {
    let mut p = split(&signed_file());
    let mut g = p.graph();
    g.as_object_mut().expect("graph is an object").remove("sha256");
    p.set_graph(&g);
    p.join()
}

/// One tensor of a container, in file order.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<Value>,
    pub data: Vec<u8>,
}

/// The parts of a container: its `__metadata__` object and its tensors in offset order.
pub struct Parts {
    pub metadata: Map<String, Value>,
    pub entries: Vec<Entry>,
}

/// Splits a container with plain JSON handling (not the crate under test).
pub fn split(bytes: &[u8]) -> Parts {
    let (header, data) = raw_split(bytes);
    let mut metadata = Map::new();
    let mut entries = Vec::new();
    for (k, v) in header {
        if k == "__metadata__" {
            metadata = v.as_object().unwrap().clone();
            continue;
        }
        let off = v["data_offsets"].as_array().unwrap();
        let (s, e) = (off[0].as_u64().unwrap() as usize, off[1].as_u64().unwrap() as usize);
        entries.push((
            s,
            Entry {
                name: k,
                dtype: v["dtype"].as_str().unwrap().into(),
                shape: v["shape"].as_array().unwrap().clone(),
                data: data[s..e].to_vec(),
            },
        ));
    }
    entries.sort_by_key(|(s, _)| *s);
    Parts { metadata, entries: entries.into_iter().map(|(_, e)| e).collect() }
}

/// The header object and the data section.
pub fn raw_split(bytes: &[u8]) -> (Map<String, Value>, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header.as_object().unwrap().clone(), bytes[8 + n..].to_vec())
}

/// Writes a header object and data section as a container (header padded to 8 bytes).
pub fn raw_join(header: &Map<String, Value>, data: &[u8]) -> Vec<u8> {
    let mut h = serde_json::to_vec(header).unwrap();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

impl Parts {
    /// A container with the tensors in `entries` order, offsets consecutive.
    pub fn join(&self) -> Vec<u8> {
        let mut header = Map::new();
        header.insert("__metadata__".into(), Value::Object(self.metadata.clone()));
        let mut data = Vec::new();
        for e in &self.entries {
            let s = data.len();
            data.extend_from_slice(&e.data);
            header.insert(
                e.name.clone(),
                json!({"dtype": e.dtype, "shape": e.shape, "data_offsets": [s, data.len()]}),
            );
        }
        raw_join(&header, &data)
    }

    pub fn graph(&self) -> Value {
        serde_json::from_str(self.metadata["anybit"].as_str().unwrap()).unwrap()
    }

    pub fn set_graph(&mut self, g: &Value) {
        self.metadata.insert("anybit".into(), Value::String(g.to_string()));
    }

    pub fn index(&self, name: &str) -> usize {
        self.entries
            .iter()
            .position(|e| e.name == name)
            .unwrap_or_else(|| panic!("no tensor {name}"))
    }
}

/// The fixture with its graph JSON edited.
pub fn with_graph(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut p = split(&file());
    let mut g = p.graph();
    edit(&mut g);
    p.set_graph(&g);
    p.join()
}

/// The fixture with its tensor list edited.
pub fn with_entries(edit: impl FnOnce(&mut Vec<Entry>)) -> Vec<u8> {
    let mut p = split(&file());
    edit(&mut p.entries);
    p.join()
}
