//! The paper's optimizer: SGD with momentum (no dampening, as Caffe) and L2
//! weight decay, computed as burn's `Sgd` computes it, with the update fused
//! into one pass over each parameter on flex.
//!
//! Why: burn's `Sgd` makes seven elementwise passes per parameter (the
//! decay, a `× (1 − dampening)` even at 0, the momentum, the learning rate,
//! the update), some allocating, all on the calling thread while the other
//! core waits: ~12% of a TNet training step on 2 cores (perf,
//! 2026-12-07). The fused pass does the same f32 operations in the same
//! order on both cores, so its results are bitwise burn's, and its state is
//! recorded under burn's names, so checkpoints written by either load in
//! the other.

use burn::backend::DispatchDevice;
use burn::backend::flex::{Flex, FlexTensor};
use burn::optim::{LearningRate, Optimizer, RecordState, StateSink, StateSource, join_path};
use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;

/// SGD with momentum `momentum` (velocity `v ← μ·v + g`, Caffe's without
/// the learning rate inside) and weight decay `weight_decay` (`g ← g + λ·w`).
#[derive(Debug, Clone)]
pub struct Sgd {
    pub momentum: f32,
    pub weight_decay: f32,
}

/// One parameter's velocity.
#[derive(Clone)]
pub struct SgdState<const D: usize> {
    velocity: Tensor<D>,
}

/// burn's `SgdState { momentum: Some(MomentumState { velocity }) }` names
/// its one tensor `<param>.momentum.velocity`; so does this.
impl<const D: usize> RecordState for SgdState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        let data = self.velocity.clone().into_data();
        out.push_tensor(&join_path(prefix, "momentum"), "velocity", data);
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let data = src.take_tensor(&join_path(prefix, "momentum"), "velocity")?;
        Some(SgdState {
            velocity: Tensor::from_data(data, device),
        })
    }
}

impl Optimizer for Sgd {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<SgdState<D>>,
    ) -> (Tensor<D>, Option<SgdState<D>>) {
        let velocity = state.map(|s| s.velocity);
        let on_flex =
            on_flex_f32(&tensor) && on_flex_f32(&grad) && velocity.as_ref().is_none_or(on_flex_f32);
        let (tensor, velocity) = if on_flex {
            let flex = |t: Tensor<D>| t.try_into_primitive::<Flex>().ok();
            match (flex(tensor), flex(grad), velocity.map(flex)) {
                (Some(w), Some(g), None) => self.fused(lr, w, g, None),
                (Some(w), Some(g), Some(Some(v))) => self.fused(lr, w, g, Some(v)),
                _ => unreachable!("checked to be f32 tensors on flex"),
            }
        } else {
            self.generic(lr, tensor, grad, velocity)
        };
        (tensor, Some(SgdState { velocity }))
    }

    fn to_device<const D: usize>(state: SgdState<D>, device: &Device) -> SgdState<D> {
        SgdState {
            velocity: state.velocity.to_device(device),
        }
    }
}

fn on_flex_f32<const D: usize>(t: &Tensor<D>) -> bool {
    matches!(t.device().as_dispatch(), DispatchDevice::Flex(_)) && t.dtype() == DType::F32
}

/// Values per task of the fused pass: large enough that a task's overhead
/// is negligible, small enough that a 2-core split balances.
const CHUNK: usize = 1 << 15;

impl Sgd {
    /// burn's `Sgd::step`, op by op (any backend), less its `× (1 −
    /// dampening)`, which at dampening 0 is exact.
    fn generic<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        velocity: Option<Tensor<D>>,
    ) -> (Tensor<D>, Tensor<D>) {
        let grad = tensor.clone().mul_scalar(self.weight_decay).add(grad);
        let velocity = match velocity {
            Some(v) => grad.add(v.mul_scalar(self.momentum)),
            None => grad,
        };
        let tensor = tensor - velocity.clone().mul_scalar(lr);
        (tensor, velocity)
    }

    /// The same update in one pass, in place where the buffers are not
    /// shared; tensors that are not contiguous, or whose shapes differ
    /// (burn's ops then fail as they would have), take [`Sgd::generic`].
    fn fused<const D: usize>(
        &self,
        lr: LearningRate,
        mut w: FlexTensor,
        g: FlexTensor,
        v: Option<FlexTensor>,
    ) -> (Tensor<D>, Tensor<D>) {
        let shape = w.layout().shape().clone();
        let fits = |t: &FlexTensor| {
            t.layout().contiguous_offsets().is_some() && *t.layout().shape() == shape
        };
        let lift = |t: FlexTensor| Tensor::<D>::from_primitive::<Flex>(t);
        if !fits(&w) || !fits(&g) || v.as_ref().is_some_and(|v| !fits(v)) {
            return self.generic(lr, lift(w), lift(g), v.map(lift));
        }
        let (mu, wd, lr) = (self.momentum, self.weight_decay, lr as f32);
        let v = match v {
            Some(mut v) => {
                each_value(&mut w, &mut v, &g, |w, v, g| {
                    *v = (*w * wd + g) + *v * mu;
                    *w -= *v * lr;
                });
                v
            }
            None => {
                // The first step: the velocity is the decayed gradient
                // (every value of the new buffer is written below).
                let mut v = FlexTensor::empty(shape, DType::F32);
                each_value(&mut w, &mut v, &g, |w, v, g| {
                    *v = *w * wd + g;
                    *w -= *v * lr;
                });
                v
            }
        };
        (lift(w), lift(v))
    }
}

/// `f(w, v, g)` for each value of the weights, velocity and gradient, in
/// chunks over the threads.
fn each_value(
    w: &mut FlexTensor,
    v: &mut FlexTensor,
    g: &FlexTensor,
    f: impl Fn(&mut f32, &mut f32, f32) + Sync,
) {
    values_mut(w)
        .par_chunks_mut(CHUNK)
        .zip(values_mut(v).par_chunks_mut(CHUNK))
        .zip(values(g).par_chunks(CHUNK))
        .for_each(|((w, v), g)| {
            for ((w, v), g) in w.iter_mut().zip(v).zip(g) {
                f(w, v, *g);
            }
        });
}

/// A contiguous flex tensor's f32 values.
fn values(t: &FlexTensor) -> &[f32] {
    let (start, end) = t.layout().contiguous_offsets().expect("checked contiguous");
    &t.storage::<f32>()[start..end]
}

/// The same, writable (copied first if the buffer is shared).
fn values_mut(t: &mut FlexTensor) -> &mut [f32] {
    let (start, end) = t.layout().contiguous_offsets().expect("checked contiguous");
    &mut t.storage_mut::<f32>()[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::decay::WeightDecayConfig;
    use burn::optim::momentum::MomentumConfig;
    use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};

    const MOMENTUM: f64 = 0.9;
    const DECAY: f64 = 5e-4;

    fn burns() -> ModuleOptimizer {
        SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new()
                    .with_momentum(MOMENTUM)
                    .with_dampening(0.0),
            ))
            .with_weight_decay(Some(WeightDecayConfig::new(DECAY as f32)))
            .init()
    }

    fn ours() -> ModuleOptimizer {
        ModuleOptimizer::from(Sgd {
            momentum: MOMENTUM as f32,
            weight_decay: DECAY as f32,
        })
    }

    /// `n` values in [-1, 1) from `seed`, drawn here rather than by the
    /// device's global RNG, which tests running in parallel reseed.
    fn uniform(seed: u64, n: usize) -> Vec<f32> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    fn tensor<const D: usize>(seed: u64, shape: [usize; D], device: &Device) -> Tensor<D> {
        let n = shape.iter().product();
        Tensor::from_data(
            burn::tensor::TensorData::new(uniform(seed, n), shape),
            device,
        )
    }

    /// A layer of 300 × 300 weights: more values than one task of the
    /// fused pass, so both cores take part.
    fn layer(device: &Device) -> Linear {
        let mut layer = LinearConfig::new(300, 300).init(device);
        layer.weight = burn::module::Param::from_tensor(tensor(7, [300, 300], device) * 0.05);
        layer.bias = Some(burn::module::Param::from_tensor(
            tensor(8, [300], device) * 0.05,
        ));
        layer
    }

    fn grads(layer: &Linear, step: u64) -> GradientsParams {
        let device = layer.weight.val().device();
        let x = tensor::<2>(100 + step, [8, 300], &device);
        let loss = layer.forward(x).powi_scalar(2).mean();
        GradientsParams::from_grads(loss.backward(), layer)
    }

    fn params(layer: &Linear) -> Vec<f32> {
        let mut v = layer
            .weight
            .val()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        v.extend(
            layer
                .bias
                .as_ref()
                .unwrap()
                .val()
                .into_data()
                .try_into_vec::<f32>()
                .unwrap(),
        );
        v
    }

    /// `steps` steps of `optim` from the same layer and batches, at a
    /// learning rate that changes every step.
    fn train(
        mut optim: ModuleOptimizer,
        mut layer: Linear,
        steps: std::ops::Range<u64>,
    ) -> (Linear, ModuleOptimizer) {
        for step in steps {
            let g = grads(&layer, step);
            layer = optim.step(0.1 / (1 + step) as f64, layer, g);
        }
        (layer, optim)
    }

    #[test]
    fn takes_bitwise_the_steps_of_burns_sgd() {
        let device = Device::flex().autodiff();
        let (a, _) = train(burns(), layer(&device), 0..4);
        let (b, _) = train(ours(), layer(&device), 0..4);
        let (a, b) = (params(&a), params(&b));
        assert_eq!(a.len(), 300 * 300 + 300);
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        // And the steps moved the weights.
        assert_ne!(params(&layer(&device)), b);
    }

    #[test]
    fn resumes_from_a_record_of_burns_sgd_and_burns_from_ours() {
        let device = Device::flex().autodiff();
        let (start, burn_optim) = train(burns(), layer(&device), 0..2);
        let record = burn_optim.to_record();
        let (reference, _) = train(burn_optim, start.clone(), 2..4);
        let (from_burn, _) = train(ours().load_record(record), start.clone(), 2..4);
        // Ours, from the same start, recorded and resumed by burn's.
        let (ours_start, our_optim) = train(ours(), layer(&device), 0..2);
        let (from_ours, _) = train(burns().load_record(our_optim.to_record()), ours_start, 2..4);
        let reference = params(&reference);
        for resumed in [params(&from_burn), params(&from_ours)] {
            assert!(
                reference
                    .iter()
                    .zip(&resumed)
                    .all(|(x, y)| x.to_bits() == y.to_bits())
            );
        }
        // Without the velocity, the steps differ: the record carried it.
        let (fresh, _) = train(ours(), start, 2..4);
        assert_ne!(reference, params(&fresh));
    }

    #[test]
    fn the_fused_pass_computes_the_generic_ops() {
        let device = Device::flex();
        let t = |seed: u64| tensor::<1>(seed, [70_000], &device);
        let sgd = Sgd {
            momentum: 0.9,
            weight_decay: 5e-4,
        };
        let flex = |x: Tensor<1>| x.try_into_primitive::<Flex>().unwrap();
        let bits = |x: Tensor<1>| {
            x.into_data()
                .try_into_vec::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        for velocity in [None, Some(t(3))] {
            let (w1, v1) = sgd.generic(0.01, t(1), t(2), velocity.clone());
            let (w2, v2) = sgd.fused(0.01, flex(t(1)), flex(t(2)), velocity.map(flex));
            assert_eq!(bits(w1), bits(w2));
            assert_eq!(bits(v1), bits(v2));
        }
    }
}
