//! [`Layout`]: where a model file's pieces lie, read from its header alone. A progressive loader
//! needs these figures before it has the file (what to fetch with HTTP Range for each width), so
//! they come out of the header in one piece instead of one query per figure.

use serde::Serialize;

use crate::bits::Bits;
use crate::error::Result;
use crate::format::{self, PLANES};

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
        let header_len = format::header_len(first_bytes)? as u64;
        if (first_bytes.len() as u64) < header_len {
            return Ok(HeaderRead::NeedHeader { header_len });
        }
        let planes_start = format::prefix_len(first_bytes, 0)? as u64;
        let file_len = format::prefix_len(first_bytes, PLANES)? as u64;
        let plane_len = (file_len - planes_start) / PLANES as u64;
        let prefix_ends = std::array::from_fn(|p| planes_start + p as u64 * plane_len);
        Ok(HeaderRead::Complete(Layout { header_len, planes_start, plane_len, prefix_ends, file_len }))
    }

    /// The layout of a file whose header is known to be complete in `bytes` (a loaded model).
    pub fn of_loaded(bytes: &[u8]) -> Result<Layout> {
        match Layout::read(bytes)? {
            HeaderRead::Complete(layout) => Ok(layout),
            HeaderRead::NeedHeader { header_len } => crate::bail!(
                crate::ErrorKind::Truncated,
                "the file needs {header_len} header bytes, only {} are present",
                bytes.len()
            ),
        }
    }

    /// Bytes of the file prefix that serves weight width `w`: the header, the tensors and its planes.
    pub fn bytes_for(&self, w: Bits) -> u64 {
        self.prefix_ends[crate::quant::planes_needed(w) as usize]
    }
}
