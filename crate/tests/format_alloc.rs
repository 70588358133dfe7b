//! Bounded allocation: small files that claim huge tensors or layers must fail without
//! allocating more than a small multiple of their length. A counting global allocator records
//! the largest single allocation; this binary holds one test so no other test allocates
//! concurrently.

mod format_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use anybit::format;
use anybit::ErrorKind;
use format_support::*;
use serde_json::{json, Map, Value};

struct Counting;
static LARGEST: AtomicUsize = AtomicUsize::new(0);
static TOTAL: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Relaxed);
        TOTAL.fetch_add(l.size(), Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Relaxed);
        TOTAL.fetch_add(l.size(), Relaxed);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LARGEST.fetch_max(new, Relaxed);
        TOTAL.fetch_add(new, Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Runs `f` and returns (largest single allocation, total bytes allocated) during it.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    LARGEST.store(0, Relaxed);
    TOTAL.store(0, Relaxed);
    let r = f();
    (r, LARGEST.load(Relaxed), TOTAL.load(Relaxed))
}

fn assert_bounded(what: &str, bytes: &[u8], expect: ErrorKind) {
    let ((), largest, total) = measure(|| {
        let e = format::read(bytes).unwrap_err();
        assert_eq!(e.kind(), expect, "{what}: {e}");
        let e = format::read_prefix(bytes, 1).unwrap_err();
        assert_eq!(e.kind(), expect, "{what} (prefix): {e}");
    });
    // The JSON parsers keep a few copies of strings and the graph; 64x the file is far below
    // any claimed size here (gigabytes) and above what parsing a small header needs.
    let limit = 64 * bytes.len() + 4096;
    assert!(
        largest <= limit,
        "{what}: a {largest}-byte allocation for a {}-byte file",
        bytes.len()
    );
    assert!(total <= 8 * limit, "{what}: {total} bytes allocated for a {}-byte file", bytes.len());
}

/// A bare container: header object and data, written directly.
fn container(tensors: Value, graph: Value, data: &[u8]) -> Vec<u8> {
    let mut h: Map<String, Value> = tensors.as_object().unwrap().clone();
    h.insert("__metadata__".into(), json!({"anybit": graph.to_string()}));
    raw_join(&h, data)
}

#[test]
fn huge_claims_in_small_files_fail_without_huge_allocations() {
    let affine_graph = |c: u64| {
        json!({"format": "anybit", "version": 1, "name": "x", "input_shape": [1, 1, c.min(1 << 20)],
               "widths": [{"w": 8, "a": 8}],
               "nodes": [{"name": "a", "inputs": ["input"], "op": {"type": "affine"}}]})
    };
    // A ~1 KiB file whose table claims a 1e9-element F32 tensor (offsets consistent with it).
    let n: u64 = 1_000_000_000;
    let planes = |at: u64| {
        let mut m = Map::new();
        for b in (0..8u8).rev() {
            m.insert(
                format::plane_name(b),
                json!({"dtype": "U8", "shape": [0], "data_offsets": [at, at]}),
            );
        }
        m
    };
    let mut t = planes(8 * n);
    t.insert(
        "a.w8.scale".into(),
        json!({"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}),
    );
    t.insert(
        "a.w8.bias".into(),
        json!({"dtype": "F32", "shape": [n], "data_offsets": [4 * n, 8 * n]}),
    );
    let f = container(Value::Object(t), affine_graph(n), &[0; 16]);
    assert!(f.len() < 1200, "{}", f.len());
    // Rejected by the channel limit before anything is read.
    assert_bounded("1e9-channel affine", &f, ErrorKind::BadShape);

    // Within the channel limit but still far beyond the file: truncated.
    let c: u64 = 1 << 16;
    let mut t = planes(8 * c);
    t.insert(
        "a.w8.scale".into(),
        json!({"dtype": "F32", "shape": [c], "data_offsets": [0, 4 * c]}),
    );
    t.insert(
        "a.w8.bias".into(),
        json!({"dtype": "F32", "shape": [c], "data_offsets": [4 * c, 8 * c]}),
    );
    assert_bounded(
        "65536-channel affine",
        &container(Value::Object(t), affine_graph(c), &[0; 16]),
        ErrorKind::Truncated,
    );

    // A dense layer of 2^30 codes: 2^27-byte planes claimed, none present.
    let codes: u64 = 1 << 30;
    let dense_graph = json!({"format": "anybit", "version": 1, "name": "x", "input_shape": [1, 1, 1],
        "widths": [{"w": 8, "a": 8}],
        "nodes": [{"name": "d", "inputs": ["input"],
                   "op": {"type": "dense", "weight": {"shape": [1, codes], "code_offset": 0, "precision": "model"}}}]});
    let mut t = Map::new();
    t.insert("d.w8.wscale".into(), json!({"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}));
    t.insert("d.w8.clip".into(), json!({"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}));
    let plane = codes / 8;
    for (k, b) in (0..8u8).rev().enumerate() {
        let s = 8 + k as u64 * plane;
        t.insert(
            format::plane_name(b),
            json!({"dtype": "U8", "shape": [plane], "data_offsets": [s, s + plane]}),
        );
    }
    let f = container(Value::Object(t), dense_graph, &[0, 0, 0, 0, 0, 0, 0x80, 0x3f]);
    assert_bounded("2^30-code dense", &f, ErrorKind::Truncated);
    // The header alone is valid: the progressive loader may ask how much to fetch.
    let ((), largest, _) = measure(|| {
        let end = format::prefix_len(&f, 1).unwrap();
        assert_eq!(end, format::header_len(&f).unwrap() + 8 + plane as usize);
    });
    assert!(largest <= 64 * f.len());

    // A ~200-byte file with one 1e9-element tensor and nothing else.
    let mut t = Map::new();
    t.insert("x".into(), json!({"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}));
    let f = container(Value::Object(t), json!({"format": "anybit", "version": 1}), &[0; 8]);
    assert!(f.len() < 256, "{}", f.len());
    assert_bounded("200-byte file", &f, ErrorKind::BadGraph);

    // Header length claims 16 MiB of JSON in a 100-byte file.
    let mut f = vec![0u8; 100];
    f[..8].copy_from_slice(&(16u64 << 20).to_le_bytes());
    f[8] = b'{';
    assert_bounded("16 MiB header claim", &f, ErrorKind::Truncated);

    // Codes of the valid fixture: allocation stays proportional to a real file too.
    let valid = file();
    let (m, largest, _) = measure(|| format::read(&valid).unwrap());
    assert_eq!((m.codes().len(), m.fixed8().len()), (40, 52));
    assert!(largest <= 8 * valid.len(), "{largest}");
}
