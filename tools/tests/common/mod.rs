//! Shared by the integration tests: the committed real-data fixture (first 100 MNIST test images).
#![allow(dead_code)] // each test binary uses only some of these

use std::path::PathBuf;

pub mod tiny_bert;

use anybit::Bits;
use anybit_tools::data::{self, Dataset};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn fixture() -> Dataset {
    let dir = root().join("fixtures");
    let img = std::fs::read(dir.join("mnist-t100-images.idx3")).expect("fixtures/mnist-t100-images.idx3");
    let lab = std::fs::read(dir.join("mnist-t100-labels.idx1")).expect("fixtures/mnist-t100-labels.idx1");
    data::from_idx(&img, &lab).expect("fixture parses")
}

/// Widths from plain numbers, as a test writes them.
pub fn bits(v: &[u8]) -> Vec<Bits> {
    v.iter().map(|&b| Bits::new(b).expect("a width in 1..=8")).collect()
}
