//! [`Layout`]: where a model file's pieces lie, known from its header alone. A progressive loader
//! needs these figures before it has the file (what to fetch with HTTP Range for each width), so
//! [`Layout::read`] gives them in one piece from the first bytes, and every [`ModelFile`]
//! carries the layout its header described.
//!
//! [`ModelFile`]: super::ModelFile

use serde::Serialize;

use super::header::{header_len, parse_header, Header};
use super::PLANES;
use crate::bits::Bits;
use crate::error::Result;

/// Byte offsets of a model file: the header, the start and length of the bit planes, the end of
/// every plane prefix and the whole file's length.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layout {
    /// Bytes before the data section (the 8-byte length and the JSON header).
    pub header_len: u64,
    /// Where the bit planes start: the header, every F32 tensor and the fixed 8-bit codes lie before.
    pub planes_start: u64,
    /// Bytes of one bit plane.
    pub plane_len: u64,
    /// `prefix_ends[p]`: the end of the prefix that holds the first `p` (0..=8) planes.
    pub prefix_ends: [u64; PLANES as usize + 1],
    pub file_len: u64,
}

/// What the first bytes of a file say: its layout, or only how many header bytes to fetch first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderRead {
    /// Fewer bytes than the header were given; fetch `header_len` bytes and ask again.
    NeedHeader { header_len: u64 },
    Complete(Layout),
}

impl Layout {
    /// The layout from a file's first bytes (at least 9: the header length and its first byte).
    pub fn read(first_bytes: &[u8]) -> Result<HeaderRead> {
        let header_len = header_len(first_bytes)?;
        if first_bytes.len() < header_len {
            return Ok(HeaderRead::NeedHeader { header_len: header_len as u64 });
        }
        Ok(HeaderRead::Complete(Layout::of(&parse_header(first_bytes)?)))
    }

    /// The layout a parsed header describes.
    pub(super) fn of(h: &Header) -> Layout {
        let (planes_start, plane_len) = (h.planes_start as u64, h.plane_len as u64);
        Layout {
            header_len: h.data_start as u64,
            planes_start,
            plane_len,
            // planes_start + 8 * plane_len == total_len, which the header check kept from overflowing.
            prefix_ends: std::array::from_fn(|p| planes_start + p as u64 * plane_len),
            file_len: h.total_len as u64,
        }
    }

    /// Bytes of the file prefix that serves weight width `w`: the header, the tensors and its planes.
    pub fn bytes_for(&self, w: Bits) -> u64 {
        self.prefix_ends[crate::quant::planes_needed(w) as usize]
    }
}
