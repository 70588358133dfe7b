//! Packed weights ([`PackedWeights`]) and their sizes ([`PackedSize`]), the element types a
//! scheme may pack into ([`Elem`]), and the input checks every packer shares. Activations, packed
//! per call into a reused buffer, are in `acts`.

use super::scheme::{with_layout, Layout};
use super::Scheme;
use crate::bits::Bits;
use crate::error::{ErrorKind, Result};

/// Largest supported depth: 255 * 255 * 32768 = 2_130_739_200 < 2^31, so an i32 accumulator
/// cannot overflow for any codes.
pub const MAX_DEPTH: usize = 32768;

/// Packed elements of one scheme; the variant follows the scheme's [`Layout::Elem`].
#[derive(Clone, Debug)]
pub(crate) enum Buf {
    I16(Vec<i16>),
    U64(Vec<u64>),
    U8(Vec<u8>),
}

/// Borrowed packed elements of one scheme (a view of a [`Buf`] or of scratch).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Elems<'a> {
    I16(&'a [i16]),
    U64(&'a [u64]),
    U8(&'a [u8]),
}

/// Growing scratch for activations: one buffer per element type, each kept at its largest. The
/// layers of one model share it while using different schemes (the 8-bit first layer's Dot16
/// beside 1-bit BitSerial ones), so a pass must not reallocate when the scheme changes, and
/// `Model::memory_bytes` counts each type at its largest ([`PackedSize::acts`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct Scratch {
    i16s: Vec<i16>,
    words: Vec<u64>,
    bytes: Vec<u8>,
}

/// An element type a scheme packs into; the one place that maps it to its buffers and counts.
pub(crate) trait Elem: Copy + Default + Send + Sync + 'static {
    fn buf(v: Vec<Self>) -> Buf;
    /// The elements of `b`; empty if `b` holds another type (never, once `gemm` has checked that
    /// weights and activations share a scheme).
    fn of(b: &Buf) -> &[Self];
    fn elems(v: &[Self]) -> Elems<'_>;
    /// The elements of `e`; empty if `e` holds another type.
    fn of_elems(e: Elems<'_>) -> &[Self];
    fn scratch(s: &Scratch) -> &Vec<Self>;
    fn scratch_mut(s: &mut Scratch) -> &mut Vec<Self>;
    /// This type's count in a [`PackedSize`].
    fn count(s: &mut PackedSize) -> &mut usize;
}

macro_rules! elem {
    ($t:ty, $variant:ident, $field:ident) => {
        impl Elem for $t {
            fn buf(v: Vec<Self>) -> Buf {
                Buf::$variant(v)
            }
            #[inline]
            fn of(b: &Buf) -> &[Self] {
                match b {
                    Buf::$variant(v) => v,
                    _ => &[],
                }
            }
            #[inline]
            fn elems(v: &[Self]) -> Elems<'_> {
                Elems::$variant(v)
            }
            #[inline]
            fn of_elems(e: Elems<'_>) -> &[Self] {
                match e {
                    Elems::$variant(v) => v,
                    _ => &[],
                }
            }
            #[inline]
            fn scratch(s: &Scratch) -> &Vec<Self> {
                &s.$field
            }
            #[inline]
            fn scratch_mut(s: &mut Scratch) -> &mut Vec<Self> {
                &mut s.$field
            }
            fn count(s: &mut PackedSize) -> &mut usize {
                &mut s.$field
            }
        }
    };
}
elem!(i16, I16, i16s);
elem!(u64, U64, words);
elem!(u8, U8, bytes);

/// The buffers [`PackedWeights::new`] allocates for a shape, known without packing: the
/// precision policy costs the memory of widths it has not switched to. Counts are elements of
/// each type; a scheme uses one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedSize {
    pub rows_pad: usize,
    pub i16s: usize,
    pub words: usize,
    pub bytes: usize,
}

impl PackedSize {
    fn new<T: Elem>(rows_pad: usize, n: usize) -> PackedSize {
        let mut s = PackedSize { rows_pad, i16s: 0, words: 0, bytes: 0 };
        *T::count(&mut s) = n;
        s
    }

    pub fn of(rows: usize, depth: usize, wbits: Bits, scheme: Scheme) -> PackedSize {
        with_layout!(scheme, L => {
            let (rows_pad, n) = weight_len::<L>(rows, depth, wbits.get());
            PackedSize::new::<<L as Layout>::Elem>(rows_pad, n)
        })
    }

    /// What [`PackedActs::pack`](super::PackedActs::pack) needs for `cols` columns (`rows_pad`
    /// holds the padded columns; the per-column sums, `cols` i32s, come on top).
    pub fn acts(cols: usize, depth: usize, abits: Bits, scheme: Scheme) -> PackedSize {
        with_layout!(scheme, L => {
            let (cols_pad, n) = act_len::<L>(cols, depth, abits.get());
            PackedSize::new::<<L as Layout>::Elem>(cols_pad, n)
        })
    }

    /// Heap bytes of the packed buffers.
    pub fn heap_bytes(&self) -> usize {
        self.i16s * 2 + self.words * 8 + self.bytes
    }
}

/// Rows padded to whole tiles, and the elements they pack into.
fn weight_len<L: Layout>(rows: usize, depth: usize, wbits: u8) -> (usize, usize) {
    let rows_pad = rows.div_ceil(L::ROW_TILE) * L::ROW_TILE;
    (rows_pad, rows_pad * L::weight_row_len(depth, wbits))
}

/// Columns padded to whole granules, and the elements they pack into.
pub(super) fn act_len<L: Layout>(cols: usize, depth: usize, abits: u8) -> (usize, usize) {
    let cols_pad = cols.div_ceil(L::COL_GRANULE) * L::COL_GRANULE;
    (cols_pad, cols_pad * L::act_col_len(depth, abits))
}

/// Weights packed once at load (or width switch) time.
#[derive(Clone, Debug)]
pub struct PackedWeights {
    pub(super) scheme: Scheme,
    pub(super) rows: usize,
    pub(super) depth: usize,
    pub(super) wbits: Bits,
    buf: Buf,
}

impl PackedWeights {
    /// `codes`: row-major `[rows][depth]`, each `< 2^wbits`.
    pub fn new(codes: &[u8], rows: usize, depth: usize, wbits: Bits, scheme: Scheme) -> Result<Self> {
        check_shape(codes.len(), rows, depth, "weight")?;
        check_codes(codes, wbits.get(), "weight")?;
        with_layout!(scheme, L => Ok(PackedWeights::pack::<L>(codes, rows, depth, wbits, scheme)))
    }

    fn pack<L: Layout>(codes: &[u8], rows: usize, depth: usize, wbits: Bits, scheme: Scheme) -> Self {
        let (rows_pad, n) = weight_len::<L>(rows, depth, wbits.get());
        let mut data = vec![L::Elem::default(); n];
        L::pack_weights(codes, rows, rows_pad, depth, wbits.get(), &mut data);
        PackedWeights { scheme, rows, depth, wbits, buf: L::Elem::buf(data) }
    }

    /// The packed elements, as the scheme's type: rows padded to whole tiles of the scheme.
    #[inline]
    pub(super) fn data<T: Elem>(&self) -> &[T] {
        T::of(&self.buf)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn depth(&self) -> usize {
        self.depth
    }
    pub fn wbits(&self) -> Bits {
        self.wbits
    }
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
    /// Heap bytes of the packed buffer (what [`PackedSize::of`] predicts).
    pub fn heap_bytes(&self) -> usize {
        match &self.buf {
            Buf::I16(v) => v.capacity() * 2,
            Buf::U64(v) => v.capacity() * 8,
            Buf::U8(v) => v.capacity(),
        }
    }
}

impl Scratch {
    /// The buffer for `T`, grown to at least `n` elements.
    pub(super) fn grow<T: Elem>(&mut self, n: usize) -> &mut [T] {
        let v = T::scratch_mut(self);
        if v.len() < n {
            v.resize(n, T::default());
        }
        v
    }

    #[inline]
    pub(super) fn get<T: Elem>(&self) -> &[T] {
        T::scratch(self)
    }
}

/// Depth within [`MAX_DEPTH`], and exactly `n * depth` codes (`what`: "weight", "activation").
pub(super) fn check_shape(codes: usize, n: usize, depth: usize, what: &str) -> Result<()> {
    if depth > MAX_DEPTH {
        crate::bail!(
            ErrorKind::LimitExceeded,
            "GEMM depth {depth} exceeds {MAX_DEPTH}: the i32 accumulator could overflow"
        );
    }
    let Some(len) = n.checked_mul(depth) else {
        crate::bail!(ErrorKind::LimitExceeded, "{what} size {n} x {depth} overflows");
    };
    if codes != len {
        let (dim, unit) = if what == "weight" { ("weights", "rows") } else { ("activations", "columns") };
        crate::bail!(ErrorKind::ShapeMismatch, "{dim}: {codes} codes given for {n} {unit} x {depth} depth");
    }
    Ok(())
}

/// Rejects any code that does not fit `bits` bits. One pass of OR, which vectorizes.
pub(super) fn check_codes(codes: &[u8], bits: u8, what: &str) -> Result<()> {
    if bits >= 8 {
        return Ok(());
    }
    let any = codes.iter().fold(0u8, |m, &c| m | c);
    if any >> bits != 0 {
        let bad = codes.iter().position(|&c| c >> bits != 0).unwrap_or(0);
        crate::bail!(
            ErrorKind::BadValue,
            "{what} code {} at index {bad} does not fit {bits} bits",
            codes[bad]
        );
    }
    Ok(())
}
