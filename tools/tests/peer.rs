//! `anybit peer-export` and `anybit bench-model` (tools/src/peer.rs): the exported float graph,
//! run by an independent float64 interpreter written here from graph.json's documented ops,
//! reproduces the runtime's float twin on the exported inputs, and the quantized reference is the
//! runtime's own output. Models: the shipped MNIST CNN (affines folded into convs, fixed 8-bit
//! layers, max pools, real test images), the crate's tiny fixture (grouped conv, residual add,
//! global pool, biases, softmax) and the ResNet-20 benchmark model (strided and 1x1 projection
//! convs, explicit ReLUs). Plus the refusals: a text model, a width the file lacks, --count 0.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::root;

fn anybit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_anybit")).args(args).output().expect("runs the anybit binary")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("anybit-peer-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "anybit failed: {}{}", stdout, String::from_utf8_lossy(&out.stderr));
    stdout
}

fn fails_with(out: Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a failure mentioning {needle:?}");
    assert!(err.contains(needle), "stderr {err:?} does not mention {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A value of the float graph: NHWC `[h, w, c]` or flat (`h = w = 1`).
#[derive(Clone)]
struct T {
    h: usize,
    w: usize,
    c: usize,
    d: Vec<f64>,
}

fn tensor(node: &Value, key: &str, weights: &[u8]) -> (Vec<usize>, Vec<f64>) {
    let t = &node[key];
    let shape: Vec<usize> = t["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let off = t["offset"].as_u64().unwrap() as usize;
    let n: usize = shape.iter().product();
    let d = weights[off..off + 4 * n].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64).collect();
    (shape, d)
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

/// Evaluates graph.json on one NHWC input in float64.
fn run_graph(graph: &Value, weights: &[u8], input: &[f64]) -> Vec<f64> {
    let s = usizes(&graph["input"]["shape"]);
    let mut values: std::collections::HashMap<String, T> = Default::default();
    values.insert("input".into(), T { h: s[0], w: s[1], c: s[2], d: input.to_vec() });
    for node in graph["nodes"].as_array().unwrap() {
        let ins: Vec<&T> = node["inputs"].as_array().unwrap().iter().map(|n| &values[n.as_str().unwrap()]).collect();
        let x = ins[0];
        let out = match node["op"].as_str().unwrap() {
            "clip" => {
                let lo = node["min"].as_f64().unwrap();
                let hi = node["max"].as_f64().unwrap_or(f64::INFINITY);
                T { d: x.d.iter().map(|v| v.max(lo).min(hi)).collect(), ..x.clone() }
            }
            "conv2d" => {
                let (ws, w) = tensor(node, "weight", weights);
                let (_, b) = tensor(node, "bias", weights);
                let (st, pad, dil, groups) = (usizes(&node["stride"]), usizes(&node["padding"]), usizes(&node["dilation"]), node["groups"].as_u64().unwrap() as usize);
                let (co, kh, kw, cig) = (ws[0], ws[1], ws[2], ws[3]);
                let oh = (x.h + pad[0] + pad[2] - dil[0] * (kh - 1) - 1) / st[0] + 1;
                let ow = (x.w + pad[1] + pad[3] - dil[1] * (kw - 1) - 1) / st[1] + 1;
                let cog = co / groups;
                let mut d = vec![0.0; oh * ow * co];
                for oy in 0..oh {
                    for ox in 0..ow {
                        for o in 0..co {
                            let g = o / cog;
                            let mut acc = b[o];
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (oy * st[0] + ky * dil[0]) as isize - pad[0] as isize;
                                    let ix = (ox * st[1] + kx * dil[1]) as isize - pad[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= x.h as isize || ix >= x.w as isize {
                                        continue;
                                    }
                                    for i in 0..cig {
                                        let xv = x.d[(iy as usize * x.w + ix as usize) * x.c + g * cig + i];
                                        acc += xv * w[((o * kh + ky) * kw + kx) * cig + i];
                                    }
                                }
                            }
                            d[(oy * ow + ox) * co + o] = acc;
                        }
                    }
                }
                T { h: oh, w: ow, c: co, d }
            }
            "dense" => {
                let (ws, w) = tensor(node, "weight", weights);
                let (_, b) = tensor(node, "bias", weights);
                assert_eq!(ws[1], x.d.len(), "{}: dense depth", node["name"]);
                let d = (0..ws[0]).map(|o| b[o] + x.d.iter().zip(&w[o * ws[1]..(o + 1) * ws[1]]).map(|(a, b)| a * b).sum::<f64>()).collect();
                T { h: 1, w: 1, c: ws[0], d }
            }
            "affine" => {
                let (_, sc) = tensor(node, "scale", weights);
                let (_, bi) = tensor(node, "bias", weights);
                T { d: x.d.iter().enumerate().map(|(i, v)| v * sc[i % x.c] + bi[i % x.c]).collect(), ..x.clone() }
            }
            op @ ("max_pool" | "avg_pool") => {
                let (k, st, pad) = (usizes(&node["kernel"]), usizes(&node["stride"]), usizes(&node["padding"]));
                let oh = (x.h + pad[0] + pad[2] - k[0]) / st[0] + 1;
                let ow = (x.w + pad[1] + pad[3] - k[1]) / st[1] + 1;
                let mut d = vec![0.0; oh * ow * x.c];
                for oy in 0..oh {
                    for ox in 0..ow {
                        for c in 0..x.c {
                            let mut vals = Vec::new();
                            for ky in 0..k[0] {
                                for kx in 0..k[1] {
                                    let iy = (oy * st[0] + ky) as isize - pad[0] as isize;
                                    let ix = (ox * st[1] + kx) as isize - pad[1] as isize;
                                    if iy >= 0 && ix >= 0 && iy < x.h as isize && ix < x.w as isize {
                                        vals.push(x.d[(iy as usize * x.w + ix as usize) * x.c + c]);
                                    }
                                }
                            }
                            d[(oy * ow + ox) * x.c + c] = if op == "max_pool" {
                                vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
                            } else {
                                vals.iter().sum::<f64>() / vals.len() as f64
                            };
                        }
                    }
                }
                T { h: oh, w: ow, c: x.c, d }
            }
            "global_avg_pool" => {
                let n = (x.h * x.w) as f64;
                let d = (0..x.c).map(|c| x.d.iter().skip(c).step_by(x.c).sum::<f64>() / n).collect();
                T { h: 1, w: 1, c: x.c, d }
            }
            "add" => T { d: x.d.iter().zip(&ins[1].d).map(|(a, b)| a + b).collect(), ..x.clone() },
            "flatten" => T { h: 1, w: 1, c: x.d.len(), d: x.d.clone() },
            "softmax" => {
                let m = x.d.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = x.d.iter().map(|v| (v - m).exp()).collect();
                let s: f64 = e.iter().sum();
                T { d: e.iter().map(|v| v / s).collect(), ..x.clone() }
            }
            other => panic!("unknown op {other}"),
        };
        values.insert(node["name"].as_str().unwrap().into(), out);
    }
    values.remove(graph["output"].as_str().unwrap()).unwrap().d
}

/// Exports `model` at `bits` and checks the float graph against the twin on every input.
fn check_export(model: &Path, bits: &str, extra: &[&str], name: &str) -> Value {
    let out = tmp(name);
    let dir = out.display().to_string();
    let printed = ok(anybit(&[&["peer-export", "--model", &model.display().to_string(), "--bits", bits, "--out", &dir], extra].concat()));
    assert!(printed.contains("reference inputs"), "{printed}");
    let graph: Value = serde_json::from_slice(&std::fs::read(out.join("graph.json")).unwrap()).unwrap();
    let weights = std::fs::read(out.join("weights.bin")).unwrap();
    let reference: Value = serde_json::from_slice(&std::fs::read(out.join("reference.json")).unwrap()).unwrap();
    let rows = |k: &str| -> Vec<Vec<f64>> {
        reference[k].as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()).collect()
    };
    let (inputs, float, quant) = (rows("inputs"), rows("float_outputs"), rows("quantized_outputs"));
    assert!(!inputs.is_empty() && inputs.len() == float.len() && float.len() == quant.len());
    let mut worst = 0.0f64;
    for (x, want) in inputs.iter().zip(&float) {
        let got = run_graph(&graph, &weights, x);
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let diff = got.iter().zip(want).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())) / scale;
        worst = worst.max(diff);
    }
    eprintln!("{name}: float graph vs the runtime's float twin, worst relative difference {worst:.2e}");
    assert!(worst < 1e-4, "{name}: the exported graph does not compute the float twin ({worst:.2e})");
    // The quantized reference is the runtime's output at this width: the same on a second run.
    let bytes = std::fs::read(model).unwrap();
    let mut m = anybit::Model::from_bytes(&bytes).unwrap();
    m.set_width(anybit::Bits::new(bits.parse().unwrap()).unwrap()).unwrap();
    for (x, q) in inputs.iter().zip(&quant) {
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let got = m.run(&x32).unwrap();
        assert!(got.iter().zip(q).all(|(a, b)| (*a as f64 - b).abs() <= 1e-6 * b.abs().max(1.0)), "{name}: quantized reference");
    }
    graph
}

fn ops(graph: &Value) -> Vec<String> {
    graph["nodes"].as_array().unwrap().iter().map(|n| n["op"].as_str().unwrap().to_string()).collect()
}

#[test]
fn mnist_with_real_images_at_8_and_2_bits() {
    let model = root().join("models/mnist.anybit");
    let images = root().join("fixtures/mnist-t100-images.idx3").display().to_string();
    for bits in ["8", "2"] {
        let g = check_export(&model, bits, &["--images", &images, "--count", "4"], &format!("mnist{bits}"));
        // Three affines folded: clip + conv per conv, no affine left.
        assert_eq!(ops(&g), ["clip", "conv2d", "max_pool", "clip", "conv2d", "max_pool", "clip", "conv2d", "clip", "dense"]);
    }
}

#[test]
fn tiny_fixture_with_groups_residual_and_softmax() {
    let g = check_export(&root().join("crate/tests/fixtures/tiny.anybit"), "8", &["--count", "3"], "tiny");
    let o = ops(&g);
    for op in ["add", "global_avg_pool", "softmax", "dense"] {
        assert!(o.contains(&op.to_string()), "{op} missing from {o:?}");
    }
    assert!(g["nodes"].as_array().unwrap().iter().any(|n| n["groups"].as_u64().unwrap_or(1) > 1), "the grouped conv");
}

#[test]
fn resnet20_bench_model() {
    let dir = tmp("resnet");
    let file = dir.join("resnet20.anybit");
    let printed = ok(anybit(&["bench-model", "--arch", "resnet20", "--out", &file.display().to_string(), "--seed", "3"]));
    assert!(printed.contains("40.8 MMAC"), "ResNet-20 on 32x32 is about 41 M multiply-adds: {printed}");
    let g = check_export(&file, "4", &["--count", "2"], "resnet20");
    let o = ops(&g);
    assert_eq!(o.iter().filter(|x| *x == "conv2d").count(), 21, "19 3x3 convs and 2 projections");
    assert_eq!(o.iter().filter(|x| *x == "add").count(), 9);
    let conv = tmp("conv");
    let f = conv.join("c.anybit");
    ok(anybit(&["bench-model", "--arch", "conv3x3", "--out", &f.display().to_string()]));
    let bytes = std::fs::read(&f).unwrap();
    let m = anybit::Model::from_bytes(&bytes).unwrap();
    assert_eq!(m.macs(), 64 * 576 * 784);
    // A feature map is not class scores: run() gives it whole with no softmax and no top classes.
    let mut s = anybit::session::Session::load(&bytes, 1).unwrap();
    let x: Vec<f32> = (0..28 * 28 * 64).map(|i| (i % 7) as f32 / 7.0).collect();
    let r = s.run(&x, &|| 0.0).unwrap();
    assert_eq!(r.logits.len(), 28 * 28 * 64);
    assert!(r.probabilities.is_empty() && r.top.is_empty() && r.label.is_none());
    let max = r.logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert_eq!(r.logits[r.predicted], max);
    assert_eq!(r.logits.iter().position(|&v| v == max), Some(r.predicted), "the first largest");
}

#[test]
fn refusals() {
    let out = tmp("refuse").display().to_string();
    let text = root().join("crate/tests/fixtures/tiny-cf.anybit").display().to_string();
    fails_with(anybit(&["peer-export", "--model", &text, "--out", &out]), "text model");
    let mnist = root().join("models/mnist.anybit").display().to_string();
    let fashion_images = root().join("fixtures/fmnist-t100-images.idx3").display().to_string();
    fails_with(anybit(&["peer-export", "--model", &mnist, "--out", &out, "--count", "0"]), "--count");
    fails_with(anybit(&["peer-export", "--model", &mnist, "--out", &out, "--images", &fashion_images, "--count", "101"]), "101");
    let tiny = root().join("crate/tests/fixtures/tiny.anybit").display().to_string();
    fails_with(anybit(&["peer-export", "--model", &tiny, "--bits", "3", "--out", &out]), "no width 3");
    fails_with(anybit(&["peer-export", "--model", "/nonexistent.anybit", "--out", &out]), "nonexistent");
}
