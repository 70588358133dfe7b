//! Progressive loading: a session built from a prefix of a file (the header, the tensors and the
//! first bit planes) that runs the narrow widths at once and is extended with more planes later,
//! exactly as the whole file would run.

use std::borrow::Cow;

use super::Session;
use crate::error::{ErrorKind, Result};
use crate::format::{self, ModelFile, Unhashed, PLANES};
use crate::model::Model;

impl Session {
    /// Builds a session from a prefix of a file holding at least `min_planes` (1..=8) bit planes
    /// (`format::Layout::prefix_ends[min_planes]` bytes); every piece present is checked against the
    /// file's SHA-256 digests first. It runs the widths those planes serve, at the widest one.
    pub fn load_prefix(bytes: &[u8], min_planes: u8, threads: usize) -> Result<Session> {
        Session::from_file(format::read_prefix(bytes, min_planes)?, bytes.into(), threads)
    }

    /// A session of a file or prefix the caller read (`format::Unhashed`: digests hashed
    /// elsewhere) from `bytes`, which a prefix's session keeps to [`extend`](Self::extend) (a
    /// whole file's are not copied).
    pub fn from_file(file: ModelFile, bytes: Cow<'_, [u8]>, threads: usize) -> Result<Session> {
        let model = Model::from_file(file)?;
        let keep = if model.planes_loaded() < PLANES { bytes.into_owned() } else { Vec::new() };
        Ok(Session::new(model, keep, threads))
    }

    /// Appends the next bytes of the file (they start where the loaded prefix ends) and rebuilds
    /// the model with the planes they complete, keeping the width, threads and calibration. Only
    /// the planes `more` completes are checked against their digests (the prefix held was checked
    /// when it was loaded): `digests` holds their SHA-256, most significant first, or None to hash
    /// them here ([`extend_planes`](Self::extend_planes) says which they are). A corrupt or short
    /// piece is refused (`corrupt`, `truncated`) and the session stays as it was. Returns the
    /// planes now loaded.
    pub fn extend(&mut self, more: &[u8], min_planes: u8, digests: Option<&[[u8; 32]]>) -> Result<u8> {
        if self.prefix.is_empty() {
            crate::bail!(ErrorKind::InvalidArgument, "this session holds the whole file; there is nothing to extend");
        }
        let mut bytes = Vec::with_capacity(self.prefix.len() + more.len());
        bytes.extend_from_slice(&self.prefix);
        bytes.extend_from_slice(more);
        let file = Unhashed::parse_prefix(&bytes, min_planes)?;
        // The tensors and the planes loaded were checked with the prefix (none in a file without
        // digests).
        let checked = (1 + self.model.planes_loaded() as usize).min(file.sections().len());
        let mut model = Model::from_file(file.read_after(&bytes, checked, digests)?)?;
        model.set_threads(self.model.threads());
        model.set_width(self.model.width())?;
        self.model = model;
        self.prefix = if self.model.planes_loaded() < PLANES { bytes } else { Vec::new() };
        Ok(self.model.planes_loaded())
    }

    /// The byte ranges, in the whole file, that [`extend`](Self::extend) with `more_len` more
    /// bytes would check (the planes they complete), in the order it takes their digests; `[]`
    /// for a file without digests or bytes that complete no plane. Needs only the prefix held.
    pub fn extend_planes(&self, more_len: usize) -> Result<Vec<std::ops::Range<usize>>> {
        if self.prefix.is_empty() {
            crate::bail!(ErrorKind::InvalidArgument, "this session holds the whole file; there is nothing to extend");
        }
        let l = self.model.layout();
        if self.model.graph().sha256.is_none() {
            return Ok(Vec::new());
        }
        let end = self.prefix.len().saturating_add(more_len);
        let from = self.model.planes_loaded() as usize;
        Ok((from..PLANES as usize)
            .map(|k| l.prefix_ends[k] as usize..l.prefix_ends[k + 1] as usize)
            .filter(|r| r.end <= end)
            .collect())
    }

    /// Bit planes loaded: 8 for a whole file.
    pub fn planes_loaded(&self) -> u8 {
        self.model.planes_loaded()
    }

    /// Bytes of the file this session keeps to extend later (0 for a whole file).
    pub fn kept_prefix_len(&self) -> usize {
        self.prefix.len()
    }
}
