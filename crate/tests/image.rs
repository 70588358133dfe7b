//! Image preprocessing (crate/src/image.rs): RGBA bytes to model inputs, resampling, the MNIST
//! fit, and typed refusals of bad images. Run natively and as wasm (scripts/wasm-test.sh), where the
//! page's images are converted.

use anybit::image::{resample, to_input, Fit, ImageOptions};
use anybit::ErrorKind;

fn rgba_grey(values: &[u8]) -> Vec<u8> {
    values.iter().flat_map(|&v| [v, v, v, 255]).collect()
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn identity_size_keeps_pixels() {
    let px: Vec<u8> = (0..28 * 28).map(|i| (i * 7 % 256) as u8).collect();
    let out = to_input(&rgba_grey(&px), 28, 28, &[28, 28, 1], ImageOptions::default()).unwrap();
    for (o, &p) in out.iter().zip(&px) {
        assert!((o - p as f32 / 255.0).abs() < 1e-5, "{o} vs {p}");
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
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

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn transparent_is_background_and_invert_flips() {
    // One transparent pixel (whatever its colour) and one opaque black, one opaque white.
    let rgba = [255, 255, 255, 0, 0, 0, 0, 255, 255, 255, 255, 255];
    let plain = to_input(&rgba, 3, 1, &[1, 3, 1], ImageOptions::default()).unwrap();
    assert_eq!(plain, vec![0.0, 0.0, 1.0]);
    let inv = to_input(&rgba, 3, 1, &[1, 3, 1], ImageOptions { invert: true, ..Default::default() }).unwrap();
    assert_eq!(inv, vec![0.0, 1.0, 0.0]);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn rgb_models_get_interleaved_channels() {
    let rgba = [255, 0, 10, 255, 0, 255, 20, 255];
    let out = to_input(&rgba, 2, 1, &[1, 2, 3], ImageOptions::default()).unwrap();
    let want = [1.0, 0.0, 10.0 / 255.0, 0.0, 1.0, 20.0 / 255.0];
    for (o, w) in out.iter().zip(want) {
        assert!((o - w).abs() < 1e-6);
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn mnist_fit_centres_and_scales_the_ink() {
    // A 10x40 bar in the top-left corner of a 200x200 canvas.
    let (cols, rows) = (200, 200);
    let mut px = vec![0u8; cols * rows];
    for y in 5..45 {
        for x in 3..13 {
            px[y * cols + x] = 255;
        }
    }
    let out = to_input(&rgba_grey(&px), cols, rows, &[28, 28, 1], ImageOptions { fit: Fit::Mnist, ..Default::default() }).unwrap();
    let rows: Vec<usize> = (0..28).filter(|&y| (0..28).any(|x| out[y * 28 + x] > 0.5)).collect();
    let cols: Vec<usize> = (0..28).filter(|&x| (0..28).any(|y| out[y * 28 + x] > 0.5)).collect();
    assert_eq!(rows.len(), 20, "longer side scaled to 20 px: {rows:?}");
    assert_eq!(cols.len(), 5, "aspect ratio kept: {cols:?}");
    assert_eq!((rows[0], rows[19]), (4, 23), "vertically centred");
    assert!(cols[0] >= 11 && cols[4] <= 16, "horizontally centred: {cols:?}");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn mnist_fit_of_blank_canvas_is_blank() {
    let out = to_input(&rgba_grey(&[0; 64]), 8, 8, &[28, 28, 1], ImageOptions { fit: Fit::Mnist, ..Default::default() }).unwrap();
    assert!(out.iter().all(|&v| v == 0.0));
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
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
