//! The container header: the 8-byte length, the safetensors JSON header (parsed and checked for
//! offset consistency by the `safetensors` crate), the embedded graph, and the tensor table
//! checked against the graph. Everything here needs only the header bytes, so a progressive loader
//! can validate a file before fetching its data.

use std::collections::HashMap;

use safetensors::tensor::Metadata;
use safetensors::Dtype;
use serde_json::error::Category;

use super::graph_check::{check_graph, parse_graph, quant_weight, CheckedGraph};
use super::limits::{MAX_CHANNELS, MAX_HEADER_LEN};
use super::names::{plane_name, width_tensor, BIAS, CLIP, PLANES, SCALE, WSCALE};
use crate::bail;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{Graph, Op};

/// Metadata key holding the graph JSON.
pub const METADATA_KEY: &str = "anybit";

/// What the values of an F32 tensor must satisfy besides being finite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    Finite,
    NonNegative,
    Positive,
}

pub(crate) struct F32Entry {
    pub name: String,
    /// Absolute byte range in the file.
    pub start: usize,
    pub end: usize,
    pub shape: Vec<usize>,
    pub rule: Rule,
}

pub(crate) struct Header {
    pub graph: Graph,
    /// Length of the whole file the header describes.
    pub total_len: usize,
    /// Absolute offset of the first (most significant) plane; F32 tensors lie before it.
    pub planes_start: usize,
    pub plane_len: usize,
    pub f32s: Vec<F32Entry>,
    /// End of the header (start of the data section).
    pub data_start: usize,
}

/// Bytes before the data section: the 8-byte length plus the JSON header. Needs the first 8
/// bytes (9 to also reject non-JSON headers early).
pub fn header_len(first_bytes: &[u8]) -> Result<usize> {
    let Some(len) = first_bytes.get(..8) else {
        bail!(
            ErrorKind::Truncated,
            "{} bytes is too short for the 8-byte header length",
            first_bytes.len()
        );
    };
    if first_bytes.get(8).is_some_and(|&b| b != b'{') {
        bail!(
            ErrorKind::BadMagic,
            "not an .anybit file: the safetensors header does not start with '{{'"
        );
    }
    let mut le = [0u8; 8];
    le.copy_from_slice(len);
    let n = u64::from_le_bytes(le);
    if n > MAX_HEADER_LEN as u64 {
        bail!(
            ErrorKind::LimitExceeded,
            "header of {n} bytes exceeds the limit of {MAX_HEADER_LEN}"
        );
    }
    if n < 2 {
        bail!(ErrorKind::BadMagic, "not an .anybit file: header length {n}");
    }
    Ok(8 + n as usize)
}

pub(crate) fn parse_header(bytes: &[u8]) -> Result<Header> {
    let data_start = header_len(bytes)?;
    let Some(json) = bytes.get(8..data_start) else {
        bail!(
            ErrorKind::Truncated,
            "the header needs {data_start} bytes but only {} are present",
            bytes.len()
        );
    };
    let meta: Metadata = serde_json::from_slice(json).map_err(|e| match e.classify() {
        Category::Data => Error::new(ErrorKind::BadLayout, format!("safetensors header: {e}")),
        _ => {
            Error::new(ErrorKind::BadMagic, format!("not an .anybit file: header is not JSON: {e}"))
        }
    })?;
    let Some(graph_json) = meta.metadata().as_ref().and_then(|m| m.get(METADATA_KEY)) else {
        bail!(
            ErrorKind::BadMagic,
            "not an .anybit file: no {METADATA_KEY:?} entry in __metadata__"
        );
    };
    let graph = parse_graph(graph_json)?;
    if let Some(d) = &graph.sha256 {
        let hex = |h: &String| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
        if d.planes.len() != PLANES as usize || !hex(&d.tensors) || !d.planes.iter().all(hex) {
            bail!(ErrorKind::BadGraph, "the graph's sha256 entry must hold 1 + 8 SHA-256 digests of 64 hex digits");
        }
    }
    let cg = check_graph(&graph)?;
    let (f32s, planes_start, plane_len) = check_table(&graph, &cg, &meta, data_start)?;
    let Some(total_len) = data_start.checked_add(meta.data_len()) else {
        bail!(ErrorKind::BadLayout, "data section length overflows");
    };
    drop(cg);
    Ok(Header { graph, total_len, planes_start, plane_len, f32s, data_start })
}

/// Checks the tensor table against the graph: exactly the required F32 tensors with their shapes,
/// then the planes, most significant first, each `ceil(code_end / 8)` bytes.
fn check_table(
    graph: &Graph,
    cg: &CheckedGraph<'_>,
    meta: &Metadata,
    data_start: usize,
) -> Result<(Vec<F32Entry>, usize, usize)> {
    let names = meta.offset_keys();
    let plane_len = cg.code_end.div_ceil(8);
    if names.len() < PLANES as usize {
        bail!(
            ErrorKind::BadLayout,
            "the file has {} tensors, fewer than the 8 bit planes",
            names.len()
        );
    }
    let n_f32 = names.len() - PLANES as usize;
    let mut f32s = Vec::with_capacity(n_f32);
    let mut channels: HashMap<usize, usize> = HashMap::new();
    let mut planes_start = data_start;
    for (pos, name) in names.iter().enumerate() {
        let Some(info) = meta.info(name) else {
            bail!(ErrorKind::BadLayout, "tensor {name:?} vanished from the table");
        };
        // Offsets are relative to the data section and were checked by safetensors to tile
        // it without gaps; their sum with data_start may still overflow on 32-bit targets.
        let (Some(start), Some(end)) = (
            data_start.checked_add(info.data_offsets.0),
            data_start.checked_add(info.data_offsets.1),
        ) else {
            bail!(ErrorKind::BadLayout, "tensor {name:?}: offsets overflow");
        };
        if pos >= n_f32 {
            let mut bit = (PLANES as usize - 1 - (pos - n_f32)) as u8;
            if plane_len == 0 {
                // Empty planes share one offset, so their table order is arbitrary.
                bit = (0..PLANES).find(|&b| *name == plane_name(b)).unwrap_or(bit);
            }
            if *name != plane_name(bit) {
                bail!(
                    ErrorKind::BadLayout,
                    "tensor {name:?} is at position {pos}, where plane {} is required (planes come last, bit 7 first)",
                    plane_name(bit)
                );
            }
            if info.dtype != Dtype::U8 {
                bail!(
                    ErrorKind::BadLayout,
                    "plane {name:?} has dtype {:?}, expected U8",
                    info.dtype
                );
            }
            if info.shape != [plane_len] {
                bail!(
                    ErrorKind::BadLayout,
                    "plane {name:?} has shape {:?}; the layers' codes need [{plane_len}]",
                    info.shape
                );
            }
            if bit == PLANES - 1 {
                planes_start = start;
            }
            continue;
        }
        if (0..PLANES).any(|b| *name == plane_name(b)) {
            bail!(
                ErrorKind::BadLayout,
                "plane {name:?} is at position {pos}: planes must come after all F32 tensors, bit 7 first"
            );
        }
        let (shape, rule) = expected(graph, cg, name, &info.shape, &mut channels)?;
        if info.dtype != Dtype::F32 {
            bail!(ErrorKind::BadLayout, "tensor {name:?} has dtype {:?}, expected F32", info.dtype);
        }
        if info.shape != shape {
            bail!(
                ErrorKind::BadShape,
                "tensor {name:?} has shape {:?}, expected {shape:?}",
                info.shape
            );
        }
        f32s.push(F32Entry { name: name.clone(), start, end, shape, rule });
    }
    // Every F32 tensor was matched to a distinct (node, width, suffix) the graph requires, so equal
    // counts mean none is missing.
    if n_f32 != cg.tensor_count {
        let missing = first_missing(graph, meta).unwrap_or_default();
        bail!(
            ErrorKind::BadGraph,
            "the file has {n_f32} per-width tensors, the graph requires {} (missing: {missing:?})",
            cg.tensor_count
        );
    }
    Ok((f32s, planes_start, plane_len))
}

/// The shape and value rule a per-width tensor must have, from its name.
fn expected(
    graph: &Graph,
    cg: &CheckedGraph<'_>,
    name: &str,
    actual: &[usize],
    channels: &mut HashMap<usize, usize>,
) -> Result<(Vec<usize>, Rule)> {
    let unknown = || Error::new(ErrorKind::BadLayout, format!("unknown tensor {name:?}"));
    let (rest, suffix) = name.rsplit_once('.').ok_or_else(unknown)?;
    let (node_name, wpart) = rest.rsplit_once('.').ok_or_else(unknown)?;
    let width = match wpart.as_bytes() {
        [b'w', d @ b'1'..=b'8'] => d - b'0',
        _ => return Err(unknown()),
    };
    let &node = cg.node_index.get(node_name).ok_or_else(unknown)?;
    if !cg.has_width[width as usize] {
        return Err(unknown());
    }
    let op = &graph.nodes[node].op;
    if let Some(w) = quant_weight(op) {
        return match suffix {
            WSCALE => Ok((vec![1], Rule::NonNegative)),
            CLIP => Ok((vec![1], Rule::Positive)),
            BIAS if w.bias => Ok((vec![w.shape[0]], Rule::Finite)),
            _ => Err(unknown()),
        };
    }
    if matches!(op, Op::Affine) && (suffix == SCALE || suffix == BIAS) {
        // The channel count is not in the graph: the first tensor of the node fixes it.
        let c = match actual {
            [c] if (1..=MAX_CHANNELS).contains(c) => *c,
            _ => bail!(
                ErrorKind::BadShape,
                "tensor {name:?} has shape {actual:?}, expected [C] with 1 <= C <= {MAX_CHANNELS}"
            ),
        };
        let c = *channels.entry(node).or_insert(c);
        return Ok((vec![c], Rule::Finite));
    }
    Err(unknown())
}

fn first_missing(graph: &Graph, meta: &Metadata) -> Option<String> {
    for node in &graph.nodes {
        let suffixes: &[&str] = match &node.op {
            op if quant_weight(op).is_some_and(|w| w.bias) => &[WSCALE, CLIP, BIAS],
            op if quant_weight(op).is_some() => &[WSCALE, CLIP],
            Op::Affine => &[SCALE, BIAS],
            _ => &[],
        };
        for w in &graph.widths {
            for s in suffixes {
                let name = width_tensor(&node.name, w.w, s);
                if meta.info(&name).is_none() {
                    return Some(name);
                }
            }
        }
    }
    None
}
