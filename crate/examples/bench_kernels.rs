//! Native kernel benchmark: `cargo run --release -p anybit --example bench_kernels [-- CONFIG_JSON]`
//! (add `--features threads` to measure several threads). Prints the markdown table of
//! `anybit::bench` and, with `--json`, the raw report. The wasm figures come from the
//! same routine through `bench/` (Node and headless Chromium).

use std::time::Instant;

use anybit::bench;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json_out = args.iter().any(|a| a == "--json");
    let config = args.iter().find(|a| !a.starts_with("--")).cloned().unwrap_or_default();
    let start = Instant::now();
    let now = move || start.elapsed().as_secs_f64() * 1e3;
    let report = match bench::run_json(&config, &now) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench_kernels: {e}");
            std::process::exit(1);
        }
    };
    let report: bench::Report = serde_json::from_str(&report).expect("own report parses");
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report).expect("serializes"));
    } else {
        println!("{}", report.to_markdown());
    }
}
