//! The layers' primitive ops, routed by device: on libtorch (`--features
//! tch`), convolution and ReLU run through libtorch's own backward passes
//! ([`libtorch`]); on flex under autodiff, convolution gradients are
//! im2col + GEMM ([`flex`]); everywhere else burn's. Models call these
//! instead of `Conv2d::forward` and `relu`.

pub mod flex;
#[cfg(feature = "tch")]
pub mod libtorch;
mod winograd;

use std::cell::Cell;

use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::Tensor;

pub use crate::vocab::Precision;

thread_local! {
    // A stage runs on one thread, so its precision is that thread's.
    static PRECISION: Cell<Precision> = const { Cell::new(Precision::Fp32) };
}

/// Run `f` with the convolutions at precision `p` on this thread.
pub fn with_precision<T>(p: Precision, f: impl FnOnce() -> T) -> T {
    let before = PRECISION.with(|c| c.replace(p));
    let out = f();
    PRECISION.with(|c| c.set(before));
    out
}

pub fn precision() -> Precision {
    PRECISION.with(|c| c.get())
}

/// `conv.forward(x)`, with libtorch's convolution backward on libtorch
/// devices and im2col + GEMM gradients on flex.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if flex::on_flex_autodiff(&x.device()) {
        if let Some(y) = flex::conv2d(conv, x.clone(), false, false) {
            return y;
        }
    }
    #[cfg(feature = "tch")]
    if libtorch::on_libtorch(&x.device()) {
        if let Some(y) = libtorch::conv2d(conv, x.clone()) {
            return y;
        }
    }
    conv.forward(x)
}

/// `relu(conv2d(conv, x))`, fused into one op on flex under autodiff (one
/// pass less over the activations each way, and no mask tensor).
pub fn conv2d_relu(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if flex::on_flex_autodiff(&x.device()) {
        if let Some(y) = flex::conv2d(conv, x.clone(), true, false) {
            return y;
        }
    }
    relu(conv2d(conv, x))
}

/// `pool(relu(conv2d(conv, x)))`, fused into one op on flex under autodiff
/// where `pool` is a 2×2 max pool of stride 2 (the nets' only pool).
pub fn conv2d_relu_pool(conv: &Conv2d, x: Tensor<4>, pool: &MaxPool2d) -> Tensor<4> {
    let two_by_two = pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && matches!(pool.padding, burn::nn::PaddingConfig2d::Valid)
        && !pool.ceil_mode;
    if two_by_two && flex::on_flex_autodiff(&x.device()) {
        if let Some(y) = flex::conv2d(conv, x.clone(), true, true) {
            return y;
        }
    }
    pool.forward(conv2d_relu(conv, x))
}

/// ReLU, with libtorch's threshold backward on libtorch devices.
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "tch")]
    if libtorch::on_libtorch(&x.device()) {
        return libtorch::relu(x);
    }
    burn::tensor::activation::relu(x)
}

/// The conv's padding as one value per spatial dimension, when it is the
/// same on both sides (burn's `Same` is, for stride 1 and odd kernels).
fn symmetric_padding(conv: &Conv2d) -> Option<[usize; 2]> {
    use burn::nn::PaddingConfig2d;
    match conv.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        PaddingConfig2d::Same
            if conv.stride == [1, 1] && conv.kernel_size.iter().all(|k| k % 2 == 1) =>
        {
            Some([0, 1].map(|d| conv.dilation[d] * (conv.kernel_size[d] - 1) / 2))
        }
        _ => None,
    }
}

/// Values the ops' tests share: fixed inputs (never an unseeded draw) and
/// a tolerance relative to the larger side.
#[cfg(test)]
pub(crate) mod test_values {
    use burn::tensor::{Tensor, TensorData};

    /// Fixed pseudo-random values in [-1, 1), varied by `salt`.
    pub fn fixed(dims: [usize; 4], salt: usize) -> TensorData {
        let n = dims.iter().product::<usize>();
        let v = (0..n)
            .map(|i| (((i * 7919 + salt * 104_729) % 1000) as f32 / 500.0) - 1.0)
            .collect::<Vec<_>>();
        TensorData::new(v, dims)
    }

    pub fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()
    }

    /// Every element within 1e-4 of `b`'s largest magnitude.
    pub fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * scale, "{what}[{i}]: {x} vs {y}");
        }
    }
}
