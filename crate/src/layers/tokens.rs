//! What a text model's graph input holds and the layers that read it: the embeddings (token,
//! position and type), self-attention with its padding mask, and pooling over tokens.
//!
//! The input is `[tokens, 3]`: per token its id, its type and its mask (1 attends, 0 is padding),
//! as f32 so that it travels through the graph like any tensor. `Embed` checks every value once;
//! the layers after it read the mask as `> 0.5`.

use super::{no_backward, single, Context, Layer};
use crate::error::{ErrorKind, Result};
use crate::format::RowBits;
use crate::tensor::Tensor;

/// Columns of a text model's input.
pub const ID: usize = 0;
pub const TYPE: usize = 1;
pub const MASK: usize = 2;
pub const FIELDS: usize = 3;

/// Tokens of a text input shape `[tokens, 3]`.
pub fn input_tokens(shape: &[usize], layer: &str) -> Result<usize> {
    match shape {
        &[t, FIELDS] if t > 0 => Ok(t),
        _ => crate::bail!(ErrorKind::ShapeMismatch, "{layer}: expects the text input [tokens, 3], got {shape:?}"),
    }
}

fn attends(input: &Tensor, t: usize) -> bool {
    input.data()[t * FIELDS + MASK] > 0.5
}

/// Token, position and type embeddings summed, from one packed table of
/// `vocab + positions + types` rows (words, then positions, then types).
pub struct Embed {
    pub name: String,
    vocab: usize,
    positions: usize,
    types: usize,
    hidden: usize,
    /// (first row, bit offset of that row, bits) of each run of rows.
    runs: Vec<(usize, usize, u8)>,
    table: Vec<u8>,
    lo: Vec<f32>,
    step: Vec<f32>,
}

impl Embed {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        vocab: usize,
        positions: usize,
        types: usize,
        hidden: usize,
        rows: &[RowBits],
        table: Vec<u8>,
        lo: Vec<f32>,
        step: Vec<f32>,
    ) -> Result<Self> {
        let total = vocab + positions + types;
        let listed: usize = rows.iter().map(|r| r.rows).sum();
        if listed != total || lo.len() != total || step.len() != total || RowBits::table_bytes(rows, hidden) != Some(table.len()) {
            crate::bail!(ErrorKind::BadShape, "{name}: the table, offsets and steps do not hold {total} rows of {hidden}");
        }
        let mut runs = Vec::with_capacity(rows.len());
        let (mut row, mut bit) = (0, 0);
        for r in rows {
            runs.push((row, bit, r.bits.get()));
            row += r.rows;
            bit += r.rows * hidden * r.bits.count();
        }
        Ok(Embed { name: name.to_string(), vocab, positions, types, hidden, runs, table, lo, step })
    }

    /// Adds row `row` of the table to `out`.
    fn add_row(&self, row: usize, out: &mut [f32]) {
        let k = self.runs.partition_point(|r| r.0 <= row) - 1;
        let (first, start, bits) = self.runs[k];
        let bits = bits as usize;
        let mut pos = start + (row - first) * self.hidden * bits;
        let (lo, step) = (self.lo[row], self.step[row]);
        let mask = (1u32 << bits) - 1;
        for v in out.iter_mut() {
            // A code spans at most two bytes (bits <= 8).
            let byte = pos / 8;
            let word = self.table[byte] as u32 | (*self.table.get(byte + 1).unwrap_or(&0) as u32) << 8;
            let q = (word >> (pos % 8)) & mask;
            *v += lo + step * q as f32;
            pos += bits;
        }
    }

    /// Checks every token of a text input: integer ids and types in range, mask 0 or 1.
    fn check_input(&self, x: &Tensor) -> Result<usize> {
        let tokens = input_tokens(x.shape(), &self.name)?;
        if tokens > self.positions {
            crate::bail!(ErrorKind::LimitExceeded, "{}: {tokens} tokens exceed the {} positions", self.name, self.positions);
        }
        for (t, tok) in x.data().chunks_exact(FIELDS).enumerate() {
            let whole = |v: f32, n: usize| v >= 0.0 && v.fract() == 0.0 && (v as usize) < n;
            if !whole(tok[ID], self.vocab) {
                crate::bail!(ErrorKind::BadValue, "{}: token {t} has id {}, outside the vocabulary of {}", self.name, tok[ID], self.vocab);
            }
            if !whole(tok[TYPE], self.types) {
                crate::bail!(ErrorKind::BadValue, "{}: token {t} has type {}; the model has {} types", self.name, tok[TYPE], self.types);
            }
            if tok[MASK] != 0.0 && tok[MASK] != 1.0 {
                crate::bail!(ErrorKind::BadValue, "{}: token {t} has mask {}; a mask is 0 or 1", self.name, tok[MASK]);
            }
        }
        Ok(tokens)
    }
}

impl Layer for Embed {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        let tokens = input_tokens(single(inputs, &self.name)?, &self.name)?;
        Ok(vec![tokens, self.hidden])
    }
    fn forward(&self, inputs: &[&Tensor], _ctx: &mut Context) -> Result<Tensor> {
        let x = single(inputs, &self.name)?;
        let tokens = self.check_input(x)?;
        let mut out = Tensor::zeros(vec![tokens, self.hidden]);
        for (t, (tok, o)) in x.data().chunks_exact(FIELDS).zip(out.data_mut().chunks_exact_mut(self.hidden)).enumerate() {
            self.add_row(tok[ID] as usize, o);
            self.add_row(self.vocab + t, o);
            self.add_row(self.vocab + self.positions + tok[TYPE] as usize, o);
        }
        Ok(out)
    }
    fn backward(&self, _: &[&Tensor], _: &Tensor, _: &[u32], _: &mut Context) -> Result<Vec<Tensor>> {
        no_backward(&self.name)
    }
    fn param_bytes(&self, _width: crate::format::Width) -> usize {
        self.table.len() + (self.lo.len() + self.step.len()) * 4
    }
}

/// Multi-head self-attention on projected `q`, `k`, `v` (`[tokens, hidden]` each), masked by the
/// graph input: softmax(q k^T / sqrt(head size)) v per head. A token attends to every unmasked
/// token; if none is unmasked it attends to all alike, as BERT's additive mask of the most
/// negative float ends up doing.
pub struct Attention {
    pub name: String,
    pub heads: usize,
}

impl Attention {
    fn dims(&self, inputs: &[&[usize]]) -> Result<(usize, usize)> {
        let [q, k, v, input] = inputs else {
            crate::bail!(ErrorKind::ShapeMismatch, "{}: takes q, k, v and the input", self.name);
        };
        let tokens = input_tokens(input, &self.name)?;
        let ok = q.len() == 2 && q == k && q == v && q[0] == tokens && q[1] > 0 && q[1] % self.heads == 0;
        if !ok {
            crate::bail!(
                ErrorKind::ShapeMismatch,
                "{}: q, k and v must be [{tokens}, hidden] with hidden a multiple of {} heads, got {q:?}, {k:?}, {v:?}",
                self.name,
                self.heads
            );
        }
        Ok((tokens, q[1]))
    }
}

impl Layer for Attention {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        let (tokens, hidden) = self.dims(inputs)?;
        Ok(vec![tokens, hidden])
    }
    fn forward(&self, inputs: &[&Tensor], _ctx: &mut Context) -> Result<Tensor> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
        let (n, hidden) = self.dims(&shapes)?;
        let (q, k, v, input) = (inputs[0].data(), inputs[1].data(), inputs[2].data(), inputs[3]);
        let dh = hidden / self.heads;
        let scale = 1.0 / (dh as f32).sqrt();
        let attended: Vec<bool> = (0..n).map(|j| attends(input, j)).collect();
        // No key attends: every score gets the same mask, so the weights are equal.
        let uniform = !attended.contains(&true);
        let mut out = Tensor::zeros(vec![n, hidden]);
        // Scores as axpys over a transposed K (`kt[d][j]`), not dot products: a dot product's
        // sum is a reduction the compiler may not reorder, an axpy vectorizes as written.
        let mut kt = vec![0f32; dh * n];
        let mut p = vec![0f32; n];
        for h in 0..self.heads {
            let off = h * dh;
            for j in 0..n {
                for d in 0..dh {
                    kt[d * n + j] = k[j * hidden + off + d];
                }
            }
            for i in 0..n {
                if uniform {
                    p.fill(1.0 / n as f32);
                } else {
                    p.fill(0.0);
                    for (d, &qd) in q[i * hidden + off..i * hidden + off + dh].iter().enumerate() {
                        let qd = qd * scale;
                        p.iter_mut().zip(&kt[d * n..(d + 1) * n]).for_each(|(s, &kv)| *s += qd * kv);
                    }
                    softmax_masked(&mut p, &attended);
                }
                let oi = &mut out.data_mut()[i * hidden + off..i * hidden + off + dh];
                for (j, &pj) in p.iter().enumerate() {
                    if pj != 0.0 {
                        let vj = &v[j * hidden + off..j * hidden + off + dh];
                        oi.iter_mut().zip(vj).for_each(|(o, &x)| *o += pj * x);
                    }
                }
            }
        }
        Ok(out)
    }
    fn backward(&self, _: &[&Tensor], _: &Tensor, _: &[u32], _: &mut Context) -> Result<Vec<Tensor>> {
        no_backward(&self.name)
    }
}

/// Softmax over the attended entries of `p` (the others become 0), with [`exp_fast`]: wasm has no
/// exp instruction, and libm's costs more than the rest of a 64-token attention row.
fn softmax_masked(p: &mut [f32], attended: &[bool]) {
    let max = p.iter().zip(attended).filter(|(_, &a)| a).fold(f32::NEG_INFINITY, |m, (&v, _)| m.max(v));
    let mut sum = 0.0;
    for (v, &a) in p.iter_mut().zip(attended) {
        *v = if a { exp_fast(*v - max) } else { 0.0 };
        sum += *v;
    }
    let inv = 1.0 / sum;
    p.iter_mut().for_each(|v| *v *= inv);
}

/// `e^x` for `x <= 0` to about 3e-7 relative: `e^x = 2^n e^y` with `n = round(x log2 e)` (built
/// in the exponent bits) and `y = x - n ln 2` (Cody and Waite's two-part ln 2 keeps it exact),
/// `|y| <= 0.35`, by its Taylor polynomial; below -87 it is 0.
#[inline]
pub fn exp_fast(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    if x < -87.0 {
        return 0.0;
    }
    let n = (x * std::f32::consts::LOG2_E).round();
    let y = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0 + y * (1.0 + y * (0.5 + y * (1.0 / 6.0 + y * (1.0 / 24.0 + y * (1.0 / 120.0 + y * (1.0 / 720.0))))));
    f32::from_bits(((n as i32 + 127) as u32) << 23) * p
}

/// Mean of the token vectors whose mask is 1 (zeros when there are none): `[x, input]` -> `[hidden]`.
pub struct MeanPool {
    pub name: String,
}

impl Layer for MeanPool {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        match inputs {
            [&[t, h], input] if input_tokens(input, &self.name)? == t && h > 0 => Ok(vec![h]),
            _ => crate::bail!(ErrorKind::ShapeMismatch, "{}: takes [tokens, hidden] and the input, got {inputs:?}", self.name),
        }
    }
    fn forward(&self, inputs: &[&Tensor], _ctx: &mut Context) -> Result<Tensor> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
        let hidden = self.output_shape(&shapes)?[0];
        let mut sum = vec![0f64; hidden];
        let mut count = 0usize;
        for (t, row) in inputs[0].data().chunks_exact(hidden).enumerate() {
            if attends(inputs[1], t) {
                sum.iter_mut().zip(row).for_each(|(s, &v)| *s += v as f64);
                count += 1;
            }
        }
        let n = count.max(1) as f64;
        Tensor::new(vec![hidden], sum.iter().map(|&s| (s / n) as f32).collect())
    }
    fn backward(&self, _: &[&Tensor], _: &Tensor, _: &[u32], _: &mut Context) -> Result<Vec<Tensor>> {
        no_backward(&self.name)
    }
}

/// The first token's vector (`[CLS]`): `[tokens, hidden]` -> `[hidden]`.
pub struct ClsPool {
    pub name: String,
}

impl Layer for ClsPool {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        match single(inputs, &self.name)? {
            &[t, h] if t > 0 && h > 0 => Ok(vec![h]),
            s => crate::bail!(ErrorKind::ShapeMismatch, "{}: takes [tokens, hidden], got {s:?}", self.name),
        }
    }
    fn forward(&self, inputs: &[&Tensor], _ctx: &mut Context) -> Result<Tensor> {
        let x = single(inputs, &self.name)?;
        let hidden = self.output_shape(&[x.shape()])?[0];
        Tensor::new(vec![hidden], x.data()[..hidden].to_vec())
    }
    fn backward(&self, _: &[&Tensor], _: &Tensor, _: &[u32], _: &mut Context) -> Result<Vec<Tensor>> {
        no_backward(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_fast_is_exp_to_f32_precision() {
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -(i as f32) * 87.0 / 200_000.0;
            let want = (x as f64).exp();
            worst = worst.max(((exp_fast(x) as f64 - want) / want).abs());
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(exp_fast(-1000.0), 0.0);
        assert_eq!(exp_fast(0.0), 1.0);
    }
}
