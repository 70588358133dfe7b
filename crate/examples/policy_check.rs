//! Prints the precision policy's predicted latency next to the measured one for every width of a
//! model: `cargo run --release -p anybit --example policy_check [-- MODEL [THREADS]]`
//! (default models/mnist.anybit, 1 thread). The bar it checks: within 30% at every width.

use std::time::Instant;

use anybit::policy::calibrate;
use anybit::Model;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().map_or("models/mnist.anybit", |s| s.as_str());
    let threads: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let bytes = std::fs::read(path).unwrap_or_else(|e| fail(&format!("reading {path}: {e}")));
    let mut model = Model::from_bytes(&bytes).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
    model.set_threads(threads);
    let start = Instant::now();
    let now = move || start.elapsed().as_secs_f64() * 1e3;
    let cal = calibrate(&mut model, &now, 5.0).unwrap_or_else(|e| fail(&e.to_string()));
    println!(
        "{path}: isa {}, {} thread(s); calibration took {:.0} ms; rest of the pass {:.3} ms",
        cal.isa, cal.threads, cal.took_ms, cal.other_ms
    );
    println!("| width | predicted ms | measured ms | predicted / measured | per-layer ms | per-layer / measured |\n|---|---|---|---|---|---|");
    let input = vec![0.5f32; anybit::tensor::numel(model.input_shape()).unwrap_or(0)];
    // Measured in rounds over the widths for 100 ms per width, each width's passes read as the
    // calibration reads them (policy::typical_ms): a burst of load from elsewhere during one width's
    // turn would otherwise read as that width being slow.
    let widths: Vec<anybit::Bits> = model.widths().iter().map(|w| w.w).collect();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); widths.len()];
    let run = |model: &mut Model, w: anybit::Bits| {
        model.set_width(w).unwrap_or_else(|e| fail(&e.to_string()));
        let t0 = now();
        model.run(&input).unwrap_or_else(|e| fail(&e.to_string()));
        now() - t0
    };
    for &w in &widths {
        run(&mut model, w);
    }
    let t = now();
    while now() - t < 100.0 * widths.len() as f64 {
        for (i, &w) in widths.iter().enumerate() {
            samples[i].push(run(&mut model, w));
        }
    }
    let mut worst: f64 = 0.0;
    for (&w, s) in widths.iter().zip(&samples) {
        let best = anybit::policy::typical_ms(s);
        let p = cal.predict_ms(w).unwrap_or(f64::NAN);
        let l = cal.per_layer_ms(w).unwrap_or(f64::NAN);
        worst = worst.max((p / best - 1.0).abs());
        println!("| {w} | {p:.3} | {best:.3} | {:.2} | {l:.3} | {:.2} |", p / best, l / best);
    }
    println!("largest error: {:.0}%", worst * 100.0);
}

fn fail(msg: &str) -> ! {
    eprintln!("policy_check: {msg}");
    std::process::exit(1)
}
