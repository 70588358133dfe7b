//! The `.anybit` model file (docs/FORMAT.md): a safetensors container whose `__metadata__` holds
//! the JSON [`Graph`] under `"anybit"`, the per-width F32 tensors, and the weights as 8 bit planes,
//! most significant first and last in the file, so that the first `p` planes of the whole model
//! are one contiguous prefix of the file (progressive loading).
//!
//! Reading validates everything and returns typed errors; no allocation exceeds a small multiple
//! of the bytes given. A [`ModelFile`] comes only from [`read`], [`read_prefix`] or
//! [`Unhashed::read`], so whoever holds one (the model) may trust it without checking again.

mod graph;
mod graph_check;
mod header;
mod layout;
pub mod limits;
pub mod names;
mod planes;

use std::collections::BTreeMap;

use safetensors::tensor::TensorView;
use safetensors::Dtype;

use crate::bail;
use crate::bits::Bits;
use crate::error::{Error, ErrorKind, Result};
use graph::in_fixed_store;
use header::{parse_header, Rule};

pub use graph::{
    Digests, EvalResult, Graph, Node, Op, Precision, QuantWeight, RowBits, Task, Text, Width, CF_COLUMNS, CF_TAGS, FORMAT_NAME, FORMAT_VERSION,
    MIN_FORMAT_VERSION, TEXT_VERSION, uses_text, version_needed,
};
pub use header::{header_len, METADATA_KEY};
pub use layout::{HeaderRead, Layout};
pub use limits::MAX_HEADER_LEN;
pub use names::{plane_name, width_tensor, FIXED8, PLANES};

/// How many bytes a progressive loader should fetch first: enough for the header of any model
/// this runtime ships; [`header_len`] says whether more is needed.
pub const HEADER_PROBE_LEN: usize = 256 << 10;

#[derive(Clone, Debug, PartialEq)]
pub struct F32Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A file as [`read`] or [`read_prefix`] checked it. The fields are private so that no other
/// path builds one: the model builds layers from it without checking the graph again.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFile {
    graph: Graph,
    inputs: Vec<Vec<usize>>,
    codes: Vec<u8>,
    fixed8: Vec<u8>,
    planes_present: u8,
    tensors: BTreeMap<String, F32Tensor>,
    /// The embedding nodes' packed tables, by node name.
    tables: BTreeMap<String, Vec<u8>>,
    layout: Layout,
}

impl ModelFile {
    /// The graph: node names unique, every input the graph input or an earlier node, widths and
    /// nodes not empty, each op's parameters within the limits (graph_check.rs).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Where the whole file's pieces lie, as its header describes them (also for a prefix).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Per node, its inputs (in the order of its `inputs` names) as value indices: 0 is the graph
    /// input, `k + 1` the output of node `k`, always an earlier node.
    pub fn inputs(&self) -> &[Vec<usize>] {
        &self.inputs
    }

    /// The flat 8-bit codes of the layers in the planes (each at its `code_offset`), rebuilt from
    /// the planes present; bits of missing planes are 0. Length: 8 * plane length, i.e. the end of
    /// the last layer rounded up to a multiple of 8.
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// The whole 8-bit codes of the `fixed8` layers (version 2 on; empty in version 1, where they
    /// are in the planes).
    pub fn fixed8(&self) -> &[u8] {
        &self.fixed8
    }

    /// How many most significant planes the codes were rebuilt from (8 for a whole file).
    pub fn planes_present(&self) -> u8 {
        self.planes_present
    }

    /// Every per-width tensor, by name (`"{node}.w{b}.{suffix}"`), each with the shape and values
    /// its role requires.
    pub fn tensors(&self) -> &BTreeMap<String, F32Tensor> {
        &self.tensors
    }

    /// The codes of one quantized layer of this file's graph.
    pub fn layer_codes(&self, w: &QuantWeight) -> Result<&[u8]> {
        let store = if in_fixed_store(self.graph.version, w.precision) { &self.fixed8 } else { &self.codes };
        let n = w.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        n.and_then(|n| store.get(w.code_offset..w.code_offset.checked_add(n)?)).ok_or_else(
            || {
                Error::new(
                    ErrorKind::BadLayout,
                    format!(
                        "codes [{}, ..) of shape {:?} are not in this file",
                        w.code_offset, w.shape
                    ),
                )
            },
        )
    }

    /// Whether a fixed 8-bit layer's codes are whole in this (possibly partial) file: always from
    /// version 2 on; in version 1 they are in the planes, so only when all 8 are present.
    /// (`model` layers are exact at every width up to `planes_present`.)
    pub fn fixed_codes_whole(&self, w: &QuantWeight) -> bool {
        w.precision != Precision::Fixed8
            || in_fixed_store(self.graph.version, w.precision)
            || self.planes_present == PLANES
    }

    /// The per-width tensor `"{node}.w{width}.{suffix}"`.
    /// A tensor shared by all widths (`names::shared_tensor`).
    pub fn shared_tensor(&self, node: &str, suffix: &str) -> Result<&F32Tensor> {
        let name = names::shared_tensor(node, suffix);
        self.tensors.get(&name).ok_or_else(|| {
            Error::new(ErrorKind::BadGraph, format!("tensor {name:?} is not in the file"))
        })
    }

    /// The packed table of an `embed` node (`names::table_name`).
    pub fn table(&self, node: &str) -> Result<&[u8]> {
        self.tables.get(node).map(|t| t.as_slice()).ok_or_else(|| {
            Error::new(ErrorKind::BadGraph, format!("the table of {node:?} is not in the file"))
        })
    }

    pub fn tensor(&self, node: &str, width: Bits, suffix: &str) -> Result<&F32Tensor> {
        let name = width_tensor(node, width, suffix);
        self.tensors.get(&name).ok_or_else(|| {
            Error::new(ErrorKind::BadGraph, format!("tensor {name:?} is not in the file"))
        })
    }
}

/// Reads a whole file (all 8 planes; nothing may follow them).
pub fn read(bytes: &[u8]) -> Result<ModelFile> {
    Unhashed::parse(bytes)?.read(bytes, None)
}

/// Reads a prefix of a file that holds at least `min_planes` (1..=8) most significant planes.
/// A partial plane after the complete ones is ignored.
pub fn read_prefix(bytes: &[u8], min_planes: u8) -> Result<ModelFile> {
    Unhashed::parse_prefix(bytes, min_planes)?.read(bytes, None)
}

/// A file (or a prefix of one) whose header is parsed and checked, read once its sections are
/// hashed: a caller that hashes faster than this crate can (a browser's WebCrypto, at native
/// speed and off the page's thread, where wasm hashes in the engine's baseline tier on a first
/// load) hashes [`Unhashed::sections`] itself and hands the digests to [`Unhashed::read`], which
/// compares them with the header's. The digests only guard against a damaged download (the
/// header that holds them is in the same file), so a caller's own are as good as this crate's.
pub struct Unhashed {
    header: header::Header,
    /// Complete bit planes in the bytes parsed.
    planes: u8,
}

impl Unhashed {
    /// Parses and checks the header of the whole file `bytes` (`truncated` when bytes are missing).
    pub fn parse(bytes: &[u8]) -> Result<Unhashed> {
        let h = parse_header(bytes)?;
        if bytes.len() < h.total_len {
            bail!(
                ErrorKind::Truncated,
                "the file is {} bytes, its header describes {}",
                bytes.len(),
                h.total_len
            );
        }
        let planes = planes_present(&h, bytes.len(), PLANES)?;
        Ok(Unhashed { header: h, planes })
    }

    /// Parses and checks the header of a prefix of a file that holds at least `min_planes`
    /// (1..=8) most significant planes (`truncated` when it holds fewer).
    pub fn parse_prefix(bytes: &[u8], min_planes: u8) -> Result<Unhashed> {
        if !(1..=PLANES).contains(&min_planes) {
            bail!(ErrorKind::InvalidArgument, "min_planes {min_planes} is outside 1..=8");
        }
        let h = parse_header(bytes)?;
        let planes = planes_present(&h, bytes.len(), min_planes)?;
        Ok(Unhashed { header: h, planes })
    }

    /// Complete bit planes in the bytes parsed: 8 for a whole file.
    pub fn planes(&self) -> u8 {
        self.planes
    }

    /// The byte ranges the header holds a SHA-256 digest of, in the order [`Unhashed::read`]
    /// takes their digests: the tensors, then each complete plane, most significant first; none
    /// for a file without digests.
    pub fn sections(&self) -> Vec<std::ops::Range<usize>> {
        hashed_sections(&self.header, self.planes).into_iter().map(|(range, _)| range).collect()
    }

    /// Reads the bytes parsed (the same `bytes`) into a [`ModelFile`]. `digests`: the SHA-256 of
    /// each of [`Unhashed::sections`], in order, or None to hash them here. A count other than the
    /// sections' is `invalid_argument`; a digest that differs from the header's, `corrupt`.
    pub fn read(self, bytes: &[u8], digests: Option<&[[u8; 32]]>) -> Result<ModelFile> {
        self.read_after(bytes, 0, digests)
    }

    /// [`read`](Self::read) of bytes whose first `checked` sections an earlier read checked: a
    /// progressive session that appends planes to the prefix it holds checks only the sections
    /// they complete. `digests`: those of the sections after the first `checked`, or None to hash
    /// them here.
    pub fn read_after(self, bytes: &[u8], checked: usize, digests: Option<&[[u8; 32]]>) -> Result<ModelFile> {
        read_parsed(bytes, self.header, self.planes, checked, digests)
    }
}

/// End (exclusive byte offset) of the file prefix that holds the header, every F32 tensor, the
/// fixed8 codes and the first `planes` (0..=8) bit planes. Needs only the header: pass at least [`header_len`] bytes.
pub fn prefix_len(header_bytes: &[u8], planes: u8) -> Result<usize> {
    if planes > PLANES {
        bail!(ErrorKind::InvalidArgument, "planes {planes} is outside 0..=8");
    }
    Ok(Layout::of(&parse_header(header_bytes)?).prefix_ends[planes as usize] as usize)
}

/// Complete bit planes in a prefix of `len` bytes of the file `h` heads, which must hold at least
/// `min_planes` of them and nothing past the file's end.
fn planes_present(h: &header::Header, len: usize, min_planes: u8) -> Result<u8> {
    if len > h.total_len {
        bail!(ErrorKind::BadLayout, "{} bytes follow the end of the data the header describes", len - h.total_len);
    }
    if len < h.planes_start {
        bail!(ErrorKind::Truncated, "the file needs {} bytes before its planes, only {len} are present", h.planes_start);
    }
    // Empty planes (a model without quantized layers) are all present once the F32 tensors are.
    let present = (len - h.planes_start).checked_div(h.plane_len).map_or(PLANES, |n| n.min(PLANES as usize) as u8);
    if present < min_planes {
        bail!(
            ErrorKind::Truncated,
            "{present} complete bit planes are present, {min_planes} are needed (fetch {} bytes)",
            h.planes_start + min_planes as usize * h.plane_len
        );
    }
    Ok(present)
}

/// Reads `bytes`, which hold `planes` complete planes of the file `h` heads, after checking every
/// hashed section but the first `checked` against its digest.
fn read_parsed(bytes: &[u8], h: header::Header, planes: u8, checked: usize, digests: Option<&[[u8; 32]]>) -> Result<ModelFile> {
    let layout = Layout::of(&h);
    let present = planes_present(&h, bytes.len(), planes)?;
    if present != planes {
        bail!(ErrorKind::InvalidArgument, "the bytes hold {present} complete bit planes; {planes} were parsed");
    }
    let sections = hashed_sections(&h, present);
    let Some(unchecked) = sections.len().checked_sub(checked) else {
        bail!(ErrorKind::InvalidArgument, "{checked} sections were checked before; the bytes hold {}", sections.len());
    };
    if let Some(given) = digests {
        if given.len() != unchecked {
            bail!(ErrorKind::InvalidArgument, "{} digests were given; the bytes hold {unchecked} sections to check", given.len());
        }
    }
    for (k, (range, want)) in sections.into_iter().enumerate().skip(checked) {
        let len = range.len();
        let got = digests.map_or_else(|| sha256(&bytes[range]), |d| d[k - checked]);
        if !digest_is(&got, want) {
            let what = if k == 0 { "the per-width tensors and fixed 8-bit codes".to_string() } else { format!("bit plane {}", 8 - k) };
            bail!(ErrorKind::Corrupt, "{what} ({len} bytes) do not match the SHA-256 digest in the header: the download is corrupt; fetch the file again");
        }
    }

    let mut tensors = BTreeMap::new();
    for e in h.f32s {
        // start..end lies before planes_start <= bytes.len().
        let data: Vec<f32> = bytes[e.start..e.end]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        check_values(&e.name, &data, e.rule)?;
        tensors.insert(e.name, F32Tensor { shape: e.shape, data });
    }

    let planes: Vec<&[u8]> = (0..present as usize)
        .map(|k| {
            let s = h.planes_start + k * h.plane_len;
            &bytes[s..s + h.plane_len]
        })
        .collect();
    // At least one plane is present whenever plane_len > 0, so the codes (8 bytes per plane
    // byte) are bounded by 8 * bytes.len().
    let codes = planes::unpack(&planes, h.plane_len);
    let fixed8 = bytes[h.fixed_start..h.fixed_start + h.fixed_len].to_vec();
    let tables = h.tables.iter().map(|(node, s, e)| (node.clone(), bytes[*s..*e].to_vec())).collect();
    Ok(ModelFile { graph: h.graph, inputs: h.inputs, codes, fixed8, planes_present: present, tensors, tables, layout })
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes hashed per call. A wasm engine runs a function's first calls in its baseline tier and
/// switches to optimized code only at a later call (V8 has no on-stack replacement for wasm): one
/// call over a whole tensor section would run in the slow tier to its end.
const HASH_CHUNK: usize = 64 << 10;

/// The one way a file's digests are computed, written and checked alike.
fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for c in bytes.chunks(HASH_CHUNK) {
        h.update(c);
    }
    h.finalize().into()
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha256(bytes).iter().flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]).map(char::from).collect()
}

/// Whether `hex` (64 hex digits of either case: parse_header checked) spells `digest`. Compared
/// digit by digit rather than through a hex string: a model's first parse runs in V8's baseline
/// code, where formatting 9 x 32 bytes costs milliseconds.
fn digest_is(digest: &[u8], hex: &str) -> bool {
    let hex = hex.as_bytes();
    hex.len() == 2 * digest.len()
        && digest.iter().zip(hex.chunks_exact(2)).all(|(b, h)| {
            h[0].eq_ignore_ascii_case(&HEX[usize::from(b >> 4)]) && h[1].eq_ignore_ascii_case(&HEX[usize::from(b & 15)])
        })
}

/// The sections of a file holding its first `present` planes that its header has digests of:
/// (bytes, the header's hex digest), in file order: the tensors, then the planes, most
/// significant first. A progressive loader's bytes arrive in pieces from a server; one that does
/// not match its digest is refused before any of it is used.
fn hashed_sections(h: &header::Header, present: u8) -> Vec<(std::ops::Range<usize>, &str)> {
    let Some(d) = &h.graph.sha256 else { return Vec::new() };
    let planes = (0..present as usize).map(|k| {
        let s = h.planes_start + k * h.plane_len;
        (s..s + h.plane_len, d.planes[k].as_str())
    });
    std::iter::once((h.data_start..h.planes_start, d.tensors.as_str())).chain(planes).collect()
}

fn check_values(name: &str, data: &[f32], rule: Rule) -> Result<()> {
    for (i, &v) in data.iter().enumerate() {
        let ok = v.is_finite()
            && match rule {
                Rule::Finite => true,
                Rule::NonNegative => v >= 0.0,
                Rule::Positive => v > 0.0,
            };
        if !ok {
            let need = match rule {
                Rule::Finite => "finite",
                Rule::NonNegative => "finite and >= 0",
                Rule::Positive => "finite and > 0",
            };
            bail!(ErrorKind::BadValue, "tensor {name:?}[{i}] = {v}: must be {need}");
        }
    }
    Ok(())
}

/// Writes a file of the current version. `codes` holds every quantized layer's 8-bit codes at
/// its `code_offset` in one flat sequence (at least up to the end of the last layer, at most that
/// rounded up to a multiple of 8); the writer lays them out into the fixed8 tensor and the planes
/// and rewrites the offsets. `tensors` must be exactly the per-width tensors the graph requires.
/// The result is read back and validated before it is returned.
pub fn write(
    graph: &Graph,
    codes: &[u8],
    tensors: &BTreeMap<String, F32Tensor>,
) -> Result<Vec<u8>> {
    write_with_tables(graph, codes, tensors, &BTreeMap::new())
}

/// [`write`] for a graph with `embed` nodes: `tables` holds each one's packed table by node name
/// (`names::table_name` in the file).
pub fn write_with_tables(
    graph: &Graph,
    codes: &[u8],
    tensors: &BTreeMap<String, F32Tensor>,
    tables: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<u8>> {
    let (graph, plane_codes, fixed_codes) = lay_out(graph, codes)?;
    let graph = &graph;
    let cg = graph_check::check_graph(graph)?;
    let plane_len = cg.code_end.div_ceil(8);
    drop(cg);
    let planes = planes::pack(&plane_codes, plane_len);

    let mut f32_bytes: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let n = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if n != Some(t.data.len()) {
            bail!(
                ErrorKind::BadShape,
                "tensor {name:?}: shape {:?} does not match {} values",
                t.shape,
                t.data.len()
            );
        }
        let bytes: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        f32_bytes.push((name.clone(), t.shape.clone(), bytes));
    }

    let st_err = |e: safetensors::SafeTensorError| {
        Error::new(ErrorKind::InvalidArgument, format!("safetensors: {e:?}"))
    };
    let mut views: Vec<(String, TensorView<'_>)> = Vec::with_capacity(f32_bytes.len() + 8);
    for (name, shape, bytes) in &f32_bytes {
        views.push((
            name.clone(),
            TensorView::new(Dtype::F32, shape.clone(), bytes).map_err(st_err)?,
        ));
    }
    for (node, table) in tables {
        let name = names::table_name(node);
        if tensors.contains_key(&name) {
            bail!(ErrorKind::InvalidArgument, "{name:?} is reserved for the table of {node:?}");
        }
        views.push((name, TensorView::new(Dtype::U8, vec![table.len()], table).map_err(st_err)?));
    }
    if tensors.contains_key(FIXED8) {
        bail!(ErrorKind::InvalidArgument, "{FIXED8:?} is reserved for the fixed 8-bit codes");
    }
    views.push((FIXED8.to_string(), TensorView::new(Dtype::U8, vec![fixed_codes.len()], &fixed_codes).map_err(st_err)?));
    for (k, plane) in planes.iter().enumerate() {
        let name = plane_name(7 - k as u8);
        if tensors.contains_key(&name) {
            bail!(ErrorKind::InvalidArgument, "{name:?} is reserved for a bit plane");
        }
        views.push((name, TensorView::new(Dtype::U8, vec![plane_len], plane).map_err(st_err)?));
    }

    // safetensors orders tensors by descending dtype alignment, then by name: F32 before U8, the
    // fixed8 codes before the planes, and plane names sort most significant first. `read` below rejects any other order. Serialized
    // once without digests to find the data layout, then again with them (same data section;
    // one metadata entry, so the header's bytes do not depend on hash-map order).
    let to_meta = |g: &Graph| -> Result<std::collections::HashMap<String, String>> {
        let json = serde_json::to_string(g).map_err(|e| Error::new(ErrorKind::BadGraph, format!("graph JSON: {e}")))?;
        Ok(std::collections::HashMap::from([(METADATA_KEY.to_string(), json)]))
    };
    let mut graph = graph.clone();
    graph.sha256 = None;
    let draft = safetensors::serialize(views.clone(), Some(to_meta(&graph)?)).map_err(st_err)?;
    let h = parse_header(&draft)?;
    graph.sha256 = Some(Digests {
        tensors: sha256_hex(&draft[h.data_start..h.planes_start]),
        planes: planes.iter().map(|p| sha256_hex(p)).collect(),
    });
    let bytes = safetensors::serialize(views, Some(to_meta(&graph)?)).map_err(st_err)?;
    read(&bytes)?;
    Ok(bytes)
}

/// The caller's graph and flat code sequence, laid out for the current version: `model` layers
/// packed into the plane sequence, `fixed8` layers into the fixed8 tensor, each at a multiple of 8.
fn lay_out(graph: &Graph, codes: &[u8]) -> Result<(Graph, Vec<u8>, Vec<u8>)> {
    // The caller's layout is the version-1 one: every layer in one sequence.
    let mut logical = graph.clone();
    logical.version = 1;
    let end = graph_check::check_graph(&logical)?.code_end;
    if codes.len() < end || codes.len() > end.div_ceil(8) * 8 {
        bail!(
            ErrorKind::InvalidArgument,
            "{} codes given; the layers need {end} (up to {} with padding)",
            codes.len(),
            end.div_ceil(8) * 8
        );
    }
    let mut out = graph.clone();
    out.version = graph::version_needed(graph);
    let (mut plane_codes, mut fixed_codes) = (Vec::new(), Vec::new());
    for w in out.nodes.iter_mut().filter_map(|n| n.op.weight_mut()) {
        // check_graph bounded every layer's count and range by `end`.
        let n: usize = w.shape.iter().product();
        let src = &codes[w.code_offset..w.code_offset + n];
        let store = if in_fixed_store(out.version, w.precision) { &mut fixed_codes } else { &mut plane_codes };
        store.resize(store.len().div_ceil(8) * 8, 0);
        w.code_offset = store.len();
        store.extend_from_slice(src);
    }
    Ok((out, plane_codes, fixed_codes))
}

/// Rewrites a whole file (of any version this runtime reads) in the current version: same graph,
/// codes and tensors, laid out anew (used to upgrade version-1 files for progressive loading).
pub fn upgrade(bytes: &[u8]) -> Result<Vec<u8>> {
    let file = read(bytes)?;
    let mut graph = file.graph.clone();
    let mut codes = Vec::new();
    for w in graph.nodes.iter_mut().filter_map(|n| n.op.weight_mut()) {
        let layer = file.layer_codes(w)?;
        codes.resize(codes.len().div_ceil(8) * 8, 0);
        w.code_offset = codes.len();
        codes.extend_from_slice(layer);
    }
    write_with_tables(&graph, &codes, &file.tensors, &file.tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_spell_the_standard_sha256_and_pieces_hash_as_one() {
        // FIPS 180-2's first example.
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        // Several hash pieces and a partial last one, against the one-call digest.
        let bytes: Vec<u8> = (0..3 * HASH_CHUNK + 17).map(|i| (i * 31 % 251) as u8).collect();
        let want: String = {
            use sha2::{Digest, Sha256};
            Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
        };
        assert_eq!(sha256_hex(&bytes), want);
        assert!(digest_is(&sha256(&bytes), &want));
        assert!(digest_is(&sha256(&bytes), &want.to_uppercase()));
        for at in [0, HASH_CHUNK - 1, HASH_CHUNK, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            assert!(!digest_is(&sha256(&bad), &want), "flipped byte {at}");
        }
        assert!(!digest_is(&sha256(&bytes[..bytes.len() - 1]), &want));
    }
}
