//! Tensor names inside an `.anybit` file. The exporter and the model loader use these helpers so
//! that the spelling lives in one place (docs/FORMAT.md, "Tensors").

use crate::bits::Bits;

/// Number of weight bit planes (8-bit codes).
pub const PLANES: u8 = 8;

/// Name of the tensor holding bit `bit` (0 = least significant) of every weight code.
///
/// The leading index is `7 - bit`, so sorting names puts the most significant plane first: the
/// safetensors writer orders tensors of one dtype by name, and the prefix property relies on it.
pub fn plane_name(bit: u8) -> String {
    debug_assert!(bit < PLANES);
    format!("planes.{}_bit{}", 7 - bit, bit)
}

/// Name of the U8 tensor holding the whole 8-bit codes of the `fixed8` layers (version 2 on). It
/// sorts before the plane names, so it lies before the planes, inside every prefix.
pub const FIXED8: &str = "fixed8.codes";

/// Per-width tensor suffixes.
pub const WSCALE: &str = "wscale";
pub const CLIP: &str = "clip";
pub const BIAS: &str = "bias";
pub const SCALE: &str = "scale";

/// Shared-tensor suffixes of an `embed` node: each row's offset and step.
pub const LO: &str = "lo";
pub const STEP: &str = "step";
/// Shared-tensor suffix of a `linear` node's smoothing factors.
pub const SMOOTH: &str = "smooth";

/// Name of a tensor shared by all widths: `"{node}.shared.{suffix}"`. The `shared` segment can
/// never read as a width segment `w{b}`, so these names cannot collide with per-width ones.
pub fn shared_tensor(node: &str, suffix: &str) -> String {
    format!("{node}.{SHARED}.{suffix}")
}
pub const SHARED: &str = "shared";

/// Name of the U8 tensor holding an `embed` node's packed table. The `codes.` prefix sorts before
/// `fixed8.codes` and the planes, so tables lie inside every prefix of the file.
pub fn table_name(node: &str) -> String {
    format!("codes.{node}")
}

/// Name of a per-width tensor: `"{node}.w{width}.{suffix}"`.
pub fn width_tensor(node: &str, width: Bits, suffix: &str) -> String {
    format!("{node}.w{width}.{suffix}")
}

/// Whether `name` may name a graph node: 1..=128 ASCII letters, digits and `_ . - / :`, and not the
/// reserved graph input name. The charset keeps names printable and free of JSON escapes; node
/// tensors end in `.w{digit}.{suffix}`, which cannot collide with plane names or another node's.
pub fn valid_node_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name != INPUT
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-/:".contains(&b))
}

/// The name under which nodes refer to the graph input.
pub const INPUT: &str = "input";
