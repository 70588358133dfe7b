//! The JavaScript API (wasm-bindgen). One build of the crate per variant (scalar, simd, relaxed,
//! threads; scripts/build-wasm.sh); the same API in each, so a loader can pick any of them.
//!
//! ```js
//! import init, { Session, buildInfo } from './pkg/dist/simd/anybit.js';
//! await init();
//! const s = Session.load(new Uint8Array(await (await fetch('models/mnist.anybit')).arrayBuffer()));
//! s.setWidth(2);
//! const { probabilities, top, ms } = s.run(new Float32Array(28 * 28));
//! ```
//!
//! Errors are thrown as JS `Error` objects with `name = "AnybitError"`, a stable `code`
//! (`ErrorKind::code`) and a `message`.
//!
//! This module only converts: JS values into the crate's types and back. What a session does
//! lives in crate/src/session/, image preprocessing in crate/src/image.rs; here are the thread
//! pool, the build facts and what the platform says about the device (platform.rs).

mod attack;
mod platform;
mod session;

use serde::Serialize;
use wasm_bindgen::prelude::*;

pub use session::{Session, Unhashed};

use crate::error::{Error, ErrorKind};

pub use platform::now_ms;

/// Converts a runtime error into the JS exception the API documents.
pub(crate) fn js_error(e: Error) -> JsValue {
    let err = js_sys::Error::new(e.message());
    err.set_name("AnybitError");
    // Reflect::set on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&err, &"code".into(), &e.code().into());
    err.into()
}

pub(crate) fn invalid(message: impl Into<String>) -> JsValue {
    js_error(Error::new(ErrorKind::InvalidArgument, message))
}

/// A JS number that counts something (threads, planes, pixels): a non-negative integer; the
/// range is for whoever takes it to check.
pub(crate) fn count_arg(value: f64, what: &str) -> Result<usize, JsValue> {
    if value.fract() != 0.0 || !(0.0..=u32::MAX as f64).contains(&value) {
        return Err(invalid(format!("{what} must be a non-negative integer, got {value}")));
    }
    Ok(value as usize)
}

/// Serializes plain data (no Maps: objects stay objects, u64 stay numbers).
pub(crate) fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| invalid(format!("cannot convert a result to JavaScript: {e}")))
}

/// The variant this binary was compiled as; must match the folder name scripts/build-wasm.sh uses.
pub const VARIANT: &str = if cfg!(feature = "threads") {
    "threads"
} else if cfg!(target_feature = "relaxed-simd") {
    "relaxed"
} else if cfg!(target_feature = "simd128") {
    "simd"
} else {
    "scalar"
};

#[cfg(feature = "threads")]
static POOL_THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Threads in the rayon pool started by [`init_threads`]; 1 before that or without threads.
pub(crate) fn pool_threads() -> usize {
    #[cfg(feature = "threads")]
    {
        POOL_THREADS.load(std::sync::atomic::Ordering::Relaxed).max(1)
    }
    #[cfg(not(feature = "threads"))]
    {
        1
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildInfoJs {
    variant: &'static str,
    simd: bool,
    relaxed: bool,
    threads: bool,
    /// Threads available to a run right now (the pool size once `initThreads` resolved).
    thread_count: usize,
    /// Kernel instruction set the runtime uses (`kernels::Isa::best`).
    isa: &'static str,
    version: &'static str,
}

/// `{variant, simd, relaxed, threads, threadCount, isa, version}` of this binary.
#[wasm_bindgen(js_name = buildInfo)]
pub fn build_info() -> Result<JsValue, JsValue> {
    to_js(&BuildInfoJs {
        variant: VARIANT,
        simd: cfg!(target_feature = "simd128"),
        relaxed: cfg!(target_feature = "relaxed-simd"),
        threads: cfg!(feature = "threads"),
        thread_count: pool_threads(),
        isa: crate::model::Model::build_info().isa,
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Starts `n` worker threads (threads build only; needs a cross-origin isolated page; called from
/// a worker or from a page's thread, where rayon's locks spin instead of blocking: wasm_sync) and
/// records `n` as the pool size for `buildInfo().threadCount` and for sessions loaded afterwards.
/// The promise resolves once the workers are up (150-400 ms cold in a browser); sessions may load
/// and run before that, on the calling thread alone, and split their passes from then on. If it
/// rejects, the pool is unusable: runs stay on one thread. wasm-bindgen-rayon's own
/// `initThreadPool` is exported as well; it starts the same pool without recording its size and
/// must be awaited before any run.
#[cfg(feature = "threads")]
#[wasm_bindgen(js_name = initThreads)]
pub fn init_threads(n: usize) -> Result<js_sys::Promise, JsValue> {
    if n == 0 || n > 256 {
        return Err(invalid(format!("thread count {n} is outside 1..=256")));
    }
    use std::sync::atomic::Ordering::Relaxed;
    if POOL_THREADS.compare_exchange(0, n, Relaxed, Relaxed).is_err() {
        return Err(invalid("the thread pool is already started; it can be started once per instance"));
    }
    crate::kernels::set_pool_ready(false);
    let ready = Closure::once(|_: JsValue| crate::kernels::set_pool_ready(true));
    let started = wasm_bindgen_rayon::init_thread_pool(n).then(&ready);
    // Runs once, when the pool is up; a pool that never comes up keeps this small closure.
    ready.forget();
    Ok(started)
}

/// Where a model file's pieces lie, from its first bytes (at least 9): `{headerLen}` alone while
/// fewer than `headerLen` bytes are given (fetch that many and ask again), else `{headerLen,
/// planesStart, planeLen, prefixEnds, fileLen}` where `prefixEnds[p]` ends the prefix holding the
/// first `p` (0..=8) bit planes: fetch `bytes=0-(prefixEnds[p]-1)` to run widths up to `p` bits.
#[wasm_bindgen]
pub fn layout(first_bytes: &[u8]) -> Result<JsValue, JsValue> {
    use crate::format::{HeaderRead, Layout};
    match Layout::read(first_bytes).map_err(js_error)? {
        HeaderRead::NeedHeader { header_len } => to_js(&serde_json::json!({ "headerLen": header_len })),
        HeaderRead::Complete(layout) => to_js(&layout),
    }
}

/// Runs the kernel benchmark (`bench`) with `config_json` (a JSON `Config`; `"{}"` for
/// the defaults) and returns its report as a JSON string. Timed with `performance.now()`, so the
/// same builds measure in Node, pages and workers (bench/ drives it).
#[wasm_bindgen(js_name = benchKernels)]
pub fn bench_kernels(config_json: &str) -> Result<String, JsValue> {
    crate::bench::run_json(config_json, &now_ms).map_err(js_error)
}
