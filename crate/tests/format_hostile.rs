//! Malformed `.anybit` files: every one must give a typed error of the documented kind, never a
//! panic. Files are built by editing the valid fixture with the helpers in format_support.

mod format_support;

use anybit::format;
use anybit::ErrorKind::{self, *};
use format_support::*;
use serde_json::{json, Value};

fn kind_of(bytes: &[u8]) -> ErrorKind {
    match format::read(bytes) {
        Ok(_) => panic!("a malformed file was accepted"),
        Err(e) => {
            assert!(!e.message().is_empty());
            e.kind()
        }
    }
}

/// Also checks that the header-only entry point agrees with `read` about header-level faults.
fn header_kind_of(bytes: &[u8]) -> ErrorKind {
    let k = kind_of(bytes);
    assert_eq!(format::prefix_len(bytes, 8).map(|_| ()).unwrap_err().kind(), k);
    k
}

fn graph_kind(edit: impl FnOnce(&mut Value)) -> ErrorKind {
    header_kind_of(&with_graph(edit))
}

#[test]
fn truncation_at_every_offset_is_truncated() {
    let bytes = file();
    let hlen = format::header_len(&bytes).unwrap();
    let first_plane = format::prefix_len(&bytes, 1).unwrap();
    for len in 0..bytes.len() {
        let cut = &bytes[..len];
        assert_eq!(format::read(cut).unwrap_err().kind(), Truncated, "read, len {len}");
        match format::read_prefix(cut, 1) {
            Ok(m) => assert!(
                len >= first_plane && m.planes_present() as usize == (len - first_plane) / 5 + 1
            ),
            Err(e) => {
                assert!(len < first_plane && e.kind() == Truncated, "read_prefix, len {len}: {e}")
            }
        }
        match format::prefix_len(cut, 4) {
            Ok(_) => assert!(len >= hlen),
            Err(e) => assert!(len < hlen && e.kind() == Truncated, "prefix_len, len {len}: {e}"),
        }
    }
    assert!(format::read(&bytes).is_ok());
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = file();
    bytes.push(0);
    assert_eq!(kind_of(&bytes), BadLayout);
    assert_eq!(format::read_prefix(&bytes, 1).unwrap_err().kind(), BadLayout);
}

#[test]
fn not_an_anybit_file() {
    assert_eq!(kind_of(b""), Truncated);
    assert_eq!(kind_of(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), BadMagic);
    assert_eq!(kind_of(&[0u8; 64]), BadMagic);
    let mut rng = Rng(9);
    for _ in 0..200 {
        let garbage: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
        assert!(format::read(&garbage).is_err());
    }
    // A well-formed header that is not JSON, or JSON of the wrong shape.
    assert_eq!(kind_of(&raw_join_str("{not json}", &[])), BadMagic);
    assert_eq!(kind_of(&raw_join_str("{\"a\": 1}", &[])), BadLayout);
    // A plain safetensors file without the anybit entry.
    let mut p = split(&file());
    p.metadata.remove("anybit");
    assert_eq!(header_kind_of(&p.join()), BadMagic);
    let mut p = split(&file());
    p.metadata.insert("anybit".into(), Value::String("[1, 2]".into()));
    assert_eq!(header_kind_of(&p.join()), BadGraph);
    assert_eq!(graph_kind(|g| g["format"] = json!("onnx")), BadMagic);
}

fn raw_join_str(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// serde_json's recursion limit must turn deep nesting into an error, not a stack overflow
/// (wasm stacks are small).
#[test]
fn deeply_nested_json() {
    let deep = format!("{{\"a\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(kind_of(&raw_join_str(&deep, &[])), BadMagic);
    let mut p = split(&file());
    p.metadata.insert("anybit".into(), Value::String("[".repeat(100_000)));
    assert_eq!(header_kind_of(&p.join()), BadGraph);
    let mut p = split(&file());
    let mut g = p.graph();
    g["name"] = json!(0);
    let s = g
        .to_string()
        .replace("\"name\":0", &format!("\"name\":{}1{}", "[".repeat(50_000), "]".repeat(50_000)));
    p.metadata.insert("anybit".into(), Value::String(s));
    assert_eq!(header_kind_of(&p.join()), BadGraph);
}

#[test]
fn header_length_lies() {
    let bytes = file();
    let set_len = |n: u64| {
        let mut b = bytes.clone();
        b[..8].copy_from_slice(&n.to_le_bytes());
        b
    };
    assert_eq!(kind_of(&set_len(u64::MAX)), LimitExceeded);
    assert_eq!(kind_of(&set_len(format::MAX_HEADER_LEN as u64 + 1)), LimitExceeded);
    assert_eq!(kind_of(&set_len(bytes.len() as u64)), Truncated);
    assert_eq!(kind_of(&set_len(0)), BadMagic);
    let n = format::header_len(&bytes).unwrap() as u64 - 8;
    // Too short cuts the JSON; too long swallows data bytes into it.
    assert_eq!(kind_of(&set_len(n - 8)), BadMagic);
    assert_eq!(kind_of(&set_len(n + 8)), BadMagic);
}

fn offsets_of(h: &serde_json::Map<String, Value>, name: &str) -> (u64, u64) {
    let o = &h[name]["data_offsets"];
    (o[0].as_u64().unwrap(), o[1].as_u64().unwrap())
}

#[test]
fn offsets_that_lie() {
    let bytes = file();
    let edit = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let (mut h, data) = raw_split(&bytes);
        f(&mut h);
        raw_join(&h, &data)
    };
    let p7 = format::plane_name(7);
    let (s7, e7) = offsets_of(&raw_split(&bytes).0, &p7);
    // Overlap: plane 7 also claims the bytes of the tensor before it.
    assert_eq!(header_kind_of(&edit(&|h| h[&p7]["data_offsets"] = json!([s7 - 4, e7]))), BadLayout);
    // Gap.
    assert_eq!(
        header_kind_of(&edit(&|h| h[&p7]["data_offsets"] = json!([s7 + 1, e7 + 1]))),
        BadLayout
    );
    // Size disagrees with shape.
    assert_eq!(
        header_kind_of(&edit(&|h| h[&p7]["data_offsets"] = json!([s7, e7 + 100]))),
        BadLayout
    );
    // Offsets past the end of a 64-bit address space.
    assert_eq!(
        header_kind_of(&edit(&|h| h[&p7]["data_offsets"] = json!([s7, u64::MAX]))),
        BadLayout
    );
    // Two equal-sized planes swap places: the table is consistent but the order is wrong.
    let p6 = format::plane_name(6);
    let swapped = edit(&|h| {
        let (a, b) = (h[&p7]["data_offsets"].clone(), h[&p6]["data_offsets"].clone());
        h[&p7]["data_offsets"] = b;
        h[&p6]["data_offsets"] = a;
    });
    assert_eq!(header_kind_of(&swapped), BadLayout);
    // Every offset shifted: the data section no longer starts at 0.
    let shifted = edit(&|h| {
        for (k, v) in h.iter_mut() {
            if k != "__metadata__" {
                let o = v["data_offsets"].as_array().unwrap();
                let (s, e) = (o[0].as_u64().unwrap(), o[1].as_u64().unwrap());
                v["data_offsets"] = json!([s + 4, e + 4]);
            }
        }
    });
    assert_eq!(header_kind_of(&shifted), BadLayout);
}

#[test]
fn tensor_order_must_put_planes_last_msb_first() {
    let p7 = format::plane_name(7);
    // A plane before the F32 tensors.
    assert_eq!(
        header_kind_of(&with_entries(|e| {
            let i = e.iter().position(|x| x.name == p7).unwrap();
            let plane = e.remove(i);
            e.insert(0, plane);
        })),
        BadLayout
    );
    // An F32 tensor after the planes: the prefix property would break.
    assert_eq!(
        header_kind_of(&with_entries(|e| {
            let t = e.remove(0);
            e.push(t);
        })),
        BadLayout
    );
    // Planes in LSB-first order.
    assert_eq!(
        header_kind_of(&with_entries(|e| {
            let n = e.len();
            e[n - 8..].reverse();
        })),
        BadLayout
    );
    // F32 tensors in any order among themselves are fine.
    let reordered = with_entries(|e| {
        let n = e.len();
        e[..n - 9].reverse();
    });
    let m = format::read(&reordered).unwrap();
    assert_eq!(m.tensors(), format::read(&file()).unwrap().tensors());
}

#[test]
fn missing_extra_and_mistyped_tensors() {
    let remove = |name: &str| with_entries(|e| e.retain(|x| x.name != name));
    assert_eq!(header_kind_of(&remove("bn1.w4.scale")), BadGraph);
    assert_eq!(header_kind_of(&remove("fc.w1.clip")), BadGraph);
    assert_eq!(header_kind_of(&remove(&format::plane_name(0))), BadLayout);
    assert_eq!(header_kind_of(&remove(&format::plane_name(7))), BadLayout);
    // Version 2 needs the fixed8 codes: missing, moved among the F32 tensors, after the planes,
    // of the wrong length or dtype.
    assert_eq!(header_kind_of(&remove(format::FIXED8)), BadLayout);
    let fixed_at = |to_front: bool| {
        with_entries(|e| {
            let i = e.iter().position(|x| x.name == format::FIXED8).unwrap();
            let t = e.remove(i);
            if to_front { e.insert(0, t) } else { e.push(t) }
        })
    };
    assert_eq!(header_kind_of(&fixed_at(true)), BadLayout);
    assert_eq!(header_kind_of(&fixed_at(false)), BadLayout);
    let edit_fixed = |f: &dyn Fn(&mut Entry)| {
        with_entries(|e| f(e.iter_mut().find(|x| x.name == format::FIXED8).unwrap()))
    };
    assert_eq!(header_kind_of(&edit_fixed(&|x| {
        x.data.pop();
        x.shape = vec![json!(x.data.len())];
    })), BadLayout);
    assert_eq!(header_kind_of(&edit_fixed(&|x| {
        x.dtype = "I8".into();
    })), BadLayout);

    let add = |name: &str, dtype: &str, shape: Value, data: Vec<u8>| {
        with_entries(|e| {
            let shape = shape.as_array().unwrap().clone();
            e.insert(0, Entry { name: name.into(), dtype: dtype.into(), shape, data });
        })
    };
    let one = || 1f32.to_le_bytes().to_vec();
    assert_eq!(header_kind_of(&add("extra", "F32", json!([1]), one())), BadLayout);
    assert_eq!(header_kind_of(&add("conv1.w3.clip", "F32", json!([1]), one())), BadLayout);
    assert_eq!(header_kind_of(&add("relu1.w8.scale", "F32", json!([1]), one())), BadLayout);
    assert_eq!(
        header_kind_of(&add(
            "block.dw.w8.bias",
            "F32",
            json!([4]),
            [one(), one(), one(), one()].concat()
        )),
        BadLayout
    );
    assert_eq!(header_kind_of(&add("nobody.w8.clip", "F32", json!([1]), one())), BadLayout);
    assert_eq!(header_kind_of(&add("conv1.w8.clip.x", "F32", json!([1]), one())), BadLayout);

    let retype = |name: &str, dtype: &str, shape: Value, data: Vec<u8>| {
        with_entries(|e| {
            let x = e.iter_mut().find(|x| x.name == name).unwrap();
            x.dtype = dtype.into();
            x.shape = shape.as_array().unwrap().clone();
            x.data = data;
        })
    };
    assert_eq!(
        header_kind_of(&retype("conv1.w8.clip", "F64", json!([1]), 1f64.to_le_bytes().to_vec())),
        BadLayout
    );
    assert_eq!(
        header_kind_of(&retype("conv1.w8.clip", "I32", json!([1]), 1i32.to_le_bytes().to_vec())),
        BadLayout
    );
    assert_eq!(
        header_kind_of(&retype(&format::plane_name(3), "I8", json!([12]), vec![0; 12])),
        BadLayout
    );
    assert_eq!(
        header_kind_of(&retype(&format::plane_name(3), "U8", json!([3, 4]), vec![0; 12])),
        BadLayout
    );
    assert_eq!(header_kind_of(&retype("conv1.w8.clip", "F32", json!([1, 1]), one())), BadShape);
    assert_eq!(header_kind_of(&retype("conv1.w8.clip", "F32", json!([]), one())), BadShape);
    assert_eq!(
        header_kind_of(&retype("fc.w4.bias", "F32", json!([2]), [one(), one()].concat())),
        BadShape
    );
    // Affine channel counts must agree across widths.
    let two = [one(), one()].concat();
    assert_eq!(header_kind_of(&retype("bn1.w2.scale", "F32", json!([2]), two.clone())), BadShape);
    assert_eq!(
        header_kind_of(&with_entries(|e| {
            for name in ["bn1.w1.scale", "bn1.w1.bias"] {
                let x = e.iter_mut().find(|x| x.name == name).unwrap();
                x.shape = vec![json!(2)];
                x.data = two.clone();
            }
        })),
        BadShape
    );
    assert_eq!(header_kind_of(&retype("bn1.w2.scale", "F32", json!([0]), vec![])), BadShape);
    // An unknown dtype name is a malformed safetensors header.
    assert_eq!(header_kind_of(&retype("conv1.w8.clip", "Q4", json!([1]), one())), BadLayout);
}

/// Overwrites one value of a tensor in the fixture, in place.
fn with_value(name: &str, index: usize, v: f32) -> Vec<u8> {
    with_entries(|e| {
        let x = e.iter_mut().find(|x| x.name == name).unwrap();
        x.data[4 * index..4 * index + 4].copy_from_slice(&v.to_le_bytes());
    })
}

#[test]
fn values_must_be_finite_and_in_range() {
    for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN] {
        assert_eq!(kind_of(&with_value("bn1.w4.scale", 3, v)), BadValue);
        assert_eq!(kind_of(&with_value("conv1.w1.bias", 0, v)), BadValue);
        assert_eq!(kind_of(&with_value("fc.w8.wscale", 0, v)), BadValue);
        assert_eq!(kind_of(&with_value("fc.w8.clip", 0, v)), BadValue);
    }
    assert_eq!(kind_of(&with_value("fc.w8.clip", 0, 0.0)), BadValue);
    assert_eq!(kind_of(&with_value("fc.w8.clip", 0, -1.0)), BadValue);
    assert_eq!(kind_of(&with_value("fc.w2.wscale", 0, -1e-9)), BadValue);
    // Boundary values that are allowed.
    assert!(format::read(&with_value("fc.w2.wscale", 0, 0.0)).is_ok());
    assert!(format::read(&with_value("fc.w8.clip", 0, f32::MIN_POSITIVE)).is_ok());
    assert!(format::read(&with_value("bn1.w4.bias", 1, -f32::MAX)).is_ok());
    // Values are data: a header-only check does not see them.
    assert!(format::prefix_len(&with_value("fc.w8.clip", 0, f32::NAN), 8).is_ok());
}

#[test]
fn graph_identity_and_schema() {
    assert_eq!(graph_kind(|g| g["version"] = json!(999)), UnsupportedVersion);
    assert_eq!(graph_kind(|g| g["version"] = json!(0)), UnsupportedVersion);
    // A future version may change the schema: still reported as a version problem.
    assert_eq!(
        graph_kind(|g| {
            g["version"] = json!(format::FORMAT_VERSION + 1);
            g["nodes"] = json!("new");
        }),
        UnsupportedVersion
    );
    assert_eq!(graph_kind(|g| g["version"] = json!(-1)), BadGraph);
    // Text ops exist from version 3 on: a version-2 graph with one is malformed, not newer.
    assert_eq!(graph_kind(|g| g["nodes"][0]["op"] = json!({"type": "gelu"})), BadGraph);
    assert_eq!(graph_kind(|g| g["version"] = json!("1")), BadGraph);
    assert_eq!(
        graph_kind(|g| g.as_object_mut().unwrap().remove("version").map(|_| ()).unwrap()),
        BadGraph
    );
    assert_eq!(graph_kind(|g| g["surprise"] = json!(1)), BadGraph);
    assert_eq!(graph_kind(|g| g["nodes"][0]["op"]["type"] = json!("attention")), BadGraph);
    assert_eq!(graph_kind(|g| g["nodes"] = json!([])), BadGraph);
}

#[test]
fn node_names_and_inputs() {
    assert_eq!(graph_kind(|g| g["nodes"][2]["name"] = json!("bn1")), BadGraph);
    assert_eq!(graph_kind(|g| g["nodes"][2]["name"] = json!("input")), BadGraph);
    assert_eq!(graph_kind(|g| g["nodes"][2]["name"] = json!("")), BadGraph);
    assert_eq!(graph_kind(|g| g["nodes"][2]["name"] = json!("relu 1")), BadGraph);
    assert_eq!(graph_kind(|g| g["nodes"][2]["name"] = json!("x".repeat(129))), BadGraph);
    assert_eq!(graph_kind(|g| g["nodes"][2]["inputs"] = json!(["nowhere"])), BadGraph);
    // Reading itself or a later node.
    assert_eq!(graph_kind(|g| g["nodes"][2]["inputs"] = json!(["relu1"])), BadGraph);
    assert_eq!(graph_kind(|g| g["nodes"][2]["inputs"] = json!(["pool1"])), BadGraph);
    assert_eq!(graph_kind(|g| g["nodes"][2]["inputs"] = json!([])), BadGraph);
    assert_eq!(graph_kind(|g| g["nodes"][2]["inputs"] = json!(["bn1", "bn1"])), BadGraph);
    assert_eq!(graph_kind(|g| g["nodes"][5]["inputs"] = json!(["pool1"])), BadGraph);
}

#[test]
fn widths() {
    assert_eq!(graph_kind(|g| g["widths"] = json!([])), BadGraph);
    assert_eq!(graph_kind(|g| g["widths"][0]["w"] = json!(0)), BadGraph);
    assert_eq!(graph_kind(|g| g["widths"][0]["w"] = json!(9)), BadGraph);
    assert_eq!(graph_kind(|g| g["widths"][0]["w"] = json!(300)), BadGraph);
    assert_eq!(graph_kind(|g| g["widths"][0]["a"] = json!(0)), BadGraph);
    assert_eq!(graph_kind(|g| g["widths"][1]["a"] = json!(9)), BadGraph);
    assert_eq!(graph_kind(|g| g["widths"][1]["w"] = json!(8)), BadGraph);
    // A width the tensors do not cover.
    assert_eq!(
        graph_kind(|g| g["widths"].as_array_mut().unwrap().push(json!({"w": 3, "a": 3}))),
        BadGraph
    );
    assert_eq!(
        graph_kind(|g| g["eval"] = json!([{"dataset": "x", "n": 1, "accuracy": [[8, 1.5]]}])),
        BadValue
    );
    assert_eq!(
        graph_kind(|g| g["eval"] = json!([{"dataset": "x", "n": 1, "accuracy": [[9, 0.5]]}])),
        BadValue
    );
}

#[test]
fn op_parameters() {
    let conv = |field: &'static str, v: Value| move |g: &mut Value| g["nodes"][0]["op"][field] = v;
    assert_eq!(graph_kind(conv("stride", json!([0, 1]))), BadShape);
    assert_eq!(graph_kind(conv("dilation", json!([1, 0]))), BadShape);
    assert_eq!(graph_kind(conv("groups", json!(0))), BadShape);
    assert_eq!(graph_kind(conv("groups", json!(3))), BadShape);
    assert_eq!(graph_kind(conv("stride", json!([65, 1]))), LimitExceeded);
    assert_eq!(graph_kind(conv("dilation", json!([1, 1000]))), LimitExceeded);
    assert_eq!(graph_kind(conv("padding", json!([3, 0, 0, 0]))), BadShape);
    assert_eq!(graph_kind(conv("padding", json!([0, 0, 0, usize::MAX]))), BadShape);
    assert_eq!(graph_kind(conv("padding", json!([1, 1, 1]))), BadGraph);
    // With dilation 2 a 3-wide kernel spans 5: padding 4 is allowed.
    let dilated = with_graph(|g| {
        g["nodes"][0]["op"]["dilation"] = json!([2, 2]);
        g["nodes"][0]["op"]["padding"] = json!([4, 4, 4, 4]);
    });
    assert!(format::read(&dilated).is_ok());

    let wshape =
        |i: usize, v: Value| move |g: &mut Value| g["nodes"][i]["op"]["weight"]["shape"] = v;
    assert_eq!(graph_kind(wshape(0, json!([4, 3, 3]))), BadShape);
    assert_eq!(graph_kind(wshape(0, json!([4, 0, 3, 1]))), BadShape);
    assert_eq!(graph_kind(wshape(0, json!([4, 65, 3, 1]))), LimitExceeded);
    assert_eq!(graph_kind(wshape(0, json!([usize::MAX, 3, 3, 1]))), LimitExceeded);
    assert_eq!(graph_kind(wshape(0, json!([4, 3, 3, 1_000_000_000_000u64]))), LimitExceeded);
    assert_eq!(graph_kind(wshape(7, json!([3, 0]))), BadShape);
    assert_eq!(graph_kind(wshape(7, json!([3, 4, 1]))), BadShape);
    assert_eq!(graph_kind(wshape(7, json!([usize::MAX, usize::MAX]))), BadShape);
    assert_eq!(graph_kind(wshape(7, json!([1_000_000_000_000u64, 1]))), LimitExceeded);

    let pool = |field: &'static str, v: Value| move |g: &mut Value| g["nodes"][3]["op"][field] = v;
    assert_eq!(graph_kind(pool("kernel", json!([0, 2]))), BadShape);
    assert_eq!(graph_kind(pool("kernel", json!([2, 100]))), LimitExceeded);
    assert_eq!(graph_kind(pool("stride", json!([2, 0]))), BadShape);
    assert_eq!(graph_kind(pool("padding", json!([0, 2, 0, 0]))), BadShape);

    let clamp = |min: Value, max: Value| {
        move |g: &mut Value| g["nodes"][2]["op"] = json!({"type": "clamp", "min": min, "max": max})
    };
    assert_eq!(graph_kind(clamp(json!(1.0), json!(0.0))), BadValue);
    assert_eq!(graph_kind(clamp(json!(0.0), json!(1e300))), BadValue);
    assert!(format::read(&with_graph(clamp(json!(0.0), json!(6.0)))).is_ok());

    assert_eq!(graph_kind(|g| g["input_shape"] = json!([8, 8])), BadShape);
    assert_eq!(graph_kind(|g| g["input_shape"] = json!([8, 0, 1])), BadShape);
    assert_eq!(graph_kind(|g| g["input_shape"] = json!([usize::MAX, 2, 2])), LimitExceeded);
    assert_eq!(graph_kind(|g| g["input_shape"] = json!([100_000, 100_000, 3])), LimitExceeded);
}

#[test]
fn code_ranges() {
    let offset =
        |i: usize, v: Value| move |g: &mut Value| g["nodes"][i]["op"]["weight"]["code_offset"] = v;
    // Stored layout: conv1 [0, 36) and fc [40, 52) in the fixed8 tensor, dw [0, 36) in the planes.
    // fc [32, 44) overlaps conv1.
    assert_eq!(graph_kind(offset(7, json!(32))), BadLayout);
    // Both fixed layers at 0.
    assert_eq!(graph_kind(offset(7, json!(0))), BadLayout);
    assert_eq!(graph_kind(offset(4, json!(41))), BadLayout);
    // fc [48, 60) needs a 60-code fixed8 tensor; it holds 52.
    assert_eq!(graph_kind(offset(7, json!(48))), BadLayout);
    // dw [8, 44) needs 6-byte planes; they hold 5.
    assert_eq!(graph_kind(offset(4, json!(8))), BadLayout);
    // dw shrunk leaves the planes longer than the layers need.
    assert_eq!(graph_kind(|g| g["nodes"][4]["op"]["weight"]["shape"] = json!([4, 3, 2, 1])), BadLayout);
    assert_eq!(graph_kind(offset(7, json!(usize::MAX - 7))), LimitExceeded);
    assert_eq!(graph_kind(offset(7, json!(1u64 << 40))), LimitExceeded);
    // A permutation of layers in code order is fine as long as ranges are disjoint.
    let swapped = with_graph(|g| {
        g["nodes"][0]["op"]["weight"]["code_offset"] = json!(16);
        g["nodes"][7]["op"]["weight"]["code_offset"] = json!(0);
    });
    assert!(format::read(&swapped).is_ok());
}

/// Flipping bytes anywhere must never panic; a flip inside a value may well be accepted.
#[test]
fn random_byte_flips_never_panic() {
    let bytes = file();
    let mut rng = Rng(42);
    let mut accepted = 0;
    for _ in 0..3000 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(b.len());
            b[i] ^= 1 << rng.below(8);
        }
        if let Ok(m) = format::read(&b) {
            accepted += 1;
            assert_eq!(m.codes().len(), 40);
        }
        let _ = format::read_prefix(&b, 1 + rng.below(8) as u8);
        let _ = format::prefix_len(&b, rng.below(9) as u8);
    }
    // Most flips land in the header, where almost any change is an error; flips in codes and
    // values pass. Both outcomes occurring shows the loop reached both regions.
    assert!(accepted > 0 && accepted < 3000, "accepted {accepted}");

    // With digests, no flip in the data section gets through.
    let signed = signed_file();
    let data_start = format::header_len(&signed).unwrap();
    let mut in_data = 0;
    for _ in 0..1000 {
        let mut b = signed.clone();
        let i = data_start + rng.below(b.len() - data_start);
        b[i] ^= 1 << rng.below(8);
        in_data += 1;
        assert_eq!(format::read(&b).unwrap_err().kind(), Corrupt, "flip at {i}");
    }
    assert_eq!(in_data, 1000);
}

/// Random bytes written over whole regions of the header, and random truncation of the result.
#[test]
fn random_header_garbage_never_panics() {
    let bytes = file();
    let hlen = format::header_len(&bytes).unwrap();
    let mut rng = Rng(7);
    for _ in 0..2000 {
        let mut b = bytes.clone();
        let start = 8 + rng.below(hlen - 8);
        let len = 1 + rng.below(16);
        for x in b.iter_mut().skip(start).take(len) {
            // JSON-ish characters make the parser go deeper than uniform bytes would.
            *x = b"{}[]\",:0123456789-.eE aw_"[rng.below(25)];
        }
        let cut = rng.below(b.len() + 1);
        assert!(format::read(&b[..cut]).is_err() || cut == b.len());
        let _ = format::read(&b);
        let _ = format::read_prefix(&b[..cut], 1);
    }
}
