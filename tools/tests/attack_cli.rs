//! `anybit attack` on the committed fixture (the first 100 MNIST test images) with the shipped
//! MNIST model: the table and JSON it prints, the transfer matrix, and its refusals.

use std::process::Command;

use anybit::attack::AttackKind;
use anybit_tools::attack::{self, Attacked, Plan, Summary};

mod common;
use common::{bits, fixture, root};

fn attacked(success: bool, l2: f32) -> Attacked {
    Attacked { index: 0, success, l2, linf: l2 / 2.0, ms: 2.0, adversarial: Vec::new() }
}

#[test]
fn summary_counts_only_successes() {
    let s = Summary::of(&[attacked(true, 1.0), attacked(false, 9.0), attacked(true, 3.0), attacked(true, 2.0)]);
    assert_eq!((s.n, s.success), (4, 0.75));
    assert_eq!((s.l2_mean, s.l2_median, s.linf_mean), (2.0, 2.0, 1.0));
    assert_eq!(Summary::of(&[attacked(true, 1.0), attacked(true, 4.0)]).l2_median, 2.5, "even count: mean of the middle two");
    let none = Summary::of(&[attacked(false, 1.0)]);
    assert!(none.success == 0.0 && none.l2_mean.is_nan());
    assert!(none.to_json()["l2_mean"].is_null(), "no success: null, not NaN, in the JSON");
}

#[test]
fn transfer_matrix_diagonal_is_each_widths_own_success() {
    let bytes = std::fs::read(root().join("models/mnist.anybit")).unwrap();
    let ds = fixture();
    let plan = Plan { kind: AttackKind::Fgsm, params: Default::default(), n: 12, threads: 2 };
    let widths = bits(&[8, 1]);
    let out = attack::run(&bytes, &ds, &widths, &plan, true).unwrap();
    for w in ["8", "1"] {
        let own = out["bits"][w]["success"].as_f64().unwrap();
        let diag = out["transfer"][w][w].as_f64().unwrap();
        assert!((own - diag).abs() < 1e-9, "width {w}: success {own}, matrix diagonal {diag}");
        assert_eq!(out["bits"][w]["n"], 12);
    }
    assert!(out["transfer"]["8"]["1"].as_f64().is_some(), "{out}");
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_anybit")).args(args).output().expect("runs the anybit binary")
}

#[test]
fn cli_prints_a_table_and_a_json_last_line() {
    // The fixture under the names the data loader looks for.
    let dir = std::env::temp_dir().join(format!("anybit-attack-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fx = root().join("fixtures");
    std::fs::copy(fx.join("mnist-t100-images.idx3"), dir.join("t10k-images-idx3-ubyte")).unwrap();
    std::fs::copy(fx.join("mnist-t100-labels.idx1"), dir.join("t10k-labels-idx1-ubyte")).unwrap();
    let model = root().join("models/mnist.anybit");
    let out = cli(&[
        "attack",
        "--model",
        model.to_str().unwrap(),
        "--data-dir",
        dir.to_str().unwrap(),
        "--attack",
        "pgd-linf",
        "--steps",
        "10",
        "--n",
        "10",
        "--bits",
        "8,2",
    ]);
    std::fs::remove_dir_all(&dir).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("| width | images | success |"), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!((json["attack"].as_str(), json["adv_relu"].as_bool(), json["n"].as_u64()), (Some("pgd-linf"), Some(false), Some(10)));
    for w in ["8", "2"] {
        let b = &json["bits"][w];
        for k in ["success", "l2_mean", "l2_median", "linf_mean", "ms_per_image"] {
            assert!(b[k].is_number(), "bits.{w}.{k} in {json}");
        }
        // eps 0.3 and 10 steps of 0.01: PGD fools the model on these digits, within the budget.
        assert!(b["success"].as_f64().unwrap() >= 0.8, "{json}");
        assert!(b["linf_mean"].as_f64().unwrap() <= 0.3 + 1e-6, "{json}");
    }
}

#[test]
fn cli_refuses_bad_requests_clearly() {
    let model = root().join("models/mnist.anybit");
    let m = model.to_str().unwrap();
    // Usage errors (status 2) name the flag; bad values exit 1 with the runtime's message.
    let e = cli(&["attack", "--model", m, "--attack", "jsma"]);
    assert_eq!(e.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&e.stderr).contains("unknown attack"), "{}", String::from_utf8_lossy(&e.stderr));
    let fx = root().join("fixtures");
    let dir = std::env::temp_dir().join(format!("anybit-attack-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fx.join("mnist-t100-images.idx3"), dir.join("t10k-images-idx3-ubyte")).unwrap();
    std::fs::copy(fx.join("mnist-t100-labels.idx1"), dir.join("t10k-labels-idx1-ubyte")).unwrap();
    let d = dir.to_str().unwrap();
    for (args, says) in [
        (&["--attack", "pgd-linf", "--eps", "-1"][..], "eps must be"),
        (&["--attack", "bim", "--steps", "0"][..], "steps must be"),
        (&["--attack", "fgsm", "--target", "10"][..], "out of range"),
        (&["--attack", "deepfool", "--target", "3"][..], "untargeted"),
    ] {
        let e = cli(&[&["attack", "--model", m, "--data-dir", d, "--n", "2"], args].concat());
        let err = String::from_utf8_lossy(&e.stderr);
        assert_eq!(e.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
