//! The `.anybit` container on valid files: round trip, bit-plane packing against a scalar
//! reference, tensor order, the prefix property used by progressive loading, and a golden file.
//! Hostile input lives in format_hostile.rs.

mod format_support;

use std::collections::BTreeMap;

use anybit::format::{self, plane_name, F32Tensor, Graph, Node, Op, Width};
use anybit::quant::{derive_code, planes_needed};
use anybit::{Bits, ErrorKind};
use format_support::*;
use safetensors::{Dtype, SafeTensors};

#[test]
fn round_trip_keeps_graph_codes_and_tensors() {
    let g = graph();
    for seed in 0..20 {
        let codes = codes(seed);
        let tensors = tensors(&g, seed + 100);
        let bytes = format::write(&g, &codes, &tensors).unwrap();
        let m = format::read(&bytes).unwrap();
        assert!(m.graph().sha256.is_some());
        assert_eq!(file_layers(&m), given_layers(&codes));
        assert_eq!(unsigned(m.graph().clone()), stored_graph());
        assert_eq!((m.codes().to_vec(), m.fixed8().to_vec()), (plane_codes(&codes), fixed_codes(&codes)));
        assert_eq!(m.tensors(), &tensors);
        assert_eq!(m.planes_present(), 8);
    }
}

#[test]
fn codes_may_be_given_without_padding() {
    let g = graph();
    let full = codes(3);
    let bytes = format::write(&g, &full[..92], &tensors(&g, 4)).unwrap();
    assert_eq!(file_layers(&format::read(&bytes).unwrap()), given_layers(&full));
}

#[test]
fn layer_codes_and_tensor_lookup() {
    let g = graph();
    let codes = codes(5);
    let m = format::read(&format::write(&g, &codes, &tensors(&g, 6)).unwrap()).unwrap();
    let Op::Conv2d { weight, .. } = &m.graph().nodes[4].op else { panic!() };
    assert_eq!(m.layer_codes(weight).unwrap(), &codes[40..76]);
    let Op::Dense { weight } = &m.graph().nodes[7].op else { panic!() };
    assert_eq!(m.layer_codes(weight).unwrap(), &codes[80..92]);
    assert_eq!(m.tensor("bn1", Bits::new(4).unwrap(), "scale").unwrap().shape, vec![4]);
    assert_eq!(m.tensor("bn1", Bits::new(3).unwrap(), "scale").unwrap_err().kind(), ErrorKind::BadGraph);
}

/// Each plane, read with the safetensors crate alone, holds bit k of code i at bit i % 8 of
/// byte i / 8; the fixed8 tensor holds the fixed 8-bit layers' codes whole.
#[test]
fn planes_match_scalar_packing() {
    let g = graph();
    for seed in 0..10 {
        let codes = codes(seed);
        let bytes = format::write(&g, &codes, &tensors(&g, 0)).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let fixed = st.tensor(format::FIXED8).unwrap();
        assert_eq!((fixed.dtype(), fixed.data()), (Dtype::U8, &fixed_codes(&codes)[..]));
        let codes = plane_codes(&codes);
        for bit in 0..8u8 {
            let plane = st.tensor(&plane_name(bit)).unwrap();
            assert_eq!(plane.dtype(), Dtype::U8);
            assert_eq!(plane.shape(), &[5]);
            for (i, &c) in codes.iter().enumerate() {
                let stored = (plane.data()[i / 8] >> (i % 8)) & 1;
                assert_eq!(stored, (c >> bit) & 1, "seed {seed} bit {bit} code {i}");
            }
        }
    }
}

/// F32 tensors first, then the fixed8 codes, then planes 7, 6, ..., 0, each starting where the
/// previous ends.
#[test]
fn data_section_order_is_f32_then_planes_msb_first() {
    let bytes = file();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let names = meta.offset_keys();
    let n_f32 = names.len() - 9;
    for name in &names[..n_f32] {
        assert_eq!(meta.info(name).unwrap().dtype, Dtype::F32, "{name}");
    }
    assert_eq!(names[n_f32], format::FIXED8);
    for (k, name) in names[n_f32 + 1..].iter().enumerate() {
        assert_eq!(*name, plane_name(7 - k as u8));
    }
    let mut end = 0;
    for name in &names {
        let (s, e) = meta.info(name).unwrap().data_offsets;
        assert_eq!(s, end, "{name} is not contiguous");
        end = e;
    }
}

#[test]
fn prefixes_hold_the_top_planes() {
    let g = graph();
    let codes = codes(7);
    let bytes = format::write(&g, &codes, &tensors(&g, 8)).unwrap();
    let hlen = format::header_len(&bytes[..9]).unwrap();
    let header = &bytes[..hlen];
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(hlen, 8 + n);
    assert_eq!(format::prefix_len(header, 8).unwrap(), bytes.len());
    // 0 planes: header, F32 tensors and fixed8 codes end where the first plane starts.
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let p7 = meta.info(&plane_name(7)).unwrap().data_offsets.0;
    assert_eq!(format::prefix_len(header, 0).unwrap(), hlen + p7);

    for p in 1..=8u8 {
        let end = format::prefix_len(header, p).unwrap();
        assert_eq!(end, hlen + p7 + 5 * p as usize);
        let m = format::read_prefix(&bytes[..end], p).unwrap();
        assert_eq!(m.planes_present(), p);
        assert_eq!(unsigned(m.graph().clone()), stored_graph());
        assert_eq!(m.tensors().len(), tensors(&g, 8).len());
        // Fixed 8-bit layers are whole in every prefix; the others have their top p bits.
        assert_eq!(m.fixed8(), fixed_codes(&codes));
        let mask = !((1u16 << (8 - p)) - 1) as u8;
        for (i, (&got, &want)) in m.codes().iter().zip(&plane_codes(&codes)).enumerate() {
            assert_eq!(got, want & mask, "p {p} code {i}");
        }
        // A partial next plane is ignored, and more planes than present is an error.
        if p < 8 {
            let m2 = format::read_prefix(&bytes[..end + 3], p).unwrap();
            assert_eq!(m2.planes_present(), p);
            assert_eq!(m2.codes(), m.codes());
            let e = format::read_prefix(&bytes[..end + 4], p + 1).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Truncated);
            assert_eq!(format::read(&bytes[..end]).unwrap_err().kind(), ErrorKind::Truncated);
        }
    }
}

/// The point of the order: b-bit codes derived from the first planes_needed(b) planes equal
/// those derived from the whole file.
#[test]
fn prefix_codes_derive_the_same_narrow_codes() {
    let g = graph();
    for seed in 0..10 {
        let codes = codes(seed);
        let bytes = format::write(&g, &codes, &tensors(&g, 0)).unwrap();
        for b in Bits::all_desc() {
            let p = planes_needed(b);
            let end = format::prefix_len(&bytes, p).unwrap();
            let m = format::read_prefix(&bytes[..end], p).unwrap();
            for (&got, &want) in m.codes().iter().zip(&plane_codes(&codes)) {
                assert_eq!(
                    derive_code(got, b),
                    derive_code(want, b),
                    "seed {seed} b {b} c8 {want}"
                );
            }
        }
    }
}

#[test]
fn prefix_len_needs_only_the_header() {
    let bytes = file();
    let hlen = format::header_len(&bytes).unwrap();
    assert_eq!(
        format::prefix_len(&bytes[..hlen], 3).unwrap(),
        format::prefix_len(&bytes, 3).unwrap()
    );
    assert_eq!(format::prefix_len(&bytes[..hlen - 1], 3).unwrap_err().kind(), ErrorKind::Truncated);
    assert_eq!(format::prefix_len(&bytes, 9).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(format::read_prefix(&bytes, 0).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(format::read_prefix(&bytes, 9).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert!(hlen <= format::HEADER_PROBE_LEN);
}

/// A model without quantized layers has empty planes; every prefix holding the F32 tensors is
/// the whole file.
#[test]
fn model_without_quantized_layers() {
    let g = Graph {
        format: "anybit".into(),
        version: 1,
        name: "affine only".into(),
        input_shape: vec![1, 1, 2],
        text: None,
        labels: None,
        widths: vec![Width::new(3, 5).unwrap()],
        nodes: vec![
            Node { name: "bn".into(), inputs: vec!["input".into()], op: Op::Affine },
            Node {
                name: "clamp".into(),
                inputs: vec!["bn".into()],
                op: Op::Clamp { min: -1.0, max: 1.0 },
            },
        ],
        task: None,
        eval: vec![],
        sha256: None,
    };
    let mut t = BTreeMap::new();
    t.insert("bn.w3.scale".to_string(), F32Tensor { shape: vec![2], data: vec![1.0, -2.0] });
    t.insert("bn.w3.bias".to_string(), F32Tensor { shape: vec![2], data: vec![0.5, 0.0] });
    let bytes = format::write(&g, &[], &t).unwrap();
    let m = format::read(&bytes).unwrap();
    let stored = Graph { version: format::version_needed(&g), ..g };
    assert_eq!((unsigned(m.graph().clone()), m.codes().len(), m.planes_present(), m.tensors().clone()), (stored, 0, 8, t));
    assert_eq!(format::prefix_len(&bytes, 1).unwrap(), bytes.len());
}

#[test]
fn write_rejects_what_read_would() {
    let g = graph();
    let (codes, t) = (codes(1), tensors(&g, 2));
    let kind = |r: anybit::Result<Vec<u8>>| r.unwrap_err().kind();
    assert_eq!(kind(format::write(&g, &codes[..91], &t)), ErrorKind::InvalidArgument);
    assert_eq!(
        kind(format::write(&g, &[codes.clone(), vec![0]].concat(), &t)),
        ErrorKind::InvalidArgument
    );

    let mut missing = t.clone();
    missing.remove("fc.w2.bias");
    assert_eq!(kind(format::write(&g, &codes, &missing)), ErrorKind::BadGraph);

    let mut extra = t.clone();
    extra.insert("relu1.w8.scale".into(), F32Tensor { shape: vec![1], data: vec![1.0] });
    assert_eq!(kind(format::write(&g, &codes, &extra)), ErrorKind::BadLayout);

    let mut plane = t.clone();
    plane.insert(plane_name(3), F32Tensor { shape: vec![1], data: vec![1.0] });
    assert_eq!(kind(format::write(&g, &codes, &plane)), ErrorKind::InvalidArgument);

    let mut nan = t.clone();
    nan.get_mut("bn1.w1.bias").unwrap().data[2] = f32::NAN;
    assert_eq!(kind(format::write(&g, &codes, &nan)), ErrorKind::BadValue);

    let mut lying = t.clone();
    lying.get_mut("bn1.w1.bias").unwrap().shape = vec![usize::MAX, 2];
    assert_eq!(kind(format::write(&g, &codes, &lying)), ErrorKind::BadShape);

    let mut bad_graph = g.clone();
    bad_graph.widths.push(Width::new(4, 8).unwrap());
    assert_eq!(kind(format::write(&bad_graph, &codes, &t)), ErrorKind::BadGraph);
}

/// The committed fixture is what the writer produces: a format change shows up here, and
/// other tests (model loader, JS) can load the file. Regenerate with ANYBIT_BLESS=1.
#[test]
fn golden_fixture_matches_writer() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny.anybit");
    let bytes = signed_file();
    if std::env::var_os("ANYBIT_BLESS").is_some() {
        std::fs::write(path, &bytes).unwrap();
    }
    let golden = std::fs::read(path).expect("missing fixture: run with ANYBIT_BLESS=1");
    assert!(golden == bytes, "tests/fixtures/tiny.anybit differs from the writer's output");
    let m = format::read(&golden).unwrap();
    assert_eq!(file_layers(&m), given_layers(&codes(1)));
}

/// Version-1 files (every code in the planes, as the first shipped models) still read whole; a
/// prefix of one cannot serve its fixed 8-bit layers, and the model loader says so.
#[test]
fn version_1_files_still_read() {
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-v1.anybit")).unwrap();
    let m = format::read(&bytes).unwrap();
    assert_eq!((m.graph().version, m.fixed8().len()), (1, 0));
    assert_eq!(file_layers(&m), given_layers(&codes(1)));
    assert_eq!(anybit::Model::from_bytes(&bytes).unwrap().loaded_widths(), vec![8, 4, 2, 1]);
    let end = format::prefix_len(&bytes, 2).unwrap();
    let e = anybit::Model::from_prefix(&bytes[..end], 2).err().unwrap();
    assert!(e.kind() == ErrorKind::Truncated && e.message().contains("version-1"), "{e}");
    // Upgraded, it is the writer's version-2 file of the same model.
    assert_eq!(format::upgrade(&bytes).unwrap(), signed_file());
    assert_eq!(format::upgrade(&signed_file()).unwrap(), signed_file());
}

/// The graph as the caller wrote it: the writer adds the digests.
fn unsigned(mut g: Graph) -> Graph {
    g.sha256 = None;
    g
}

/// Replaces the header JSON (keeping the 8-byte length prefix consistent; safetensors pads the
/// header with spaces to a multiple of 8).
fn with_header(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut v: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut v);
    let mut json = serde_json::to_vec(&v).unwrap();
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// Edits the graph JSON held in the header's metadata.
fn with_graph(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    with_header(bytes, |h| {
        let s = h["__metadata__"][format::METADATA_KEY].as_str().unwrap().to_string();
        let mut g: serde_json::Value = serde_json::from_str(&s).unwrap();
        edit(&mut g);
        h["__metadata__"][format::METADATA_KEY] = serde_json::Value::String(g.to_string());
    })
}

#[test]
fn digests_catch_corrupt_tensors_and_planes() {
    let g = graph();
    let bytes = format::write(&g, &codes(3), &tensors(&g, 3)).unwrap();
    let header = format::header_len(&bytes).unwrap();
    let p1 = format::prefix_len(&bytes, 1).unwrap();
    let p2 = format::prefix_len(&bytes, 2).unwrap();
    // A flipped low mantissa bit keeps a tensor value finite: only the digest can tell.
    let mut t = bytes.clone();
    t[header] ^= 1;
    let e = format::read(&t).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert!(e.message().contains("per-width tensors"), "{e}");
    // A flipped bit in plane 6 (the second): refused whole and as a 2-plane prefix, while the
    // 1-plane prefix (which does not include it) still loads.
    let mut c = bytes.clone();
    c[p1] ^= 0x10;
    assert_eq!(format::read(&c).unwrap_err().kind(), ErrorKind::Corrupt);
    let e = format::read_prefix(&c[..p2], 2).unwrap_err();
    assert!(e.kind() == ErrorKind::Corrupt && e.message().contains("bit plane 6"), "{e}");
    assert_eq!(format::read_prefix(&c[..p1], 1).unwrap().planes_present(), 1);
}

/// The SHA-256 of each range, as a caller that hashes for itself (WebCrypto) gives them.
fn digests_of(bytes: &[u8], sections: &[std::ops::Range<usize>]) -> Vec<[u8; 32]> {
    use sha2::{Digest, Sha256};
    sections.iter().map(|r| Sha256::digest(&bytes[r.clone()]).into()).collect()
}

#[test]
fn a_callers_digests_stand_for_hashing_here() {
    let g = graph();
    let bytes = format::write(&g, &codes(5), &tensors(&g, 5)).unwrap();
    let sections = format::Unhashed::parse(&bytes).unwrap().sections();
    // The tensors section, then the 8 planes in file order, tiling the data section.
    assert_eq!(sections.len(), 9);
    assert_eq!(sections[0].start, format::header_len(&bytes).unwrap());
    assert_eq!(sections[1].start, format::prefix_len(&bytes, 0).unwrap());
    assert!(sections.windows(2).all(|w| w[0].end == w[1].start));
    assert_eq!(sections[8].end, bytes.len());
    let digests = digests_of(&bytes, &sections);
    let read = |b: &[u8], d: &[[u8; 32]]| format::Unhashed::parse(b).and_then(|u| u.read(b, Some(d)));
    assert_eq!(read(&bytes, &digests).unwrap(), format::read(&bytes).unwrap());
    // A digest of other bytes than the header's is refused, naming the section.
    for (k, what) in [(0, "per-width tensors"), (1, "bit plane 7"), (8, "bit plane 0")] {
        let mut wrong = digests.clone();
        wrong[k][31] ^= 1;
        let e = read(&bytes, &wrong).unwrap_err();
        assert!(e.kind() == ErrorKind::Corrupt && e.message().contains(what), "section {k}: {e}");
    }
    // Bytes damaged after hashing them right are still caught: the caller's digests are of
    // what it hashed, and the damaged bytes' own digest differs from the header's.
    let mut damaged = bytes.clone();
    damaged[sections[3].start] ^= 4;
    let e = read(&damaged, &digests_of(&damaged, &sections)).unwrap_err();
    assert!(e.kind() == ErrorKind::Corrupt && e.message().contains("bit plane 5"), "{e}");
    // One digest too few or too many: the caller's mistake, not the file's.
    for n in [8, 10] {
        let d: Vec<[u8; 32]> = (0..n).map(|k| digests[k % 9]).collect();
        assert_eq!(read(&bytes, &d).unwrap_err().kind(), ErrorKind::InvalidArgument, "{n} digests");
    }
    // A file without digests has no sections to hash; a truncated one fails at parse.
    let plain = with_graph(&bytes, |g| {
        g.as_object_mut().unwrap().remove("sha256");
    });
    assert!(format::Unhashed::parse(&plain).unwrap().sections().is_empty());
    assert_eq!(read(&plain, &[]).unwrap(), format::read(&plain).unwrap());
    let e = format::Unhashed::parse(&bytes[..bytes.len() - 1]).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Truncated);
}

#[test]
fn a_prefix_is_read_with_a_callers_digests_and_checked_sections_are_not_hashed_again() {
    let g = graph();
    let bytes = format::write(&g, &codes(6), &tensors(&g, 6)).unwrap();
    for planes in 1..=8u8 {
        let end = format::prefix_len(&bytes, planes).unwrap();
        // A partial plane after the complete ones is neither hashed nor read.
        let prefix = &bytes[..if planes < 8 { end + 3 } else { end }];
        let u = format::Unhashed::parse_prefix(prefix, planes).unwrap();
        assert_eq!(u.planes(), planes);
        let sections = u.sections();
        assert_eq!(sections.len(), 1 + planes as usize);
        assert_eq!(sections.last().unwrap().end, end);
        let digests = digests_of(prefix, &sections);
        assert_eq!(u.read(prefix, Some(&digests)).unwrap(), format::read_prefix(prefix, planes).unwrap());
        // Fewer planes than asked for is a truncation, as for read_prefix.
        if planes > 1 {
            let short = format::prefix_len(&bytes, planes - 1).unwrap();
            assert_eq!(format::Unhashed::parse_prefix(&bytes[..short], planes).err().unwrap().kind(), ErrorKind::Truncated);
        }
    }
    assert_eq!(format::Unhashed::parse_prefix(&bytes, 0).err().unwrap().kind(), ErrorKind::InvalidArgument);
    assert_eq!(format::Unhashed::parse_prefix(&bytes, 9).err().unwrap().kind(), ErrorKind::InvalidArgument);

    // Sections an earlier read checked are skipped: with the first 3 (tensors, planes 7 and 6)
    // counted as checked, damage in plane 6 goes unseen, damage in plane 5 does not.
    let end = format::prefix_len(&bytes, 4).unwrap();
    let sections = format::Unhashed::parse_prefix(&bytes[..end], 4).unwrap().sections();
    let after = |b: &[u8], checked: usize, d: Option<&[[u8; 32]]>| format::Unhashed::parse_prefix(b, 4).and_then(|u| u.read_after(b, checked, d));
    let mut in_checked = bytes[..end].to_vec();
    in_checked[sections[2].start] ^= 1;
    assert!(after(&in_checked, 3, None).is_ok());
    assert_eq!(after(&in_checked, 0, None).unwrap_err().kind(), ErrorKind::Corrupt);
    let mut in_new = bytes[..end].to_vec();
    in_new[sections[3].start] ^= 1;
    let e = after(&in_new, 3, None).unwrap_err();
    assert!(e.kind() == ErrorKind::Corrupt && e.message().contains("bit plane 5"), "{e}");
    // The caller's digests are of the sections after the checked ones only.
    let rest = digests_of(&bytes[..end], &sections[3..]);
    assert_eq!(after(&bytes[..end], 3, Some(&rest)).unwrap(), format::read_prefix(&bytes[..end], 4).unwrap());
    let e = after(&bytes[..end], 3, Some(&digests_of(&bytes[..end], &sections))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    // More sections counted as checked than the bytes hold is the caller's mistake.
    assert_eq!(after(&bytes[..end], 6, None).unwrap_err().kind(), ErrorKind::InvalidArgument);
}

#[test]
fn files_without_digests_load_and_malformed_digests_are_refused() {
    let g = graph();
    let bytes = format::write(&g, &codes(4), &tensors(&g, 4)).unwrap();
    let plain = with_graph(&bytes, |g| {
        g.as_object_mut().unwrap().remove("sha256");
    });
    let m = format::read(&plain).unwrap();
    assert_eq!((m.graph().sha256.clone(), file_layers(&m)), (None, given_layers(&codes(4))));
    let short = with_graph(&bytes, |g| g["sha256"]["planes"].as_array_mut().unwrap().truncate(7));
    assert_eq!(format::read(&short).unwrap_err().kind(), ErrorKind::BadGraph);
    let not_hex = with_graph(&bytes, |g| g["sha256"]["tensors"] = serde_json::Value::String("z".repeat(64)));
    assert_eq!(format::read(&not_hex).unwrap_err().kind(), ErrorKind::BadGraph);
    let wrong = with_graph(&bytes, |g| g["sha256"]["tensors"] = serde_json::Value::String("0".repeat(64)));
    assert_eq!(format::read(&wrong).unwrap_err().kind(), ErrorKind::Corrupt);
    // Hex digits of either case spell the same digest; one digit off in the last byte does not.
    let upper = with_graph(&bytes, |g| {
        for d in g["sha256"]["planes"].as_array_mut().unwrap() {
            *d = serde_json::Value::String(d.as_str().unwrap().to_uppercase());
        }
    });
    assert_eq!(file_layers(&format::read(&upper).unwrap()), given_layers(&codes(4)));
    let last_digit = with_graph(&bytes, |g| {
        let d = g["sha256"]["planes"][7].as_str().unwrap().to_string();
        let flipped = if d.ends_with('0') { '1' } else { '0' };
        g["sha256"]["planes"][7] = serde_json::Value::String(format!("{}{flipped}", &d[..63]));
    });
    assert_eq!(format::read(&last_digit).unwrap_err().kind(), ErrorKind::Corrupt);
}
