//! Trained net -> `.anybit` file: the graph, the flat 8-bit code sequence and the per-width
//! tensors (weight scale, input clip, bias; folded BN as `Affine` scale/bias).

use std::collections::BTreeMap;

use anybit::format::{self, names, F32Tensor};
use anybit::format::{EvalResult, Graph, Node, Op, Precision, QuantWeight, Width, FORMAT_NAME, FORMAT_VERSION};
use anybit::Bits;
use anyhow::{Context, Result};

use crate::net::{Layer, Net, QKind};
use crate::ops;

fn scalar(v: f32) -> F32Tensor {
    F32Tensor { shape: vec![1], data: vec![v] }
}

/// Builds the graph, codes and tensors for `widths` (weight widths; activation bits from the net).
pub fn build(
    net: &Net,
    name: &str,
    widths: &[Bits],
    labels: Option<Vec<String>>,
    eval: Vec<EvalResult>,
) -> Result<(Graph, Vec<u8>, BTreeMap<String, F32Tensor>)> {
    if let Some(c) = &net.wavelet {
        if let Some(w) = widths.iter().find(|w| c.widths.contains(w)) {
            anyhow::bail!("width {w} uses the wavelet path, which the runtime cannot run; export the other widths");
        }
    }
    let mut nodes = Vec::new();
    let mut codes: Vec<u8> = Vec::new();
    let mut tensors = BTreeMap::new();
    let mut prev = names::INPUT.to_string();
    for layer in &net.layers {
        match layer {
            Layer::Pool { name, op } => {
                nodes.push(Node {
                    name: name.clone(),
                    inputs: vec![prev.clone()],
                    op: Op::MaxPool { kernel: [op.k; 2], stride: [op.stride; 2], padding: [0; 4] },
                });
                prev = name.clone();
            }
            Layer::Q(q) => {
                let w = ops::data(q.w.as_tensor())?;
                let (e, _) = ops::weight_stats(&w);
                // Layers start on a byte boundary of each bit plane.
                codes.resize(codes.len().div_ceil(8) * 8, 0);
                let code_offset = codes.len();
                codes.extend(ops::weight_codes8(&w));
                let precision = if q.fixed8 { Precision::Fixed8 } else { Precision::Model };
                let (shape, op) = match q.kind {
                    QKind::Conv { k, pad, stride, cin } => {
                        let shape = vec![q.cout, k, k, cin];
                        let weight = QuantWeight { shape, code_offset, precision, bias: false };
                        (
                            weight.shape.clone(),
                            Op::Conv2d {
                                weight,
                                stride: [stride; 2],
                                padding: [pad; 4],
                                dilation: [1, 1],
                                groups: 1,
                            },
                        )
                    }
                    QKind::Dense { cin } => {
                        let weight = QuantWeight {
                            shape: vec![q.cout, cin],
                            code_offset,
                            precision,
                            bias: q.bias.is_some(),
                        };
                        (weight.shape.clone(), Op::Dense { weight })
                    }
                };
                debug_assert_eq!(shape.iter().product::<usize>(), w.len());
                let bias = match &q.bias {
                    Some(b) => Some(b.as_tensor().to_vec1::<f32>()?),
                    None => None,
                };
                for &b in widths {
                    tensors.insert(names::width_tensor(&q.name, b, names::WSCALE), scalar(e));
                    tensors.insert(names::width_tensor(&q.name, b, names::CLIP), scalar(q.clip_value(b)?));
                    if let Some(bias) = &bias {
                        tensors.insert(
                            names::width_tensor(&q.name, b, names::BIAS),
                            F32Tensor { shape: vec![bias.len()], data: bias.clone() },
                        );
                    }
                }
                nodes.push(Node { name: q.name.clone(), inputs: vec![prev.clone()], op });
                prev = q.name.clone();
                if let Some(bn) = &q.bn {
                    for &b in widths {
                        let (s, t) = bn.folded(b)?;
                        let c = s.len();
                        tensors.insert(names::width_tensor(&bn.name, b, names::SCALE), F32Tensor { shape: vec![c], data: s });
                        tensors.insert(names::width_tensor(&bn.name, b, names::BIAS), F32Tensor { shape: vec![c], data: t });
                    }
                    nodes.push(Node { name: bn.name.clone(), inputs: vec![prev.clone()], op: Op::Affine });
                    prev = bn.name.clone();
                }
            }
        }
    }
    let graph = Graph {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        name: name.into(),
        input_shape: net.input.to_vec(),
        text: None,
        labels,
        widths: widths.iter().map(|&w| Width { w, a: net.act_bits[w.count() - 1] }).collect(),
        nodes,
        task: None,
        eval,
        sha256: None,
    };
    Ok((graph, codes, tensors))
}

pub fn write(
    net: &Net,
    name: &str,
    widths: &[Bits],
    labels: Option<Vec<String>>,
    eval: Vec<EvalResult>,
) -> Result<Vec<u8>> {
    let (graph, codes, tensors) = build(net, name, widths, labels, eval)?;
    format::write(&graph, &codes, &tensors).map_err(|e| anyhow::anyhow!("{e}")).context("writing .anybit")
}

pub fn labels(dataset: &str) -> Vec<String> {
    let names: &[&str] = match dataset {
        "fashion-mnist" => &[
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
            "Ankle boot",
        ],
        _ => &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    };
    names.iter().map(|s| s.to_string()).collect()
}
