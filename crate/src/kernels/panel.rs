//! The panel layout shared by `Dot16` (i16, 8 deep) and `Dot8` (bytes, 16 deep): panels of 4 rows
//! or columns interleaved per `KB` depth, so a micro-kernel step reads one run per operand at
//! fixed offsets from a single pointer. Element (i, k) is at
//! `((i / 4) * kcs + k / KB) * 4 KB + (i % 4) * KB + k % KB` with `kcs = kp / KB`.

/// Rows (columns) per panel.
pub const P: usize = 4;

pub fn padded_depth<const KB: usize>(depth: usize) -> usize {
    depth.div_ceil(KB) * KB
}

#[inline(always)]
pub fn index<const KB: usize>(i: usize, k: usize, kcs: usize) -> usize {
    ((i / P) * kcs + k / KB) * (P * KB) + (i % P) * KB + k % KB
}

/// Packs row-major codes `[n][depth]` into the layout (`n_pad * kp` elements), each code through
/// `map`; depth and rows beyond `n` are padded with `T::default()` (zero: padding must add
/// nothing). `sums` (if given) receives each row's code sum. Returns the OR of all codes (the
/// caller's range check).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
pub fn pack<T: Copy + Default, const KB: usize>(
    src: &[u8],
    n: usize,
    n_pad: usize,
    depth: usize,
    dst: &mut [T],
    mut sums: Option<&mut [i32]>,
    map: impl Fn(u8) -> T,
) -> u8 {
    let kp = padded_depth::<KB>(depth);
    let kcs = kp / KB;
    debug_assert!(dst.len() >= n_pad * kp && n_pad % P == 0);
    for i in 0..n_pad {
        let s = if i < n { &src[i * depth..(i + 1) * depth] } else { &[][..] };
        for kc in 0..kcs {
            let d = &mut dst[index::<KB>(i, kc * KB, kcs)..][..KB];
            let k = kc * KB;
            if k + KB <= s.len() {
                for (x, &c) in d.iter_mut().zip(&s[k..k + KB]) {
                    *x = map(c);
                }
            } else {
                for (l, x) in d.iter_mut().enumerate() {
                    *x = s.get(k + l).map_or(T::default(), |&c| map(c));
                }
            }
        }
        if i < n {
            if let Some(sums) = sums.as_deref_mut() {
                sums[i] = sum_codes(s);
            }
        }
    }
    or_codes(&src[..n * depth])
}

/// OR of all codes: one vectorizable pass.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
pub fn or_codes(s: &[u8]) -> u8 {
    s.iter().fold(0u8, |m, &c| m | c)
}

/// Sum of u8 codes; u32 lanes cannot overflow for depth <= MAX_DEPTH (255 * 32768 < 2^32).
#[inline]
pub fn sum_codes(s: &[u8]) -> i32 {
    s.iter().map(|&c| c as u32).sum::<u32>() as i32
}
