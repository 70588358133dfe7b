//! Tools around the anybit runtime: data loading, the quantization-aware trainer (candle, with
//! fused custom ops), export to `.anybit`, and evaluation through the runtime itself.

pub mod adam;
pub mod attack;
pub mod cf;
pub mod cli;
pub mod data;
pub mod evaluate;
pub mod import;
pub mod export;
pub mod net;
pub mod ops;
pub mod peer;
pub mod rng;
pub mod tokenize;
pub mod train;
pub mod wavelet;

/// glibc hands every large buffer back to the OS, so each tensor op pays page faults and zeroing
/// of fresh pages on every step. Keep freed memory in the process instead.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
