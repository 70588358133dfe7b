//! `anybit cf-eval` on the tiny counterfactual model (crate/tests/fixtures/tiny-cf.anybit: a random
//! 2-layer BERT with a 7-output head, thresholds 0.5 / 0.45 / 0.4 at widths 8 / 4 / 2): the table
//! and JSON line, the predictions CSV, metric values on CSVs whose answer follows from the
//! model's own predictions, and the errors (malformed row, missing column, a model without the
//! task, a width the file lacks, a bad --task).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::root;

fn anybit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_anybit")).args(args).env("RAYON_NUM_THREADS", "2").output().expect("runs the anybit binary")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("anybit-cf-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tiny_cf() -> String {
    let p = root().join("crate/tests/fixtures/tiny-cf.anybit");
    let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
    assert!(len > 0, "{} is missing or empty (crate/tests/session_cf.rs writes it with ANYBIT_BLESS=1)", p.display());
    p.display().to_string()
}

/// Sentences in the fixture's vocabulary, one with non-ASCII characters (offsets are code points).
const SENTENCES: [&str; 6] = [
    "if the pilots had been conscious, the plane would not have turned.",
    "i wish we had more time.",
    "the plane turned and it rained.",
    "if it had rained, we would have stayed home.",
    "they could have known — café, naïve, 天気 — if only they had been there.",
    "we should have been better to the pilots.",
];

fn field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn write_task1(path: &Path, labels: &[bool]) {
    let mut csv = String::from("sentenceID,gold_label,sentence\n");
    for (i, (s, l)) in SENTENCES.iter().zip(labels).enumerate() {
        csv += &format!("{},{},{}\n", 100 + i, *l as u8, field(s));
    }
    std::fs::write(path, csv).unwrap();
}

fn write_task2(path: &Path, quads: &[[i64; 4]]) {
    let mut csv = String::from(
        "sentenceID,sentence,antecedent,consequent,antecedent_startid,antecedent_endid,consequent_startid,consequent_endid\n",
    );
    for (i, (s, q)) in SENTENCES.iter().zip(quads).enumerate() {
        csv += &format!("{},{},x,y,{},{},{},{}\n", 200 + i, field(s), q[0], q[1], q[2], q[3]);
    }
    std::fs::write(path, csv).unwrap();
}

/// Runs cf-eval, expects success, returns (stdout, the JSON last line).
fn cf_eval(args: &[&str]) -> (String, Value) {
    let out = anybit(&[&["cf-eval"], args].concat());
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let last = stdout.lines().last().expect("some output");
    (stdout.clone(), serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}")))
}

/// One predictions-CSV row.
#[derive(Debug, PartialEq)]
struct Row {
    id: String,
    label: bool,
    probability: f64,
    quad: [i64; 4],
    antecedent: String,
    consequent: String,
}

fn read_predictions(path: &Path) -> Vec<Row> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let head: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        head,
        [
            "sentenceID",
            "sentence",
            "pred_label",
            "probability",
            "antecedent_startid",
            "antecedent_endid",
            "consequent_startid",
            "consequent_endid",
            "antecedent",
            "consequent"
        ]
    );
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let int = |i: usize| rec[i].parse::<i64>().unwrap();
            Row {
                id: rec[0].to_string(),
                label: &rec[2] == "1",
                probability: rec[3].parse().unwrap(),
                quad: [int(4), int(5), int(6), int(7)],
                antecedent: rec[8].to_string(),
                consequent: rec[9].to_string(),
            }
        })
        .collect()
}

/// Characters `s..=e` of `text` (code points).
fn chars(text: &str, s: i64, e: i64) -> String {
    text.chars().skip(s as usize).take((e - s + 1) as usize).collect()
}

fn close(v: &Value, x: f64) -> bool {
    (v.as_f64().unwrap_or(f64::NAN) - x).abs() < 1e-4
}

#[test]
fn subtask1_table_json_predictions_and_known_scores() {
    let model = tiny_cf();
    let dir = tmp("t1");
    let csv = dir.join("t1.csv");
    write_task1(&csv, &[true; 6]);
    let preds = dir.join("pred.csv");
    let (stdout, json) = cf_eval(&[
        "--model", &model, "--task", "1", "--csv", csv.to_str().unwrap(), "--bits", "8,6,4,2", "--predictions", preds.to_str().unwrap(),
    ]);
    assert!(stdout.contains("| width | threshold | precision | recall | F1 |"), "{stdout}");
    assert_eq!(json["task"], 1);
    assert_eq!(json["n"], 6);
    assert_eq!(json["model"], model.as_str());
    let bits = json["bits"].as_object().unwrap();
    assert_eq!(bits.keys().collect::<Vec<_>>(), ["2", "4", "6", "8"].iter().collect::<Vec<_>>());
    // The file's thresholds; width 6 has none stored and takes the nearest wider width's.
    for (w, t) in [("8", 0.5), ("6", 0.5), ("4", 0.45), ("2", 0.4)] {
        assert!(close(&bits[w]["threshold"], t), "{w}: {}", bits[w]);
    }
    // The predictions file: width 8, every sentence, labels from the threshold, spans that slice
    // the sentence back in code points.
    let rows = read_predictions(&preds);
    assert_eq!(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["100", "101", "102", "103", "104", "105"]);
    for (r, s) in rows.iter().zip(SENTENCES) {
        assert_eq!(r.label, r.probability >= 0.5, "{r:?}");
        assert!((0.0..=1.0).contains(&r.probability));
        assert!(r.quad[0] >= 0 && r.quad[0] <= r.quad[1], "{r:?}");
        assert_eq!(chars(s, r.quad[0], r.quad[1]), r.antecedent, "{r:?}");
        if r.quad[2] >= 0 {
            assert_eq!(chars(s, r.quad[2], r.quad[3]), r.consequent, "{r:?}");
        } else {
            assert_eq!((r.quad[3], r.consequent.as_str()), (-1, ""));
        }
    }
    // All gold positive: tp = predicted positives, fn = the rest, fp = 0.
    let pos = rows.iter().filter(|r| r.label).count();
    let m = &bits["8"];
    assert_eq!((m["tp"].as_u64(), m["fp"].as_u64(), m["fn"].as_u64()), (Some(pos as u64), Some(0), Some((6 - pos) as u64)));
    assert!(close(&m["recall"], pos as f64 / 6.0));
    assert!(close(&m["precision"], if pos > 0 { 1.0 } else { 0.0 }));

    // Gold = the model's own labels at width 8, except the first sentence's, flipped.
    let mut gold: Vec<bool> = rows.iter().map(|r| r.label).collect();
    gold[0] = !gold[0];
    write_task1(&csv, &gold);
    let (_, json) = cf_eval(&["--model", &model, "--task", "1", "--csv", csv.to_str().unwrap(), "--bits", "8"]);
    let m = &json["bits"]["8"];
    let tp = rows.iter().zip(&gold).filter(|(r, &g)| r.label && g).count() as f64;
    let (fp, fn_) = if rows[0].label { (1.0, 0.0) } else { (0.0, 1.0) };
    let (p, r) = (if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 }, if tp + fn_ > 0.0 { tp / (tp + fn_) } else { 0.0 });
    let f1 = if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
    assert!(close(&m["precision"], p) && close(&m["recall"], r) && close(&m["f1"], f1), "{m} vs {p} {r} {f1}");

    // One thread or two: the same predictions.
    let preds1 = dir.join("pred1.csv");
    cf_eval(&[
        "--model", &model, "--task", "1", "--csv", csv.to_str().unwrap(), "--bits", "8", "--threads", "1", "--predictions",
        preds1.to_str().unwrap(),
    ]);
    assert_eq!(read_predictions(&preds1), rows);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn subtask2_scores_follow_from_the_models_own_spans() {
    let model = tiny_cf();
    let dir = tmp("t2");
    let csv = dir.join("t2.csv");
    // First pass: any legal gold, to get the model's spans at width 4.
    write_task2(&csv, &[[0, 1, -1, -1]; 6]);
    let preds = dir.join("pred.csv");
    let (stdout, _) =
        cf_eval(&["--model", &model, "--task", "2", "--csv", csv.to_str().unwrap(), "--bits", "4,8", "--predictions", preds.to_str().unwrap()]);
    assert!(stdout.contains("| width | exact match | F1 |"), "{stdout}");
    let rows = read_predictions(&preds);
    // Gold = the predictions at width 4: exact match and F1 are 1 wherever the scorer calls the
    // prediction legal (a one-character antecedent is illegal: start == end).
    write_task2(&csv, &rows.iter().map(|r| r.quad).collect::<Vec<_>>());
    let (_, json) = cf_eval(&["--model", &model, "--task", "2", "--csv", csv.to_str().unwrap(), "--bits", "4"]);
    let m = &json["bits"]["4"];
    let legal = rows.iter().filter(|r| r.quad[0] < r.quad[1]).count() as f64 / 6.0;
    for key in ["exact_match", "f1", "precision", "recall", "antecedent_f1", "consequent_f1"] {
        assert!(close(&m[key], legal), "{key}: {m}");
    }
    assert_eq!(m["illegal"].as_f64(), Some(6.0 - legal * 6.0));
    // Gold with the consequents swapped for "none" and vice versa: no exact match anywhere,
    // consequent F1 0 everywhere.
    let flipped: Vec<[i64; 4]> = rows
        .iter()
        .zip(SENTENCES)
        .map(|(r, s)| {
            let n = s.chars().count() as i64;
            if r.quad[2] >= 0 {
                [r.quad[0], r.quad[1], -1, -1]
            } else {
                [r.quad[0], r.quad[1], n - 2, n - 1]
            }
        })
        .collect();
    write_task2(&csv, &flipped);
    let (_, json) = cf_eval(&["--model", &model, "--task", "2", "--csv", csv.to_str().unwrap(), "--bits", "4"]);
    let m = &json["bits"]["4"];
    assert!(close(&m["exact_match"], 0.0) && close(&m["consequent_f1"], 0.0), "{m}");
    assert!(close(&m["antecedent_f1"], legal), "{m}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs cf-eval expecting failure; returns (status, stderr).
fn cf_eval_err(args: &[&str]) -> (Option<i32>, String) {
    let out = anybit(&[&["cf-eval"], args].concat());
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn errors_are_clear() {
    let model = tiny_cf();
    let dir = tmp("err");
    let csv = dir.join("ok.csv");
    write_task1(&csv, &[true; 6]);
    let csv = csv.to_str().unwrap();

    // A row with a field too few, on line 3.
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "sentenceID,gold_label,sentence\n1,1,\"if it had rained\"\n2,0\n").unwrap();
    let (code, err) = cf_eval_err(&["--model", &model, "--task", "1", "--csv", bad.to_str().unwrap(), "--bits", "8"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("line 3"), "{err}");
    // A subtask-2 file without the offsets.
    let (code, err) = cf_eval_err(&["--model", &model, "--task", "2", "--csv", csv, "--bits", "8"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no column \"antecedent_startid\""), "{err}");
    // A bad offset names its line.
    let off = dir.join("off.csv");
    write_task2(&off, &[[0, 5, -1, -1], [0, 500, -1, -1], [0, 1, -1, -1], [0, 1, -1, -1], [0, 1, -1, -1], [0, 1, -1, -1]]);
    let (_, err) = cf_eval_err(&["--model", &model, "--task", "2", "--csv", off.to_str().unwrap(), "--bits", "8"]);
    assert!(err.contains("line 3") && err.contains("antecedent"), "{err}");
    // Models without the task.
    for (file, what) in [("tiny-text.anybit", "not a counterfactual detector"), ("tiny.anybit", "image model")] {
        let m = root().join("crate/tests/fixtures").join(file);
        let (code, err) = cf_eval_err(&["--model", m.to_str().unwrap(), "--task", "1", "--csv", csv, "--bits", "8"]);
        assert_eq!(code, Some(1));
        assert!(err.contains(what), "{file}: {err}");
    }
    // A missing model file, and a usage error for --task 3.
    let (code, err) = cf_eval_err(&["--model", "/nonexistent.anybit", "--task", "1", "--csv", csv]);
    assert_eq!(code, Some(1));
    assert!(err.contains("/nonexistent.anybit"), "{err}");
    let (code, _) = cf_eval_err(&["--model", &model, "--task", "3", "--csv", csv]);
    assert_eq!(code, Some(2));
    // An empty sentence is refused with the runtime's message and the sentence's position.
    let empty = dir.join("empty.csv");
    std::fs::write(&empty, "sentenceID,gold_label,sentence\n1,1,if it had rained\n2,0,\" \"\n").unwrap();
    let (_, err) = cf_eval_err(&["--model", &model, "--task", "1", "--csv", empty.to_str().unwrap(), "--bits", "8"]);
    assert!(err.contains("sentence 2"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The tiny model rewritten with only some of its widths (the fixture has all eight): the graph's
/// widths, their per-width tensors and eval entries dropped, as `format::upgrade` lays files out.
fn with_widths(bytes: &[u8], keep: &[u8]) -> Vec<u8> {
    let file = anybit::format::read(bytes).unwrap();
    let mut graph = file.graph().clone();
    graph.widths.retain(|w| keep.contains(&w.w.get()));
    for e in &mut graph.eval {
        e.accuracy.retain(|(w, _)| keep.contains(w));
    }
    let mut codes = Vec::new();
    for n in &mut graph.nodes {
        use anybit::format::Op;
        let (Op::Conv2d { weight: w, .. } | Op::Dense { weight: w } | Op::Linear { weight: w, .. }) = &mut n.op else { continue };
        let layer = file.layer_codes(w).unwrap().to_vec();
        codes.resize(codes.len().div_ceil(8) * 8, 0);
        w.code_offset = codes.len();
        codes.extend_from_slice(&layer);
    }
    let dropped: Vec<String> = (1..=8u8).filter(|w| !keep.contains(w)).map(|w| format!(".w{w}.")).collect();
    let tensors = file.tensors().iter().filter(|(name, _)| !dropped.iter().any(|d| name.contains(d.as_str())));
    let tensors = tensors.map(|(k, v)| (k.clone(), v.clone())).collect();
    let tables = graph.nodes.iter().filter_map(|n| Some((n.name.clone(), file.table(&n.name).ok()?.to_vec()))).collect();
    anybit::format::write_with_tables(&graph, &codes, &tensors, &tables).unwrap()
}

#[test]
fn a_width_the_file_lacks_is_an_error() {
    let dir = tmp("width");
    let model = dir.join("w842.anybit");
    std::fs::write(&model, with_widths(&std::fs::read(tiny_cf()).unwrap(), &[8, 4, 2])).unwrap();
    let csv = dir.join("ok.csv");
    write_task1(&csv, &[true; 6]);
    let (m, c) = (model.to_str().unwrap(), csv.to_str().unwrap());
    let (_, json) = cf_eval(&["--model", m, "--task", "1", "--csv", c, "--bits", "8,4,2"]);
    assert_eq!(json["bits"].as_object().unwrap().len(), 3);
    let (code, err) = cf_eval_err(&["--model", m, "--task", "1", "--csv", c, "--bits", "8,3"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no width 3") && err.contains("8,4,2"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// tools/src/cf/metrics.rs against tools/tests/cf/scorer.py (a Python rendering of the organisers'
/// rules, slicing and `split()` done by Python itself) on seeded random sentences with non-ASCII
/// words and unusual whitespace, and random gold/prediction pairs (legal, shifted, illegal, out of
/// range). Skips, saying so, without python3 and numpy.
#[test]
fn metrics_match_a_python_rendering_of_the_scorer() {
    use anybit_tools::cf::metrics::{score_sentence, subtask2, Quad};
    use std::io::Write;
    let has_numpy = Command::new("python3").args(["-c", "import numpy"]).output().is_ok_and(|o| o.status.success());
    if !has_numpy {
        eprintln!("SKIPPED metrics_match_a_python_rendering_of_the_scorer: needs python3 with numpy");
        return;
    }
    let mut seed = 0x5e3e_2020_u64;
    let mut rnd = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n.max(1)
    };
    let words = ["If", "had", "café", "naïve", "天気", "we", "would", ",", ".", "x", "wreckage"];
    let spaces = [" ", " ", " ", "  ", "\u{a0}", "\t", "\u{3000}", "\u{1f}", "\n"];
    let mut cases: Vec<(String, Quad, Quad)> = Vec::new();
    for _ in 0..400 {
        let mut s = String::new();
        for k in 0..(3 + rnd(12)) {
            if k > 0 {
                s += spaces[rnd(spaces.len() as u64) as usize];
            }
            s += words[rnd(words.len() as u64) as usize];
        }
        let n = s.chars().count() as i64;
        let range = |rnd: &mut dyn FnMut(u64) -> u64| {
            let a = rnd(n as u64) as i64;
            (a, a + rnd((n - a) as u64) as i64)
        };
        let (a_s, a_e) = range(&mut rnd);
        let (c_s, c_e) = if rnd(3) == 0 { (-1, -1) } else { range(&mut rnd) };
        let gold = Quad::new(a_s, a_e, c_s, c_e);
        let pred = match rnd(10) {
            0..=4 => {
                let mut j = |v: i64| if v == -1 { -1 } else { (v + rnd(7) as i64 - 3).max(0) };
                Quad::new(j(a_s), j(a_e), j(c_s), j(c_e))
            }
            5 => gold,
            6 | 7 => {
                let (x, y) = range(&mut rnd);
                let (z, w) = if rnd(2) == 0 { (-1, -1) } else { range(&mut rnd) };
                Quad::new(x, y, z, w)
            }
            _ => {
                let mut v = || rnd(n as u64 + 8) as i64 - 3;
                Quad::new(v(), v(), v(), v())
            }
        };
        cases.push((s, gold, pred));
    }
    let mut child = Command::new("python3")
        .arg(root().join("tools/tests/cf/scorer.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starts python3");
    {
        let mut stdin = child.stdin.take().unwrap();
        for (s, g, p) in &cases {
            let q = |q: &Quad| [q.ant_start, q.ant_end, q.con_start, q.con_end];
            writeln!(stdin, "{}", serde_json::json!({"s": s, "t": q(g), "p": q(p)})).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), cases.len() + 1);
    let (mut illegal, mut partial) = (0, 0);
    for ((s, g, p), py) in cases.iter().zip(&lines) {
        let r = score_sentence(s, *g, *p);
        illegal += !r.legal as usize;
        partial += (r.f1 > 0.0 && r.f1 < 1.0) as usize;
        let same = |a: f64, key: &str| (a - py[key].as_f64().unwrap()).abs() < 1e-12;
        assert!(
            same(r.exact as u8 as f64, "em") && same(r.precision, "p") && same(r.recall, "r") && same(r.f1, "f1"),
            "{s:?} gold {g:?} pred {p:?}: ours {r:?}, Python {py}"
        );
    }
    // The random cases reach the interesting branches.
    assert!(illegal > 20 && partial > 50, "{illegal} illegal, {partial} partial");
    let mean = subtask2(cases.iter().map(|(s, g, p)| (s.as_str(), *g, *p)));
    let py = &lines[cases.len()];
    for (ours, key) in [(mean.exact_match, "mean_em"), (mean.f1, "mean_f1"), (mean.precision, "mean_p"), (mean.recall, "mean_r")] {
        assert!((ours - py[key].as_f64().unwrap()).abs() < 1e-9, "{key}: {ours} vs {py}");
    }
}
