//! The layers' primitive ops, routed by device: on libtorch (`--features
//! tch`), convolution and ReLU run through libtorch's own backward passes
//! ([`libtorch`]); on flex under autodiff, convolution gradients are
//! im2col + GEMM ([`flex`]); everywhere else burn's. Models call these
//! instead of `Conv2d::forward` and `relu`.

pub mod flex;
#[cfg(feature = "tch")]
pub mod libtorch;

use std::cell::Cell;

use burn::nn::conv::Conv2d;
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
        if let Some(y) = flex::conv2d(conv, x.clone()) {
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
