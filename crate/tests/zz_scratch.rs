use anybit::grad::{gradients, Loss};
use anybit::{Bits, Model};
#[test]
fn scratch() {
    for m in ["mnist", "fashion-mnist"] {
    let bytes = std::fs::read(format!("../models/{m}.anybit")).unwrap();
    let mut model = Model::from_bytes(&bytes).unwrap();
    for w in [8u8, 2, 1] {
        model.set_width(Bits::new(w).unwrap()).unwrap();
        let mut s = 12345u64;
        let mut r = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; (s % 10000) as f32 / 10000.0 };
        let x: Vec<f32> = (0..784).map(|_| r()).collect();
        let v: Vec<f32> = (0..784).map(|_| r() - 0.5).collect();
        let loss = Loss::CrossEntropy { class: 3, away: true };
        let g = gradients(&mut model, &x, &[loss], None, true).unwrap();
        let gv: f32 = g.losses[0].1.iter().zip(&v).map(|(a, b)| a * b).sum();
        for h in [1e-2f32, 1e-3] {
            let f = |model: &mut Model, s: f32| {
                let xs: Vec<f32> = x.iter().zip(&v).map(|(a, b)| a + s * b).collect();
                let t = model.trace(&xs, true).unwrap();
                loss.eval(t.logits()).unwrap().0
            };
            let fd = (f(&mut model, h) - f(&mut model, -h)) / (2.0 * h);
            println!("{m} w{w} h{h}: analytic {gv} fd {fd}");
        }
        let t0 = std::time::Instant::now();
        for _ in 0..20 { gradients(&mut model, &x, &[loss], None, false).unwrap(); }
        let t1 = t0.elapsed().as_secs_f64() / 20.0 * 1e3;
        let t0 = std::time::Instant::now();
        for _ in 0..20 { model.run(&x).unwrap(); }
        let t2 = t0.elapsed().as_secs_f64() / 20.0 * 1e3;
        println!("  grad {t1:.2} ms, forward {t2:.2} ms");
    }}
}
