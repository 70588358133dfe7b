//! Helpers shared by the layer, model and session tests.

/// Small seeded generator (xorshift64*), so failures reproduce without a rand dependency.
pub struct Rng(pub u64);

#[allow(dead_code)]
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    pub fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    pub fn floats(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.f32(lo, hi)).collect()
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() >> 33) as usize % n
    }
    /// `n` codes of `bits` bits.
    pub fn codes(&mut self, n: usize, bits: u8) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 40) as u8 & ((1u16 << bits) - 1) as u8).collect()
    }
}

/// A width from a plain number, as a test writes it.
#[allow(dead_code)]
pub fn b(n: u8) -> anybit::Bits {
    anybit::Bits::new(n).unwrap()
}

/// A clock that advances 0.5 ms per reading: deterministic (an attack's slices end after a known
/// number of readings), and fast in debug builds.
#[allow(dead_code)]
pub fn clock() -> impl Fn() -> f64 {
    let t = std::cell::Cell::new(0.0f64);
    move || {
        t.set(t.get() + 0.5);
        t.get()
    }
}
