//! The session core (crate/src/session/): whole and progressive loads of the shipped models, the
//! layout a progressive loader reads from the header, width and thread switching, refusals,
//! run results (softmax, top classes, labels) and memory per width, on the real test images in
//! fixtures/.

use anybit::format::{HeaderRead, Layout};
use anybit::session::{softmax, Session, TOP_K};
use anybit::{Bits, ErrorKind};

mod common;
use common::{b, clock};

const MNIST: &[u8] = include_bytes!("../../models/mnist.anybit");
const FASHION: &[u8] = include_bytes!("../../models/fashion-mnist.anybit");
const WIDE: &[u8] = include_bytes!("../../fixtures/mnist-wide.anybit");
const MNIST_IMAGES: &[u8] = include_bytes!("../../fixtures/mnist-t100-images.idx3");
const MNIST_LABELS: &[u8] = include_bytes!("../../fixtures/mnist-t100-labels.idx1");
const FASHION_IMAGES: &[u8] = include_bytes!("../../fixtures/fmnist-t100-images.idx3");
const FASHION_LABELS: &[u8] = include_bytes!("../../fixtures/fmnist-t100-labels.idx1");


/// The images of an IDX3 file as model inputs in [0, 1] (rows x cols x 1).
fn images(idx: &[u8]) -> Vec<Vec<f32>> {
    let be = |i: usize| u32::from_be_bytes(idx[i..i + 4].try_into().unwrap()) as usize;
    let (n, pixels) = (be(4), be(8) * be(12));
    (0..n).map(|i| idx[16 + i * pixels..16 + (i + 1) * pixels].iter().map(|&p| p as f32 / 255.0).collect()).collect()
}

fn labels(idx: &[u8]) -> &[u8] {
    &idx[8..]
}

fn complete(first_bytes: &[u8]) -> Layout {
    match Layout::read(first_bytes).unwrap() {
        HeaderRead::Complete(layout) => layout,
        other => panic!("expected a complete layout, got {other:?}"),
    }
}

#[test]
fn whole_load_classifies_the_test_images() {
    for (file, imgs, labs) in [(MNIST, MNIST_IMAGES, MNIST_LABELS), (FASHION, FASHION_IMAGES, FASHION_LABELS)] {
        let mut s = Session::load(file, 1).unwrap();
        assert_eq!((s.width(), s.planes_loaded(), s.threads(), s.kept_prefix_len()), (Bits::MAX, 8, 1, 0));
        let now = clock();
        let right = images(imgs).iter().zip(labels(labs)).filter(|(x, &y)| s.run(x.as_slice(), &now).unwrap().predicted == y as usize).count();
        assert!(right >= 80, "{right} of 100 right at 8 bits");
    }
}

#[test]
fn layout_comes_from_the_header_alone() {
    let l = complete(MNIST);
    assert_eq!(l.file_len, MNIST.len() as u64);
    assert_eq!(l.prefix_ends[0], l.planes_start);
    assert_eq!(l.prefix_ends[8], l.file_len);
    assert!(l.header_len < l.planes_start && l.plane_len > 0);
    assert_eq!(complete(&MNIST[..l.header_len as usize]), l);
    // Fewer bytes than the header: only how many to fetch.
    assert_eq!(Layout::read(&MNIST[..9]).unwrap(), HeaderRead::NeedHeader { header_len: l.header_len });
    assert_eq!(Layout::read(&MNIST[..4]).unwrap_err().kind(), ErrorKind::Truncated);
    assert_eq!(Layout::read(b"12345678x").unwrap_err().kind(), ErrorKind::BadMagic);
    for w in 1..=8 {
        assert_eq!(l.bytes_for(b(w)), l.prefix_ends[w as usize]);
    }
}

#[test]
fn progressive_load_runs_as_the_whole_file() {
    for file in [MNIST, WIDE] {
        let l = complete(file);
        let mut whole = Session::load(file, 1).unwrap();
        let narrowest = whole.model().widths().iter().map(|w| w.w).min().unwrap();
        let mut part = Session::load_prefix(&file[..l.bytes_for(narrowest) as usize], narrowest.get(), 1).unwrap();
        assert_eq!(part.planes_loaded(), narrowest.get());
        assert_eq!(part.width(), narrowest);
        assert_eq!(part.kept_prefix_len() as u64, l.bytes_for(narrowest));
        assert_eq!(part.layout(), whole.layout());
        let now = clock();
        let x = &images(MNIST_IMAGES)[0];
        whole.set_width(narrowest).unwrap();
        assert_eq!(part.run(x, &now).unwrap().logits, whole.run(x, &now).unwrap().logits);
        // A wider width needs more planes first.
        assert_eq!(part.set_width(Bits::MAX).unwrap_err().kind(), ErrorKind::Truncated);
        let have = part.kept_prefix_len();
        let four = part.extend(&file[have..l.bytes_for(b(4)) as usize], 4, None).unwrap();
        assert_eq!(four, 4);
        assert_eq!(part.width(), narrowest, "extending keeps the width");
        part.set_width(b(4)).unwrap();
        whole.set_width(b(4)).unwrap();
        assert_eq!(part.run(x, &now).unwrap().logits, whole.run(x, &now).unwrap().logits);
        let have = part.kept_prefix_len();
        assert_eq!(part.extend(&file[have..], 8, None).unwrap(), 8);
        assert_eq!(part.kept_prefix_len(), 0, "nothing is kept once every plane is in");
        part.set_width(Bits::MAX).unwrap();
        whole.set_width(Bits::MAX).unwrap();
        assert_eq!(part.run(x, &now).unwrap().logits, whole.run(x, &now).unwrap().logits);
        assert_eq!(part.extend(&[], 8, None).unwrap_err().kind(), ErrorKind::InvalidArgument);
    }
}

#[test]
fn a_bad_piece_is_refused_and_the_session_stays() {
    let l = complete(MNIST);
    let mut part = Session::load_prefix(&MNIST[..l.prefix_ends[1] as usize], 1, 1).unwrap();
    let end = l.prefix_ends[2] as usize;
    let mut bad = MNIST[l.prefix_ends[1] as usize..end].to_vec();
    bad[0] ^= 1;
    assert_eq!(part.extend(&bad, 2, None).unwrap_err().kind(), ErrorKind::Corrupt);
    assert_eq!(part.extend(&MNIST[l.prefix_ends[1] as usize..end - 1], 2, None).unwrap_err().kind(), ErrorKind::Truncated);
    assert_eq!(part.planes_loaded(), 1);
    assert_eq!(part.extend(&MNIST[l.prefix_ends[1] as usize..end], 2, None).unwrap(), 2);
}

#[test]
fn extend_checks_the_planes_it_adds_with_a_callers_digests() {
    use sha2::{Digest, Sha256};
    let l = complete(MNIST);
    let (one, three) = (l.prefix_ends[1] as usize, l.prefix_ends[3] as usize);
    let mut part = Session::load_prefix(&MNIST[..one], 1, 1).unwrap();
    // Three more bytes than two planes: the partial third is not checked yet.
    let more = &MNIST[one..three + 3];
    let ranges = part.extend_planes(more.len()).unwrap();
    assert_eq!(ranges, vec![one..l.prefix_ends[2] as usize, l.prefix_ends[2] as usize..three]);
    let digest = |r: &std::ops::Range<usize>| -> [u8; 32] { Sha256::digest(&MNIST[r.clone()]).into() };
    let digests: Vec<[u8; 32]> = ranges.iter().map(digest).collect();
    // A wrong count, or a digest of other bytes: refused, and the session stays.
    assert_eq!(part.extend(more, 3, Some(&digests[..1])).unwrap_err().kind(), ErrorKind::InvalidArgument);
    let mut wrong = digests.clone();
    wrong[1][0] ^= 1;
    let e = part.extend(more, 3, Some(&wrong)).unwrap_err();
    assert!(e.kind() == ErrorKind::Corrupt && e.message().contains("bit plane 5"), "{e}");
    assert_eq!(part.planes_loaded(), 1);
    assert_eq!(part.extend(more, 3, Some(&digests)).unwrap(), 3);
    let mut whole = Session::load(MNIST, 1).unwrap();
    let now = clock();
    let x = &images(MNIST_IMAGES)[0];
    part.set_width(b(3)).unwrap();
    whole.set_width(b(3)).unwrap();
    assert_eq!(part.run(x, &now).unwrap().logits, whole.run(x, &now).unwrap().logits);
    // The rest: from the partial plane on, to the end.
    let rest = &MNIST[part.kept_prefix_len()..];
    let ranges = part.extend_planes(rest.len()).unwrap();
    assert_eq!(ranges.len(), 5);
    assert_eq!((ranges[0].start, ranges[4].end), (three, MNIST.len()));
    let digests: Vec<[u8; 32]> = ranges.iter().map(digest).collect();
    assert_eq!(part.extend(rest, 8, Some(&digests)).unwrap(), 8);
    assert_eq!(part.extend_planes(0).unwrap_err().kind(), ErrorKind::InvalidArgument, "a whole file has nothing to extend");
}

#[test]
fn refusals_are_typed() {
    assert_eq!(Session::load(&MNIST[..100], 1).err().unwrap().kind(), ErrorKind::Truncated);
    assert_eq!(Session::load(b"not a model at all", 1).err().unwrap().kind(), ErrorKind::BadMagic);
    assert_eq!(Session::load_prefix(MNIST, 0, 1).err().unwrap().kind(), ErrorKind::InvalidArgument);
    let l = complete(MNIST);
    assert_eq!(Session::load_prefix(&MNIST[..l.prefix_ends[1] as usize - 1], 1, 1).err().unwrap().kind(), ErrorKind::Truncated);
    let mut s = Session::load(MNIST, 1).unwrap();
    let widths: Vec<Bits> = s.model().widths().iter().map(|w| w.w).collect();
    if let Some(missing) = Bits::all_desc().find(|w| !widths.contains(w)) {
        assert_eq!(s.set_width(missing).unwrap_err().kind(), ErrorKind::UnsupportedWidth);
    }
    assert_eq!(s.set_threads(0, 4).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(s.set_threads(5, 4).unwrap_err().kind(), ErrorKind::InvalidArgument);
    let now = clock();
    assert_eq!(s.run(&[0.0; 3], &now).unwrap_err().kind(), ErrorKind::ShapeMismatch);
    assert_eq!(s.run(&[f32::NAN; 784], &now).unwrap_err().kind(), ErrorKind::BadValue);
    assert_eq!(s.run_image(&[0; 12], 2, 2, Default::default(), &now).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(s.decide(&Default::default(), 1).unwrap_err().kind(), ErrorKind::InvalidArgument, "decide before calibrate");
    assert_eq!(s.calibrate(&now, -1.0, 1).unwrap_err().kind(), ErrorKind::InvalidArgument);
}

#[test]
fn widths_and_threads_switch() {
    let mut s = Session::load(MNIST, 1).unwrap();
    let now = clock();
    let x = &images(MNIST_IMAGES)[1];
    let widths: Vec<Bits> = s.model().widths().iter().map(|w| w.w).collect();
    let mut outputs = Vec::new();
    for &w in &widths {
        s.set_width(w).unwrap();
        let r = s.run(x, &now).unwrap();
        assert_eq!((s.width(), r.width), (w, w));
        outputs.push(r.logits);
    }
    assert!(outputs.windows(2).any(|p| p[0] != p[1]), "widths give different outputs");
    s.set_threads(3, 4).unwrap();
    assert_eq!(s.threads(), 3);
    s.set_width(widths[0]).unwrap();
    assert_eq!(s.run(x, &now).unwrap().logits, outputs[0], "threads do not change the result");
}

#[test]
fn calibrate_then_decide() {
    let mut s = Session::load(MNIST, 1).unwrap();
    s.set_threads(1, 1).unwrap();
    let now = clock();
    assert_eq!(s.calibrate(&now, 0.0, 1).unwrap().threads, 1);
    let d = s.decide(&Default::default(), 1).unwrap();
    assert_eq!(d.options.len(), s.model().widths().len());
    let l = s.layout().clone();
    for o in &d.options {
        assert_eq!(o.bytes, Some(l.bytes_for(o.width)));
        assert_eq!(o.memory_bytes, Some(s.model().memory_bytes(o.width).unwrap() as u64));
    }
    assert_eq!(d.options.iter().find(|o| o.width == Bits::MAX).unwrap().bytes, Some(MNIST.len() as u64));
    assert_eq!(s.decide(&Default::default(), 2).unwrap_err().kind(), ErrorKind::InvalidArgument, "another pool");
}

#[test]
fn run_results_are_summarised() {
    let mut s = Session::load(FASHION, 1).unwrap();
    let now = clock();
    let r = s.run(&images(FASHION_IMAGES)[0], &now).unwrap();
    assert_eq!(r.ms, 0.5, "timed with the injected clock");
    assert_eq!(r.probabilities, softmax(&r.logits));
    assert!((r.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert_eq!(r.top.len(), TOP_K);
    assert!(r.top.windows(2).all(|t| t[0].probability >= t[1].probability), "most probable first");
    assert_eq!(r.top[0].index, r.predicted);
    let names = s.model().labels().unwrap();
    for t in &r.top {
        assert_eq!(t.label.as_deref(), Some(names[t.index].as_str()));
        assert_eq!(t.probability, r.probabilities[t.index]);
    }
    assert_eq!(r.label.as_deref(), Some(names[r.predicted].as_str()));
    // An image of the same pixels runs as the floats do.
    let rgba: Vec<u8> = FASHION_IMAGES[16..16 + 784].iter().flat_map(|&v| [v, v, v, 255]).collect();
    assert_eq!(s.run_image(&rgba, 28, 28, Default::default(), &now).unwrap().predicted, r.predicted);
}

// Also as wasm (scripts/wasm-test.sh): the summary a page receives is computed there.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn softmax_is_stable_and_normalised() {
    let p = softmax(&[1000.0, 1000.0, -1000.0]);
    assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6 && p[2] == 0.0, "{p:?}");
    let p = softmax(&[0.0, 1.0, 2.0]);
    let want = [0.09003057, 0.24472847, 0.66524096];
    for (a, b) in p.iter().zip(want) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[test]
fn memory_per_width_counts_the_kept_prefix() {
    let whole = Session::load(WIDE, 1).unwrap();
    let l = complete(WIDE);
    let part = Session::load_prefix(&WIDE[..l.prefix_ends[1] as usize], 1, 1).unwrap();
    let (mw, mp) = (whole.memory_per_width().unwrap(), part.memory_per_width().unwrap());
    assert_eq!(mw.len(), whole.model().widths().len());
    for ((w, m), (pw, pm)) in mw.iter().zip(&mp) {
        assert_eq!(w, pw);
        assert_eq!(*m, whole.model().memory_bytes(*w).unwrap() as u64, "a whole file keeps no bytes");
        assert_eq!(*pm, m + l.bytes_for(*w).max(l.prefix_ends[1]), "width {w}");
    }
}

/// A pass split over threads (im2col, packing, GEMM and epilogue by column blocks: feature
/// `threads`, run by scripts/test.sh's threads step) gives exactly the values of one thread, at
/// every width of every shipped model.
#[test]
fn split_passes_match_one_thread() {
    let x = &images(MNIST_IMAGES)[7];
    for file in [MNIST, FASHION, WIDE] {
        let mut m = anybit::Model::from_bytes(file).unwrap();
        for w in m.loaded_widths() {
            m.set_width(w).unwrap();
            m.set_threads(1);
            let one = m.run(x).unwrap();
            for threads in [2, 3] {
                m.set_threads(threads);
                let many = m.run(x).unwrap();
                assert!(one.iter().zip(&many).all(|(a, b)| a.to_bits() == b.to_bits()), "{w} bits, {threads} threads: {one:?} vs {many:?}");
            }
        }
    }
}
