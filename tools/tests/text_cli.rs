//! `anybit import` and `anybit tokenize` on a small random BERT-layout folder the test writes
//! itself (the real vocabulary, random weights): the imported file computes the same function
//! as an independent f64 BERT forward pass of those weights, and its tokenizer gives Hugging
//! Face's ids (crate/tests/fixtures/tokenizer/edge.jsonl).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::root;
use common::tiny_bert::{tiny_bert, FF, HEADS, HIDDEN, LAYERS};


fn anybit(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_anybit")).args(args).output().expect("runs the anybit binary")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("anybit-text-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn erf(x: f64) -> f64 {
    // Series for small |x|, continued fraction of erfc for large: both to ~1e-15 here.
    if x.abs() < 2.5 {
        let (mut term, mut sum) = (x, x);
        for n in 1..60 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let z = x.abs();
        let mut f = 0.0;
        for k in (1..80).rev() {
            f = (k as f64 / 2.0) / (z + f);
        }
        let erfc = (-z * z).exp() / std::f64::consts::PI.sqrt() / (z + f);
        x.signum() * (1.0 - erfc)
    }
}

/// BERT's forward pass in f64, masked mean pooled, straight from the float weights.
fn reference(w: &HashMap<String, (Vec<usize>, Vec<f32>)>, ids: &[u32]) -> Vec<f64> {
    let g = |n: &str| -> Vec<f64> { w[n].1.iter().map(|&v| v as f64).collect() };
    let n = ids.len();
    let ln = |x: &mut [f64], name: &str| {
        let (gm, bt) = (g(&format!("{name}.weight")), g(&format!("{name}.bias")));
        for row in x.chunks_exact_mut(HIDDEN) {
            let m = row.iter().sum::<f64>() / HIDDEN as f64;
            let v = row.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / HIDDEN as f64;
            for (j, a) in row.iter_mut().enumerate() {
                *a = (*a - m) / (v + 1e-12).sqrt() * gm[j] + bt[j];
            }
        }
    };
    let lin = |x: &[f64], name: &str, out: usize, inp: usize| -> Vec<f64> {
        let (wt, b) = (g(&format!("{name}.weight")), g(&format!("{name}.bias")));
        x.chunks_exact(inp).flat_map(|row| (0..out).map(|o| b[o] + (0..inp).map(|i| wt[o * inp + i] * row[i]).sum::<f64>()).collect::<Vec<_>>()).collect()
    };
    let (we, pe, te) = (g("embeddings.word_embeddings.weight"), g("embeddings.position_embeddings.weight"), g("embeddings.token_type_embeddings.weight"));
    let mut x: Vec<f64> = (0..n).flat_map(|t| (0..HIDDEN).map(move |j| (t, j))).map(|(t, j)| we[ids[t] as usize * HIDDEN + j] + pe[t * HIDDEN + j] + te[j]).collect();
    ln(&mut x, "embeddings.LayerNorm");
    for l in 0..LAYERS {
        let p = format!("encoder.layer.{l}");
        let q = lin(&x, &format!("{p}.attention.self.query"), HIDDEN, HIDDEN);
        let k = lin(&x, &format!("{p}.attention.self.key"), HIDDEN, HIDDEN);
        let v = lin(&x, &format!("{p}.attention.self.value"), HIDDEN, HIDDEN);
        let dh = HIDDEN / HEADS;
        let mut a = vec![0.0; n * HIDDEN];
        for h in 0..HEADS {
            for i in 0..n {
                let s: Vec<f64> = (0..n).map(|j| (0..dh).map(|d| q[i * HIDDEN + h * dh + d] * k[j * HIDDEN + h * dh + d]).sum::<f64>() / (dh as f64).sqrt()).collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for j in 0..n {
                    for d in 0..dh {
                        a[i * HIDDEN + h * dh + d] += e[j] / z * v[j * HIDDEN + h * dh + d];
                    }
                }
            }
        }
        let o = lin(&a, &format!("{p}.attention.output.dense"), HIDDEN, HIDDEN);
        let mut y: Vec<f64> = o.iter().zip(&x).map(|(a, b)| a + b).collect();
        ln(&mut y, &format!("{p}.attention.output.LayerNorm"));
        let up: Vec<f64> = lin(&y, &format!("{p}.intermediate.dense"), FF, HIDDEN).iter().map(|&u| 0.5 * u * (1.0 + erf(u / 2f64.sqrt()))).collect();
        let down = lin(&up, &format!("{p}.output.dense"), HIDDEN, FF);
        x = down.iter().zip(&y).map(|(a, b)| a + b).collect();
        ln(&mut x, &format!("{p}.output.LayerNorm"));
    }
    (0..HIDDEN).map(|j| (0..n).map(|t| x[t * HIDDEN + j]).sum::<f64>() / n as f64).collect()
}

fn cosine(a: &[f64], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, &y)| x * y as f64).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|&y| (y as f64) * (y as f64)).sum::<f64>().sqrt();
    dot / na / nb
}

fn import(dir: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec!["import", "--from", dir.to_str().unwrap(), "--out", out.to_str().unwrap(), "--embed-bits", "8"];
    args.extend(extra);
    let o = anybit(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("parameters"), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn imported_file_computes_the_reference_bert() {
    let dir = tmp("bert");
    let w = tiny_bert(&dir);
    let texts = ["If the pilots had been conscious, the plane would not have turned.", "a", "Naïve café owners? 東京 is big!"];
    for smooth in [true, false] {
        let out = dir.join(format!("tiny-{smooth}.anybit"));
        import(&dir, &out, if smooth { &[] } else { &["--no-smooth"] });
        let bytes = std::fs::read(&out).unwrap();
        let mut model = anybit::Model::from_bytes(&bytes).unwrap();
        assert!(model.is_text());
        let tok = anybit_tools::tokenize::tokenizer_of(&out).unwrap();
        for text in texts {
            let ids = tok.encode(text).ids;
            let want = reference(&w, &ids);
            let input: Vec<f32> = ids.iter().flat_map(|&i| [i as f32, 0.0, 1.0]).collect();
            // 8-bit weights and embeddings on unrounded activations, then the quantized pass.
            model.set_width(anybit::Bits::MAX).unwrap();
            let twin = model.trace(&input, true).unwrap().logits().to_vec();
            let quant = model.run_tokens(&ids, &vec![0; ids.len()], &vec![1; ids.len()]).unwrap();
            let (ct, cq) = (cosine(&want, &twin), cosine(&want, quant.data()));
            assert!(ct > 0.9999, "smooth {smooth}, {text:?}: twin cosine {ct}");
            assert!(cq > 0.999, "smooth {smooth}, {text:?}: quantized cosine {cq}");
            // Narrower widths are worse, but still the same function, not noise.
            model.set_width(anybit::Bits::new(4).unwrap()).unwrap();
            let c4 = cosine(&want, model.run_tokens(&ids, &vec![0; ids.len()], &vec![1; ids.len()]).unwrap().data());
            assert!(c4 > 0.8 && c4 < cq + 1e-6, "smooth {smooth}, {text:?}: 4-bit cosine {c4} (8-bit {cq})");
        }
    }
}

#[test]
fn tokenize_prints_hugging_face_ids_and_offsets() {
    let dir = tmp("tok");
    tiny_bert(&dir);
    let model = dir.join("tiny.anybit");
    import(&dir, &model, &["--max-tokens", "40"]);
    let edge = std::fs::read_to_string(root().join("crate/tests/fixtures/tokenizer/edge.jsonl")).unwrap();
    let cases: Vec<serde_json::Value> = edge.lines().map(|l| serde_json::from_str(l).unwrap()).filter(|c: &serde_json::Value| c["text"].is_string()).collect();
    let mut csv = csv::Writer::from_path(dir.join("edge.csv")).unwrap();
    csv.write_record(["id", "sentence"]).unwrap();
    for (i, c) in cases.iter().enumerate() {
        csv.write_record([i.to_string().as_str(), c["text"].as_str().unwrap()]).unwrap();
    }
    csv.flush().unwrap();
    let o = anybit(&["tokenize", "--model", model.to_str().unwrap(), "--csv", dir.join("edge.csv").to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), cases.len());
    let mut whole = 0;
    for (got, want) in lines.iter().zip(&cases) {
        let want_ids = want["ids"].as_array().unwrap();
        if want_ids.len() <= 40 {
            assert_eq!(got["ids"], want["ids"], "{:?}", want["text"]);
            assert_eq!(got["offsets"], want["offsets"], "{:?}", want["text"]);
            assert_eq!(got["truncated"], false);
            whole += 1;
        } else {
            // Truncated to 40: the first 39 reference tokens, then [SEP].
            let ids = got["ids"].as_array().unwrap();
            assert_eq!(ids.len(), 40);
            assert_eq!(ids[..39], want_ids[..39], "{:?}", want["text"]);
            assert_eq!(ids[39], 102);
            assert_eq!(got["truncated"], true);
        }
    }
    assert!(whole > 40, "only {whole} edge texts fit in 40 tokens");
    // --text: one line, the same as the CSV's for the same text.
    let o = anybit(&["tokenize", "--model", model.to_str().unwrap(), "--text", cases[4]["text"].as_str().unwrap()]);
    let line: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(line, lines[4]);
}

#[test]
fn refusals_are_clear() {
    let dir = tmp("bad");
    tiny_bert(&dir);
    let model = dir.join("tiny.anybit");
    import(&dir, &model, &[]);
    let err = |o: std::process::Output| {
        assert!(!o.status.success());
        String::from_utf8(o.stderr).unwrap()
    };
    let mnist = root().join("models/mnist.anybit");
    assert!(err(anybit(&["tokenize", "--model", mnist.to_str().unwrap(), "--text", "hi"])).contains("not a text model"));
    std::fs::write(dir.join("bad.csv"), "id,sentence\n1,fine\n2,\"two\",\"fields too many\"\n").unwrap();
    let msg = err(anybit(&["tokenize", "--model", model.to_str().unwrap(), "--csv", dir.join("bad.csv").to_str().unwrap()]));
    assert!(msg.contains("line 3"), "{msg}");
    let msg = err(anybit(&["tokenize", "--model", model.to_str().unwrap(), "--csv", dir.join("bad.csv").to_str().unwrap(), "--column", "text"]));
    assert!(msg.contains("no column \"text\""), "{msg}");
    let empty = tmp("empty");
    let msg = err(anybit(&["import", "--from", empty.to_str().unwrap(), "--out", dir.join("x.anybit").to_str().unwrap()]));
    assert!(msg.contains("config.json"), "{msg}");
    let msg = err(anybit(&["import", "--from", dir.to_str().unwrap(), "--out", dir.join("x.anybit").to_str().unwrap(), "--max-tokens", "41"]));
    assert!(msg.contains("max tokens 41"), "{msg}");
}
