//! `Model::memory_bytes`, the figure the precision policy's memory cap compares, against what
//! the model really holds: a counting global allocator tracks live heap bytes and their peak
//! while a model loads at a width and runs. One test in this binary, so nothing else allocates
//! meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use anybit::Model;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn add(n: isize) {
    let now = LIVE.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(now, Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        add(l.size() as isize);
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        add(l.size() as isize);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        add(new as isize - l.size() as isize);
        unsafe { System.realloc(p, l, new) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        add(-(l.size() as isize));
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

const MODELS: &[(&str, &[u8])] = &[
    ("mnist", include_bytes!("../../models/mnist.anybit")),
    ("fashion-mnist", include_bytes!("../../models/fashion-mnist.anybit")),
    ("mnist-wide", include_bytes!("../../fixtures/mnist-wide.anybit")),
];

#[test]
fn memory_bytes_matches_what_a_model_holds_and_peaks_at() {
    for &(name, bytes) in MODELS {
        let mut widths: Vec<anybit::Bits> = Model::from_bytes(bytes).unwrap().widths().iter().map(|w| w.w).collect();
        widths.sort_unstable_by(|a, b| b.cmp(a));
        let mut by_width = Vec::new();
        for &w in &widths {
            let base = LIVE.load(Relaxed);
            let mut model = Model::from_bytes(bytes).unwrap();
            model.set_width(w).unwrap();
            let input = vec![0.5f32; anybit::tensor::numel(model.input_shape()).unwrap()];
            let input_bytes = input.capacity() * 4;
            drop(model.run(&input).unwrap()); // the scratch buffers grow to their size
            PEAK.store(LIVE.load(Relaxed), Relaxed);
            drop(model.run(&input).unwrap());
            let held = (PEAK.load(Relaxed) - base) as usize - input_bytes;
            let predicted = model.memory_bytes(w).unwrap();
            let ratio = held as f64 / predicted as f64;
            println!("{name} {w} bits: predicted {predicted} B, held at the peak of a pass {held} B ({ratio:.3})");
            assert!((0.95..=1.1).contains(&ratio), "{name} at {w} bits: predicted {predicted}, held {held}");
            by_width.push(predicted);
            drop(model);
            drop(input);
            assert!(LIVE.load(Relaxed) - base < 4096, "{name}: the model leaked {} bytes", LIVE.load(Relaxed) - base);
        }
        // Narrower widths pack smaller: the figure falls (or holds) from 8 bits down to 1.
        assert!(by_width.windows(2).all(|p| p[1] <= p[0]), "{name}: {by_width:?}");
        assert!(by_width[0] > by_width[by_width.len() - 1], "{name}: 8 and 1 bits cost the same: {by_width:?}");
    }
}
