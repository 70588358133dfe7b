//! Turning an RGBA image (a canvas `ImageData`) into a model input.
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

/// Converts `width x height` RGBA bytes into an NHWC input of `shape = [h, w, c]` (c = 1 or 3).
pub fn to_input(rgba: &[u8], width: usize, height: usize, shape: &[usize], opts: ImageOptions) -> Result<Vec<f32>> {
    if width == 0 || height == 0 {
        crate::bail!(ErrorKind::InvalidArgument, "image is empty ({width}x{height})");
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        crate::bail!(ErrorKind::LimitExceeded, "image {width}x{height} is larger than {MAX_SIDE}x{MAX_SIDE}");
    }
    if rgba.len() != width * height * 4 {
        crate::bail!(
            ErrorKind::InvalidArgument,
            "image data has {} bytes, a {width}x{height} RGBA image has {}",
            rgba.len(),
            width * height * 4
        );
    }
    let &[out_h, out_w, channels] = shape else {
        crate::bail!(ErrorKind::ShapeMismatch, "images need a model input of [height, width, channels], not {shape:?}");
    };
    if out_h == 0 || out_w == 0 || out_h > MAX_SIDE || out_w > MAX_SIDE {
        crate::bail!(ErrorKind::ShapeMismatch, "model input {shape:?} is not an image size");
    }
    let planes: Vec<Vec<f32>> = match channels {
        1 => vec![plane(rgba, opts.invert, |p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)],
        3 => (0..3).map(|c| plane(rgba, opts.invert, |p| p[c] as f32)).collect(),
        _ => crate::bail!(ErrorKind::ShapeMismatch, "images need 1 or 3 input channels; the model takes {channels}"),
    };
    let resized: Vec<Vec<f32>> = match opts.fit {
        Fit::Stretch => planes.iter().map(|p| resample(p, width, height, out_w, out_h)).collect(),
        Fit::Mnist => {
            if channels != 1 {
                crate::bail!(ErrorKind::InvalidArgument, "fit \"mnist\" needs a single-channel model, this one takes {channels}");
            }
            vec![fit_mnist(&planes[0], width, height, out_w, out_h)]
        }
    };
    let mut out = vec![0f32; out_h * out_w * channels];
    for (c, p) in resized.iter().enumerate() {
        for (i, &v) in p.iter().enumerate() {
            out[i * channels + c] = v;
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
pub fn resample(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let (wx, wy) = (axis_weights(sw, dw), axis_weights(sh, dh));
    let mut rows = vec![0f32; sh * dw];
    for y in 0..sh {
        for (x, taps) in wx.iter().enumerate() {
            rows[y * dw + x] = taps.iter().map(|&(s, w)| src[y * sw + s] * w).sum();
        }
    }
    let mut out = vec![0f32; dh * dw];
    for (y, taps) in wy.iter().enumerate() {
        for x in 0..dw {
            out[y * dw + x] = taps.iter().map(|&(s, w)| rows[s * dw + x] * w).sum();
        }
    }
    out
}

fn fit_mnist(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let mut out = vec![0f32; dw * dh];
    // Bounding box of the ink.
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..sh {
        for x in 0..sw {
            if src[y * sw + x] > INK_THRESHOLD {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
            }
        }
    }
    if x0 == usize::MAX {
        return out; // no ink: a blank input, as a blank canvas is
    }
    let (bw, bh) = (x1 - x0, y1 - y0);
    let crop: Vec<f32> = (y0..y1).flat_map(|y| src[y * sw + x0..y * sw + x1].iter().copied()).collect();
    // MNIST: the digit's longer side becomes 20 of 28 pixels.
    let box_side = ((dw.min(dh) as f64) * 20.0 / 28.0).round().max(1.0);
    let scale = box_side / bw.max(bh) as f64;
    let nw = ((bw as f64 * scale).round() as usize).clamp(1, dw);
    let nh = ((bh as f64 * scale).round() as usize).clamp(1, dh);
    let digit = resample(&crop, bw, bh, nw, nh);
    // Centre of mass of the scaled digit, moved to the centre of the output.
    let (mut mass, mut mx, mut my) = (0f64, 0f64, 0f64);
    for y in 0..nh {
        for x in 0..nw {
            let v = digit[y * nw + x] as f64;
            mass += v;
            mx += v * (x as f64 + 0.5);
            my += v * (y as f64 + 0.5);
        }
    }
    let (cx, cy) = if mass > 0.0 { (mx / mass, my / mass) } else { (nw as f64 / 2.0, nh as f64 / 2.0) };
    // Keep the whole digit inside the output: a stroke lost to centring would change the class.
    let ox = ((dw as f64 / 2.0 - cx).round() as i64).clamp(0, (dw - nw) as i64) as usize;
    let oy = ((dh as f64 / 2.0 - cy).round() as i64).clamp(0, (dh - nh) as i64) as usize;
    for y in 0..nh {
        out[(oy + y) * dw + ox..(oy + y) * dw + ox + nw].copy_from_slice(&digit[y * nw..(y + 1) * nw]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn rgba_grey(values: &[u8]) -> Vec<u8> {
        values.iter().flat_map(|&v| [v, v, v, 255]).collect()
    }

    #[wasm_bindgen_test]
    fn identity_size_keeps_pixels() {
        let px: Vec<u8> = (0..28 * 28).map(|i| (i * 7 % 256) as u8).collect();
        let out = to_input(&rgba_grey(&px), 28, 28, &[28, 28, 1], ImageOptions::default()).unwrap();
        for (o, &p) in out.iter().zip(&px) {
            assert!((o - p as f32 / 255.0).abs() < 1e-5, "{o} vs {p}");
        }
    }

    #[wasm_bindgen_test]
    fn downscale_averages_areas() {
        // 4x2 -> 2x1: each output is the mean of a 2x2 block.
        let src = [0.0, 1.0, 0.5, 0.5, 1.0, 0.0, 0.25, 0.75];
        let out = resample(&src, 4, 2, 2, 1);
        assert_eq!(out.len(), 2);
        assert!((out[0] - 0.5).abs() < 1e-6 && (out[1] - 0.5).abs() < 1e-6, "{out:?}");
        // Non-integer ratio: mass is preserved (mean of output == mean of input).
        let src: Vec<f32> = (0..7 * 5).map(|i| (i % 3) as f32 / 2.0).collect();
        let out = resample(&src, 7, 5, 3, 2);
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        assert!((mean(&src) - mean(&out)).abs() < 1e-5);
    }

    #[wasm_bindgen_test]
    fn transparent_is_background_and_invert_flips() {
        // One transparent pixel (whatever its colour) and one opaque black, one opaque white.
        let rgba = [255, 255, 255, 0, 0, 0, 0, 255, 255, 255, 255, 255];
        let plain = to_input(&rgba, 3, 1, &[1, 3, 1], ImageOptions::default()).unwrap();
        assert_eq!(plain, vec![0.0, 0.0, 1.0]);
        let inv = to_input(&rgba, 3, 1, &[1, 3, 1], ImageOptions { invert: true, ..Default::default() }).unwrap();
        assert_eq!(inv, vec![0.0, 1.0, 0.0]);
    }

    #[wasm_bindgen_test]
    fn rgb_models_get_interleaved_channels() {
        let rgba = [255, 0, 10, 255, 0, 255, 20, 255];
        let out = to_input(&rgba, 2, 1, &[1, 2, 3], ImageOptions::default()).unwrap();
        let want = [1.0, 0.0, 10.0 / 255.0, 0.0, 1.0, 20.0 / 255.0];
        for (o, w) in out.iter().zip(want) {
            assert!((o - w).abs() < 1e-6);
        }
    }

    #[wasm_bindgen_test]
    fn mnist_fit_centres_and_scales_the_ink() {
        // A 10x40 bar in the top-left corner of a 200x200 canvas.
        let (w, h) = (200, 200);
        let mut px = vec![0u8; w * h];
        for y in 5..45 {
            for x in 3..13 {
                px[y * w + x] = 255;
            }
        }
        let out = to_input(&rgba_grey(&px), w, h, &[28, 28, 1], ImageOptions { fit: Fit::Mnist, ..Default::default() }).unwrap();
        let rows: Vec<usize> = (0..28).filter(|&y| (0..28).any(|x| out[y * 28 + x] > 0.5)).collect();
        let cols: Vec<usize> = (0..28).filter(|&x| (0..28).any(|y| out[y * 28 + x] > 0.5)).collect();
        assert_eq!(rows.len(), 20, "longer side scaled to 20 px: {rows:?}");
        assert_eq!(cols.len(), 5, "aspect ratio kept: {cols:?}");
        assert_eq!((rows[0], rows[19]), (4, 23), "vertically centred");
        assert!(cols[0] >= 11 && cols[4] <= 16, "horizontally centred: {cols:?}");
    }

    #[wasm_bindgen_test]
    fn mnist_fit_of_blank_canvas_is_blank() {
        let out = to_input(&rgba_grey(&[0; 64]), 8, 8, &[28, 28, 1], ImageOptions { fit: Fit::Mnist, ..Default::default() }).unwrap();
        assert!(out.iter().all(|&v| v == 0.0));
    }

    #[wasm_bindgen_test]
    fn bad_images_are_typed_errors() {
        let opts = ImageOptions::default();
        assert_eq!(to_input(&[], 0, 5, &[28, 28, 1], opts).unwrap_err().kind(), ErrorKind::InvalidArgument);
        assert_eq!(to_input(&[0; 12], 2, 2, &[28, 28, 1], opts).unwrap_err().kind(), ErrorKind::InvalidArgument);
        assert_eq!(to_input(&[0; 16], 2, 2, &[28, 28, 2], opts).unwrap_err().kind(), ErrorKind::ShapeMismatch);
        assert_eq!(to_input(&[0; 16], 2, 2, &[784], opts).unwrap_err().kind(), ErrorKind::ShapeMismatch);
        assert_eq!(to_input(&[], 5000, 1, &[28, 28, 1], opts).unwrap_err().kind(), ErrorKind::LimitExceeded);
        let rgb = ImageOptions { fit: Fit::Mnist, ..Default::default() };
        assert_eq!(to_input(&[0; 16], 2, 2, &[28, 28, 3], rgb).unwrap_err().kind(), ErrorKind::InvalidArgument);
    }
}
