//! Turning an RGBA image (a canvas `ImageData`) into a model input. Platform-neutral: the JS
//! binding reads the image's size and bytes and calls [`to_input`]; tests run natively
//! (crate/tests/image.rs). An image's size is its columns and rows ("width" means bits).
//!
//! Convention (the one MNIST uses): ink is bright, background dark, values in [0, 1]. Pixels are
//! composited over the background first, so a transparent canvas reads as background whatever the
//! colours; `invert` serves dark-on-light images (a black pen on white paper) by compositing over
//! white and then flipping. `fit: "mnist"` additionally reproduces how the MNIST digits were made:
//! crop to the ink, scale it into a 20x20 box (for a 28x28 input) keeping the aspect ratio, and
//! place it so that its centre of mass is at the centre of the image.

use serde::Deserialize;

use crate::error::{ErrorKind, Result};

/// Largest accepted image side: bounds the float planes allocated here to 4 x 64 MiB.
pub const MAX_SIDE: usize = 4096;

/// Pixels brighter than this count as ink when `fit: "mnist"` looks for the digit.
const INK_THRESHOLD: f32 = 0.1;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Resample the whole image to the model's input size.
    #[default]
    Stretch,
    /// Crop to the ink, fit into the central 20/28 of the input, centre by mass (single channel).
    Mnist,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageOptions {
    /// The image has dark ink on a light background.
    #[serde(default)]
    pub invert: bool,
    #[serde(default)]
    pub fit: Fit,
}

/// Converts `cols x rows` RGBA bytes into an NHWC input of `shape = [rows, cols, channels]`
/// (channels = 1 or 3).
pub fn to_input(rgba: &[u8], cols: usize, rows: usize, shape: &[usize], opts: ImageOptions) -> Result<Vec<f32>> {
    if cols == 0 || rows == 0 {
        crate::bail!(ErrorKind::InvalidArgument, "image is empty ({cols}x{rows})");
    }
    if cols > MAX_SIDE || rows > MAX_SIDE {
        crate::bail!(ErrorKind::LimitExceeded, "image {cols}x{rows} is larger than {MAX_SIDE}x{MAX_SIDE}");
    }
    if rgba.len() != cols * rows * 4 {
        crate::bail!(
            ErrorKind::InvalidArgument,
            "image data has {} bytes, a {cols}x{rows} RGBA image has {}",
            rgba.len(),
            cols * rows * 4
        );
    }
    let &[out_rows, out_cols, channels] = shape else {
        crate::bail!(ErrorKind::ShapeMismatch, "images need a model input of [rows, columns, channels], not {shape:?}");
    };
    if out_rows == 0 || out_cols == 0 || out_rows > MAX_SIDE || out_cols > MAX_SIDE {
        crate::bail!(ErrorKind::ShapeMismatch, "model input {shape:?} is not an image size");
    }
    let planes: Vec<Vec<f32>> = match channels {
        1 => vec![plane(rgba, opts.invert, |p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)],
        3 => (0..3).map(|c| plane(rgba, opts.invert, |p| p[c] as f32)).collect(),
        _ => crate::bail!(ErrorKind::ShapeMismatch, "images need 1 or 3 input channels; the model takes {channels}"),
    };
    let resized: Vec<Vec<f32>> = match opts.fit {
        Fit::Stretch => planes.iter().map(|p| resample(p, cols, rows, out_cols, out_rows)).collect(),
        Fit::Mnist => {
            if channels != 1 {
                crate::bail!(ErrorKind::InvalidArgument, "fit \"mnist\" needs a single-channel model, this one takes {channels}");
            }
            vec![fit_mnist(&planes[0], cols, rows, out_cols, out_rows)]
        }
    };
    let mut out = vec![0f32; out_rows * out_cols * channels];
    for (c, p) in resized.iter().enumerate() {
        for (i, &v) in p.iter().enumerate() {
            // Area weights sum to 1 only up to rounding: a resampled white pixel can come out at
            // 1.0000001, which callers that require [0, 1] (attacks) would refuse.
            out[i * channels + c] = v.clamp(0.0, 1.0);
        }
    }
    Ok(out)
}

/// One channel in [0, 1], composited over the background (black, or white when inverting).
fn plane(rgba: &[u8], invert: bool, channel: impl Fn(&[u8]) -> f32) -> Vec<f32> {
    let background = if invert { 1.0 } else { 0.0 };
    rgba.chunks_exact(4)
        .map(|p| {
            let alpha = p[3] as f32 / 255.0;
            let v = (channel(p) / 255.0) * alpha + background * (1.0 - alpha);
            let v = if invert { 1.0 - v } else { v };
            v.clamp(0.0, 1.0)
        })
        .collect()
}

/// For each destination cell along one axis, the source cells it covers and their coverage.
fn axis_weights(src: usize, dst: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let (lo, hi) = (d as f64 * scale, (d + 1) as f64 * scale);
            let mut taps = Vec::new();
            let mut s = lo.floor() as usize;
            while (s as f64) < hi && s < src {
                let cover = (hi.min(s as f64 + 1.0) - lo.max(s as f64)) / scale;
                if cover > 0.0 {
                    taps.push((s, cover as f32));
                }
                s += 1;
            }
            taps
        })
        .collect()
}

/// Area-weighted resampling: each output pixel is the mean of the source area it covers. Exact
/// for downscaling (no aliasing); nearest-like for upscaling, which suits small model inputs.
pub fn resample(src: &[f32], src_cols: usize, src_rows: usize, dst_cols: usize, dst_rows: usize) -> Vec<f32> {
    let (wx, wy) = (axis_weights(src_cols, dst_cols), axis_weights(src_rows, dst_rows));
    let mut rows = vec![0f32; src_rows * dst_cols];
    for y in 0..src_rows {
        for (x, taps) in wx.iter().enumerate() {
            rows[y * dst_cols + x] = taps.iter().map(|&(s, share)| src[y * src_cols + s] * share).sum();
        }
    }
    let mut out = vec![0f32; dst_rows * dst_cols];
    for (y, taps) in wy.iter().enumerate() {
        for x in 0..dst_cols {
            out[y * dst_cols + x] = taps.iter().map(|&(s, share)| rows[s * dst_cols + x] * share).sum();
        }
    }
    out
}

fn fit_mnist(src: &[f32], src_cols: usize, src_rows: usize, dst_cols: usize, dst_rows: usize) -> Vec<f32> {
    let mut out = vec![0f32; dst_cols * dst_rows];
    // Bounding box of the ink.
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..src_rows {
        for x in 0..src_cols {
            if src[y * src_cols + x] > INK_THRESHOLD {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
            }
        }
    }
    if x0 == usize::MAX {
        return out; // no ink: a blank input, as a blank canvas is
    }
    let (ink_cols, ink_rows) = (x1 - x0, y1 - y0);
    let crop: Vec<f32> = (y0..y1).flat_map(|y| src[y * src_cols + x0..y * src_cols + x1].iter().copied()).collect();
    // MNIST: the digit's longer side becomes 20 of 28 pixels.
    let box_side = ((dst_cols.min(dst_rows) as f64) * 20.0 / 28.0).round().max(1.0);
    let scale = box_side / ink_cols.max(ink_rows) as f64;
    let new_cols = ((ink_cols as f64 * scale).round() as usize).clamp(1, dst_cols);
    let new_rows = ((ink_rows as f64 * scale).round() as usize).clamp(1, dst_rows);
    let digit = resample(&crop, ink_cols, ink_rows, new_cols, new_rows);
    // Centre of mass of the scaled digit, moved to the centre of the output.
    let (mut mass, mut mx, mut my) = (0f64, 0f64, 0f64);
    for y in 0..new_rows {
        for x in 0..new_cols {
            let v = digit[y * new_cols + x] as f64;
            mass += v;
            mx += v * (x as f64 + 0.5);
            my += v * (y as f64 + 0.5);
        }
    }
    let (cx, cy) = if mass > 0.0 { (mx / mass, my / mass) } else { (new_cols as f64 / 2.0, new_rows as f64 / 2.0) };
    // Keep the whole digit inside the output: a stroke lost to centring would change the class.
    let ox = ((dst_cols as f64 / 2.0 - cx).round() as i64).clamp(0, (dst_cols - new_cols) as i64) as usize;
    let oy = ((dst_rows as f64 / 2.0 - cy).round() as i64).clamp(0, (dst_rows - new_rows) as i64) as usize;
    for y in 0..new_rows {
        out[(oy + y) * dst_cols + ox..(oy + y) * dst_cols + ox + new_cols].copy_from_slice(&digit[y * new_cols..(y + 1) * new_cols]);
    }
    out
}
