//! The container header: the 8-byte length, the safetensors JSON header (parsed and checked for
//! offset consistency by the `safetensors` crate), the embedded graph, and the tensor table
//! checked against the graph. Everything here needs only the header bytes, so a progressive loader
//! can validate a file before fetching its data.

use std::collections::HashMap;

use safetensors::tensor::Metadata;
use safetensors::Dtype;
use serde_json::error::Category;

use super::graph_check::{check_graph, parse_graph, CheckedGraph};
use super::limits::{MAX_CHANNELS, MAX_HEADER_LEN};
use super::names::{plane_name, shared_tensor, table_name, width_tensor, BIAS, CLIP, FIXED8, LO, PLANES, SCALE, SHARED, SMOOTH, STEP, WSCALE};
use crate::bail;
use crate::error::{Error, ErrorKind, Result};
use super::graph::{Graph, Op};

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
    /// The nodes' inputs as value indices ([`CheckedGraph::inputs`]).
    pub inputs: Vec<Vec<usize>>,
    /// Length of the whole file the header describes.
    pub total_len: usize,
    /// Absolute offset of the first (most significant) plane; F32 tensors and the fixed8 codes
    /// lie before it.
    pub planes_start: usize,
    pub plane_len: usize,
    /// Absolute range of the fixed8 codes (empty before version 2).
    pub fixed_start: usize,
    pub fixed_len: usize,
    pub f32s: Vec<F32Entry>,
    /// The embedding nodes' packed tables: (node name, start, end).
    pub tables: Vec<(String, usize, usize)>,
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
    let (f32s, u8s) = check_table(&graph, &cg, &meta, data_start)?;
    let U8Layout { fixed_start, fixed_len, planes_start, plane_len, tables } = u8s;
    let Some(total_len) = data_start.checked_add(meta.data_len()) else {
        bail!(ErrorKind::BadLayout, "data section length overflows");
    };
    let inputs = cg.inputs;
    Ok(Header { graph, inputs, total_len, planes_start, plane_len, fixed_start, fixed_len, f32s, tables, data_start })
}

/// Where the U8 data lies: the `fixed8` codes (version 2) and then the planes.
pub(crate) struct U8Layout {
    pub fixed_start: usize,
    pub fixed_len: usize,
    pub planes_start: usize,
    pub plane_len: usize,
    pub tables: Vec<(String, usize, usize)>,
}

/// Checks the tensor table against the graph: exactly the required F32 tensors with their shapes,
/// then (version 2) the `fixed8` codes, then the planes, most significant first, each
/// `ceil(code_end / 8)` bytes.
fn check_table(
    graph: &Graph,
    cg: &CheckedGraph<'_>,
    meta: &Metadata,
    data_start: usize,
) -> Result<(Vec<F32Entry>, U8Layout)> {
    let names = meta.offset_keys();
    let plane_len = cg.code_end.div_ceil(8);
    let has_fixed = graph.version >= 2;
    let table_names: Vec<(String, usize)> =
        cg.tables.iter().map(|&(node, bytes)| (table_name(&graph.nodes[node].name), bytes)).collect();
    let n_u8 = PLANES as usize + has_fixed as usize + table_names.len();
    if names.len() < n_u8 {
        bail!(
            ErrorKind::BadLayout,
            "the file has {} tensors, fewer than the {n_u8} U8 tensors (codes and bit planes) it needs",
            names.len()
        );
    }
    let n_f32 = names.len() - n_u8;
    let table_of = |name: &str| table_names.iter().position(|(t, _)| t == name);
    // Spelt once: formatting them for every tensor would cost more than the rest of the parse.
    let plane_names: [String; PLANES as usize] = std::array::from_fn(|b| plane_name(b as u8));
    let plane_of = |name: &str| plane_names.iter().position(|p| p == name);
    let is_u8_name = |name: &str| (has_fixed && name == FIXED8) || plane_of(name).is_some() || table_of(name).is_some();
    let mut tables: Vec<(String, usize, usize)> = Vec::new();
    let mut f32s = Vec::with_capacity(n_f32);
    let mut channels: HashMap<usize, usize> = HashMap::new();
    // (start, end) of the fixed8 tensor and of each plane by bit.
    let mut fixed: Option<(usize, usize)> = None;
    let mut planes: [Option<usize>; PLANES as usize] = [None; PLANES as usize];
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
            if !is_u8_name(name) {
                bail!(
                    ErrorKind::BadLayout,
                    "tensor {name:?} is at position {pos}, where the {} come (after all F32 tensors)",
                    if has_fixed { "fixed8 codes and the bit planes" } else { "bit planes" }
                );
            }
            if info.dtype != Dtype::U8 {
                bail!(ErrorKind::BadLayout, "{name:?} has dtype {:?}, expected U8", info.dtype);
            }
            let table = table_of(name);
            let want = match table {
                Some(t) => table_names[t].1,
                None if name == FIXED8 => cg.fixed_end,
                None => plane_len,
            };
            if info.shape != [want] {
                bail!(
                    ErrorKind::BadLayout,
                    "{name:?} has shape {:?}; the layers' codes need [{want}]",
                    info.shape
                );
            }
            if let Some(t) = table {
                let node = &graph.nodes[cg.tables[t].0].name;
                tables.push((node.clone(), start, end));
            } else if name == FIXED8 {
                fixed = Some((start, end));
            } else if let Some(bit) = plane_of(name) {
                planes[bit] = Some(start);
            }
            continue;
        }
        if is_u8_name(name) || name == FIXED8 {
            bail!(
                ErrorKind::BadLayout,
                "{name:?} is at position {pos}: codes and planes must come after all F32 tensors, bit 7 first"
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
    // The U8 names were distinct (a table has unique keys) and n_u8 of them were found, so every
    // plane (and the fixed8 tensor in version 2) is present.
    let planes_start = planes[PLANES as usize - 1].unwrap_or(data_start);
    for bit in 0..PLANES {
        let want = planes_start + (PLANES - 1 - bit) as usize * plane_len;
        if plane_len > 0 && planes[bit as usize] != Some(want) {
            bail!(
                ErrorKind::BadLayout,
                "plane {} is out of place: planes come last, most significant first",
                plane_name(bit)
            );
        }
    }
    let (fixed_start, fixed_end) = fixed.unwrap_or((planes_start, planes_start));
    if fixed_end != planes_start && fixed_start != fixed_end {
        bail!(ErrorKind::BadLayout, "the {FIXED8:?} tensor must come right before the planes");
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
    let fixed_start = if fixed_start == fixed_end { planes_start } else { fixed_start };
    // Tables are part of the tensors section that every prefix holds.
    if let Some((name, _, _)) = tables.iter().find(|&&(_, _, end)| end > fixed_start) {
        bail!(ErrorKind::BadLayout, "the table of {name:?} must come before {FIXED8:?} and the planes");
    }
    Ok((f32s, U8Layout { fixed_start, fixed_len: fixed_end - fixed_start, planes_start, plane_len, tables }))
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
    let &node = cg.node_index.get(node_name).ok_or_else(unknown)?;
    let op = &graph.nodes[node].op;
    if wpart == SHARED {
        return match (op, suffix) {
            (Op::Linear { weight, .. }, BIAS) if weight.bias => Ok((vec![weight.shape[0]], Rule::Finite)),
            (Op::Linear { weight, smooth: true }, SMOOTH) => Ok((vec![weight.shape[1]], Rule::Positive)),
            (Op::Embed { vocab, positions, types, .. }, LO | STEP) => {
                let rule = if suffix == STEP { Rule::NonNegative } else { Rule::Finite };
                Ok((vec![vocab + positions + types], rule))
            }
            _ => Err(unknown()),
        };
    }
    let width = match wpart.as_bytes() {
        [b'w', d @ b'1'..=b'8'] => (d - b'0') as usize,
        _ => return Err(unknown()),
    };
    if !cg.has_width[width] {
        return Err(unknown());
    }
    if let Op::Linear { weight, .. } = op {
        return match suffix {
            WSCALE => Ok((vec![weight.shape[0]], Rule::NonNegative)),
            _ => Err(unknown()),
        };
    }
    if let Some(w) = op.weight() {
        return match suffix {
            WSCALE => Ok((vec![1], Rule::NonNegative)),
            CLIP => Ok((vec![1], Rule::Positive)),
            BIAS if w.bias => Ok((vec![w.shape[0]], Rule::Finite)),
            _ => Err(unknown()),
        };
    }
    if matches!(op, Op::Affine | Op::LayerNorm { .. }) && (suffix == SCALE || suffix == BIAS) {
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
        let shared: &[&str] = match &node.op {
            Op::Linear { weight, smooth } => match (weight.bias, smooth) {
                (true, true) => &[BIAS, SMOOTH],
                (true, false) => &[BIAS],
                (false, true) => &[SMOOTH],
                (false, false) => &[],
            },
            Op::Embed { .. } => &[LO, STEP],
            _ => &[],
        };
        for s in shared {
            let name = shared_tensor(&node.name, s);
            if meta.info(&name).is_none() {
                return Some(name);
            }
        }
        let suffixes: &[&str] = match &node.op {
            Op::Linear { .. } => &[WSCALE],
            op if op.weight().is_some_and(|w| w.bias) => &[WSCALE, CLIP, BIAS],
            op if op.weight().is_some() => &[WSCALE, CLIP],
            Op::Affine | Op::LayerNorm { .. } => &[SCALE, BIAS],
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
