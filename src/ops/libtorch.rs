//! libtorch's own backward passes for convolution and ReLU under burn's
//! autodiff (burn 0.22's backend-extension mechanism).
//!
//! Why: burn-tch does not override `conv2d_x_backward` /
//! `conv2d_weight_backward`, so burn's generic fallback computes the weight
//! gradient as a convolution whose kernel is the whole output-gradient map —
//! 12× slower than PyTorch on an H200 (`docs/gpu.md`). Here the forward runs
//! under libtorch's autograd on detached leaves; burn gets the detached
//! output, and the backward asks libtorch for dx, dw and db from the graph it
//! kept (`run_backward` on `Σ y·g`), with no recomputed forward.
//!
//! Pitfalls handled (see `burn-0.22.md`): the input `TchTensor`s are kept
//! alive in the backward state, so burn-tch never mutates in place a tensor
//! libtorch saved; grad mode is per thread (`with_grad`); calling an
//! extension on a non-libtorch device panics, so callers check the device.

// burn-tch is deprecated upstream but is burn 0.22's only CUDA path that builds offline.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::libtorch::TchTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, DispatchDevice, LibTorch, backend_extension};
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

/// Whether `device` (or the device an autodiff device wraps) is libtorch.
pub fn on_libtorch(device: &Device) -> bool {
    fn inner(d: &DispatchDevice) -> bool {
        match d {
            DispatchDevice::LibTorch(_) => true,
            DispatchDevice::Autodiff(a) => inner(a),
            _ => false,
        }
    }
    inner(device.as_dispatch())
}

/// Convolution geometry as libtorch takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub stride: [i64; 2],
    pub padding: [i64; 2],
    pub dilation: [i64; 2],
    pub groups: i64,
    /// Convolve in bf16 (inputs cast inside libtorch's graph, output back to fp32).
    pub bf16: bool,
}

#[backend_extension(LibTorch, Autodiff)]
pub trait TorchOps: Backend {
    /// 2-D convolution with a bias.
    fn torch_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self>;
    /// 2-D convolution without a bias (extension inputs cannot be optional).
    fn torch_conv2d_no_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self>;
    fn torch_relu(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

fn conv(x: &tch::Tensor, w: &tch::Tensor, b: Option<&tch::Tensor>, g: Geometry) -> tch::Tensor {
    if g.bf16 {
        let k = tch::Kind::BFloat16;
        let y = x.to_kind(k).conv2d(
            &w.to_kind(k),
            b.map(|b| b.to_kind(k)),
            g.stride,
            g.padding,
            g.dilation,
            g.groups,
        );
        return y.to_kind(tch::Kind::Float);
    }
    x.conv2d(w, b, g.stride, g.padding, g.dilation, g.groups)
}

impl TorchOps for LibTorch {
    fn torch_conv2d(
        x: TchTensor,
        weight: TchTensor,
        bias: TchTensor,
        geometry: Geometry,
    ) -> TchTensor {
        TchTensor::new(conv(
            &x.tensor,
            &weight.tensor,
            Some(&bias.tensor),
            geometry,
        ))
    }
    fn torch_conv2d_no_bias(x: TchTensor, weight: TchTensor, geometry: Geometry) -> TchTensor {
        TchTensor::new(conv(&x.tensor, &weight.tensor, None, geometry))
    }
    fn torch_relu(x: TchTensor) -> TchTensor {
        TchTensor::new(x.tensor.relu())
    }
}

/// What the backward pass needs: libtorch's output with its graph, the
/// leaves it was computed from, and burn's inputs and output kept alive —
/// a shared burn-tch tensor is never modified in place, and libtorch may
/// have saved any of them (ReLU saves its output).
struct Saved {
    output: tch::Tensor,
    leaves: Vec<tch::Tensor>,
    _inputs: Vec<TchTensor>,
    _output: TchTensor,
}

impl Clone for Saved {
    fn clone(&self) -> Self {
        Saved {
            output: self.output.shallow_clone(),
            leaves: self.leaves.iter().map(|t| t.shallow_clone()).collect(),
            _inputs: self._inputs.clone(),
            _output: self._output.clone(),
        }
    }
}

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Saved({:?}, {} leaves)",
            self.output.size(),
            self.leaves.len()
        )
    }
}

/// Backward of a libtorch-autograd op with `N` tensor inputs.
#[derive(Debug)]
struct TorchBackward<const N: usize>;

impl<const N: usize> Backward<LibTorch, N> for TorchBackward<N> {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let saved = ops.state;
        // Only the parents burn tracks were made libtorch leaves that require grad.
        let wanted: Vec<(usize, &tch::Tensor)> = saved
            .leaves
            .iter()
            .enumerate()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        if wanted.is_empty() {
            return;
        }
        let root = tch::with_grad(|| (&saved.output * &grad.tensor).sum(tch::Kind::Float));
        let inputs: Vec<&tch::Tensor> = wanted.iter().map(|(_, t)| *t).collect();
        let got = tch::Tensor::run_backward(&[root], &inputs, false, false);
        for ((k, _), g) in wanted.into_iter().zip(got) {
            if let Some(node) = &ops.parents[k] {
                grads.register::<LibTorch>(node.id, TchTensor::new(g));
            }
        }
    }
}

/// Run `f` on libtorch leaves under autograd and record [`TorchBackward`].
fn tracked<const N: usize, C: CheckpointStrategy>(
    inputs: [FloatTensor<Autodiff<LibTorch, C>>; N],
    f: impl Fn(&[tch::Tensor]) -> tch::Tensor,
) -> FloatTensor<Autodiff<LibTorch, C>> {
    let nodes = inputs.each_ref().map(|t| t.node());
    let tracked: [bool; N] = inputs.each_ref().map(|t| t.is_tracked());
    match TorchBackward::<N>
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let prims: Vec<TchTensor> = inputs.into_iter().map(|t| t.into_primitive()).collect();
            let leaves: Vec<tch::Tensor> = prims
                .iter()
                .zip(tracked)
                .map(|(p, t)| p.tensor.detach().set_requires_grad(t))
                .collect();
            let output = tch::with_grad(|| f(&leaves));
            let out = TchTensor::new(output.detach());
            prep.finish(
                Saved {
                    output,
                    leaves,
                    _inputs: prims,
                    _output: out.clone(),
                },
                out,
            )
        }
        OpsKind::UnTracked(prep) => {
            let prims: Vec<tch::Tensor> = inputs
                .into_iter()
                .map(|t| t.into_primitive().tensor)
                .collect();
            prep.finish(TchTensor::new(tch::no_grad(|| f(&prims))))
        }
    }
}

impl<C: CheckpointStrategy> TorchOps for Autodiff<LibTorch, C> {
    fn torch_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self> {
        tracked::<3, C>([x, weight, bias], |t| {
            conv(&t[0], &t[1], Some(&t[2]), geometry)
        })
    }
    fn torch_conv2d_no_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self> {
        tracked::<2, C>([x, weight], |t| conv(&t[0], &t[1], None, geometry))
    }
    fn torch_relu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        tracked::<1, C>([x], |t| t[0].relu())
    }
}

/// `conv.forward(x)` through [`TorchOps`]; `None` when the padding is not
/// symmetric (libtorch's conv2d takes one padding per side pair).
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Option<Tensor<4>> {
    let i = |v: [usize; 2]| v.map(|x| x as i64);
    let padding = i(super::symmetric_padding(conv)?);
    let bf16 = super::precision() == super::Precision::Bf16;
    let geometry = Geometry {
        stride: i(conv.stride),
        padding,
        dilation: i(conv.dilation),
        groups: conv.groups as i64,
        bf16,
    };
    let (x, weight) = (x.into_dispatch(), conv.weight.val().into_dispatch());
    let y = match &conv.bias {
        Some(b) => {
            <Dispatch as TorchOps>::torch_conv2d(x, weight, b.val().into_dispatch(), geometry)
        }
        None => <Dispatch as TorchOps>::torch_conv2d_no_bias(x, weight, geometry),
    };
    Some(Tensor::from_dispatch(y))
}

pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as TorchOps>::torch_relu(x.into_dispatch()))
}

#[cfg(test)]
mod tests {
    use super::super::test_values::{close, fixed, vals};
    use super::*;
    use burn::module::Param;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Distribution, TensorData};

    /// A conv with fixed random weights on `device`.
    fn conv_on(
        device: &Device,
        w: &TensorData,
        b: Option<&TensorData>,
        stride: usize,
        groups: usize,
    ) -> Conv2d {
        let [cout, cin_g, k, _] = Tensor::<4>::from_data(w.clone(), &Device::flex()).dims();
        let mut conv = Conv2dConfig::new([cin_g * groups, cout], [k, k])
            .with_stride([stride, stride])
            .with_groups(groups)
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(b.is_some())
            .init(device);
        conv.weight = Param::from_tensor(Tensor::from_data(w.clone(), device));
        conv.bias = b.map(|b| Param::from_tensor(Tensor::from_data(b.clone(), device)));
        conv
    }

    /// Output, dL/dx, dL/dw, dL/db of L = Σ y · r for a fixed r.
    fn grads(
        device: &Device,
        fast: bool,
        x: &TensorData,
        w: &TensorData,
        b: Option<&TensorData>,
        stride: usize,
        groups: usize,
    ) -> [Vec<f32>; 4] {
        let conv = conv_on(device, w, b, stride, groups);
        let x: Tensor<4> = Tensor::<4>::from_data(x.clone(), device).require_grad();
        let y = if fast {
            conv2d(&conv, x.clone()).expect("symmetric padding")
        } else {
            conv.forward(x.clone())
        };
        let r = Tensor::<4>::from_data(
            TensorData::new(
                (0..y.shape().num_elements())
                    .map(|i| ((i * 7 % 13) as f32 - 6.0) / 6.0)
                    .collect::<Vec<_>>(),
                y.dims(),
            ),
            device,
        );
        let loss = (crate::ops::relu(y.clone()) * r).sum();
        let g = loss.backward();
        [
            vals(y),
            vals(x.grad(&g).unwrap()),
            vals(conv.weight.grad(&g).unwrap()),
            conv.bias
                .as_ref()
                .map(|b| vals(b.grad(&g).unwrap()))
                .unwrap_or_default(),
        ]
    }

    #[test]
    fn conv_and_relu_gradients_match_burns_and_flex() {
        let flex = Device::flex();
        let torch = Device::libtorch().autodiff();
        let rand = |shape: [usize; 4]| {
            Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &flex).into_data()
        };
        for (stride, groups, bias) in [(1, 1, true), (2, 1, false), (1, 2, true)] {
            let x = rand([2, 4, 9, 9]);
            let w = rand([6, 4 / groups, 3, 3]);
            let b = bias.then(|| {
                Tensor::<1>::random([6], Distribution::Normal(0.0, 1.0), &flex).into_data()
            });
            let ours = grads(&torch, true, &x, &w, b.as_ref(), stride, groups);
            let burn_tch = grads(&torch, false, &x, &w, b.as_ref(), stride, groups);
            let burn_flex = grads(
                &flex.clone().autodiff(),
                false,
                &x,
                &w,
                b.as_ref(),
                stride,
                groups,
            );
            for (k, what) in ["output", "dx", "dw", "db"].iter().enumerate() {
                close(
                    &ours[k],
                    &burn_tch[k],
                    &format!("{what} vs burn on libtorch (stride {stride}, groups {groups})"),
                );
                close(
                    &ours[k],
                    &burn_flex[k],
                    &format!("{what} vs flex (stride {stride}, groups {groups})"),
                );
            }
        }
    }

    #[test]
    fn bf16_convolution_keeps_fp32_weights_and_is_close() {
        let torch = Device::libtorch().autodiff();
        let x = fixed([2, 4, 8, 8], 1);
        let w = fixed([6, 4, 3, 3], 2);
        // A linear loss Σ y·r: through a ReLU one output whose sign flips
        // under rounding moves dx by ~5% of its norm, which measures luck,
        // not precision (CI failed that way at 7%).
        let run = || {
            let conv = conv_on(&torch, &w, None, 1, 1);
            let x = Tensor::<4>::from_data(x.clone(), &torch).require_grad();
            let y = conv2d(&conv, x.clone()).expect("symmetric padding");
            let r = Tensor::<4>::from_data(fixed(y.dims(), 3), &torch);
            let g = (y.clone() * r).sum().backward();
            [
                vals(y),
                vals(x.grad(&g).unwrap()),
                vals(conv.weight.grad(&g).unwrap()),
            ]
        };
        let fp32 = run();
        let bf16 = crate::ops::with_precision(crate::ops::Precision::Bf16, run);
        assert_ne!(fp32[0], bf16[0], "bf16 must actually round");
        // bf16 keeps 8 significant bits (relative rounding 2^-9 ≈ 0.2%);
        // sums of rounded products stay within ~1% in relative L2.
        for k in 0..3 {
            let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            let diff: Vec<f32> = fp32[k].iter().zip(&bf16[k]).map(|(a, b)| a - b).collect();
            let rel = norm(&diff) / norm(&fp32[k]);
            assert!(rel < 1e-2, "part {k}: relative L2 error {rel}");
        }
        // The weight gradient comes back in fp32 (master weights stay fp32).
        let conv = conv_on(&torch, &w, None, 1, 1);
        let y = crate::ops::with_precision(crate::ops::Precision::Bf16, || {
            conv2d(&conv, Tensor::from_data(x.clone(), &torch)).unwrap()
        });
        assert_eq!(y.dtype(), burn::tensor::DType::F32);
    }

    #[test]
    fn conv_weight_gradient_matches_finite_differences() {
        let torch = Device::libtorch();
        let ad = torch.clone().autodiff();
        let x =
            Tensor::<4>::random([1, 2, 6, 6], Distribution::Normal(0.0, 1.0), &torch).into_data();
        let w =
            Tensor::<4>::random([3, 2, 3, 3], Distribution::Normal(0.0, 1.0), &torch).into_data();
        let loss = |w: &TensorData| -> f64 {
            let conv = conv_on(&torch, w, None, 1, 1);
            let y = conv2d(&conv, Tensor::from_data(x.clone(), &torch)).unwrap();
            // Σ y² in f64: L is quadratic in w, so central differences are exact but for rounding.
            vals(y).iter().map(|v| (*v as f64).powi(2)).sum::<f64>()
        };
        // L = Σ y²: its gradient through our backward against central differences.
        let conv = conv_on(&ad, &w, None, 1, 1);
        let y = conv2d(&conv, Tensor::from_data(x.clone(), &ad)).unwrap();
        let g = (y.clone() * y).sum().backward();
        let dw = vals(conv.weight.grad(&g).unwrap());
        let base: Vec<f32> = w.clone().try_into_vec().unwrap();
        for k in [0, 7, 20, 53] {
            let eps = 1e-2f32;
            let shifted = |d: f32| {
                let mut v = base.clone();
                v[k] += d;
                TensorData::new(v, [3, 2, 3, 3])
            };
            let numeric = (loss(&shifted(eps)) - loss(&shifted(-eps))) / (2.0 * eps as f64);
            let rel = (numeric - dw[k] as f64).abs() / numeric.abs().max(1.0);
            assert!(
                rel < 2e-3,
                "dw[{k}]: analytic {} vs numeric {numeric}",
                dw[k]
            );
        }
    }
}
