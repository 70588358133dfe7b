//! A plain f32 tensor: a shape and row-major data. Image tensors are NHWC without the batch
//! dimension ([height, width, channels]); the last dimension is always the fastest.

use crate::error::{ErrorKind, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// Number of elements of `shape`, or `None` on overflow.
pub fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        match numel(&shape) {
            Some(n) if n == data.len() => Ok(Tensor { shape, data }),
            _ => crate::bail!(
                ErrorKind::ShapeMismatch,
                "tensor of shape {:?} cannot hold {} values",
                shape,
                data.len()
            ),
        }
    }

    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = numel(&shape).expect("tensor shape overflows usize");
        Tensor { shape, data: vec![0.0; n] }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Same data, new shape of the same element count.
    pub fn reshape(self, shape: Vec<usize>) -> Result<Self> {
        Tensor::new(shape, self.data)
    }
}
