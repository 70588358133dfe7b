//! One error type for the whole runtime. Every failure has a stable machine-readable
//! [`ErrorKind`] (surfaced to JavaScript as `code`) and a human message saying what was wrong
//! and, where it helps, what to do.

use std::fmt;

/// Stable error codes. The string form (`ErrorKind::code`) is part of the public JS API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The bytes are not an `.anybit` file (bad safetensors header or missing anybit metadata).
    BadMagic,
    /// The file declares a format version this runtime does not read.
    UnsupportedVersion,
    /// The file ends before the data its header promises.
    Truncated,
    /// Header, offsets or tensor table are inconsistent (overlaps, gaps, lying sizes).
    BadLayout,
    /// The JSON graph is malformed or refers to missing tensors/nodes.
    BadGraph,
    /// A tensor or layer has an impossible or unsupported shape.
    BadShape,
    /// A stored value is NaN or infinite, or outside its documented range.
    BadValue,
    /// A caller passed a tensor whose shape does not match what the model expects.
    ShapeMismatch,
    /// A bit-width outside 1..=8 or not supported by this model.
    UnsupportedWidth,
    /// Any other invalid argument from the caller.
    InvalidArgument,
    /// A resource limit would be exceeded (e.g. an allocation larger than the input justifies).
    LimitExceeded,
    /// Bytes do not match the SHA-256 digest the file's header records for them.
    Corrupt,
}

impl ErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::BadMagic => "bad_magic",
            ErrorKind::UnsupportedVersion => "unsupported_version",
            ErrorKind::Truncated => "truncated",
            ErrorKind::BadLayout => "bad_layout",
            ErrorKind::BadGraph => "bad_graph",
            ErrorKind::BadShape => "bad_shape",
            ErrorKind::BadValue => "bad_value",
            ErrorKind::ShapeMismatch => "shape_mismatch",
            ErrorKind::UnsupportedWidth => "unsupported_width",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::LimitExceeded => "limit_exceeded",
            ErrorKind::Corrupt => "corrupt",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand used throughout: `bail!(ErrorKind::BadShape, "conv {} has 0 channels", name)`.
#[macro_export]
macro_rules! bail {
    ($kind:expr, $($arg:tt)*) => {
        return Err($crate::error::Error::new($kind, format!($($arg)*)))
    };
}
