//! [`Isa`]: the instruction sets a kernel can be compiled for. wasm has no run-time feature
//! detection inside a module, so which ones exist is fixed at build time and the JS side picks
//! the binary (`scripts/build-wasm.sh`).

/// Instruction set a kernel is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust; the native path too (LLVM may auto-vectorize it for the host).
    Scalar,
    /// wasm SIMD128 intrinsics.
    Simd128,
    /// wasm SIMD128 plus relaxed SIMD.
    Relaxed,
}

impl Isa {
    /// Every Isa this build can run, slowest first.
    pub fn available() -> Vec<Isa> {
        vec![
            Isa::Scalar,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
            Isa::Relaxed,
        ]
    }

    pub fn best() -> Isa {
        *Isa::available().last().expect("Scalar is always available")
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Simd128 => "simd128",
            Isa::Relaxed => "relaxed",
        }
    }
}
