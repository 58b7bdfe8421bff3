//! The hand-written training loop: SGD with momentum and weight decay,
//! seeded batches, horizontal flips, a NaN guard and validation after every
//! epoch. [`fit`] is the loop; the paper's stages differ only in the loss
//! they hand it (attribute BCE, MNL's two BCEs, the hint L2, PaW's fused BCE).

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::tensor::{Device, Tensor};

use crate::data::{ImageSet, epoch_batches};
use crate::metrics;
pub mod checkpoint;
pub mod sgd;

use crate::models::AttrNet;
use crate::progress::Progress;
use crate::spec::{KeepEpoch, LossNormalization, LrSchedule, TrainConfig};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(
        "{phase}: loss became {value} at epoch {epoch}, batch {batch} (lr {lr}): lower `lr` or check the data"
    )]
    NonFinite {
        phase: String,
        value: f32,
        epoch: u32,
        batch: usize,
        lr: f64,
    },
    #[error(
        "{phase}: stopped after batch {batch} of epoch {epoch} when asked to (SIGUSR1); the checkpoint resumes it"
    )]
    Stopped {
        phase: String,
        epoch: u32,
        batch: usize,
    },
}

/// One epoch's figures.
#[derive(Debug, Clone)]
pub struct EpochRecord {
    pub phase: String,
    pub epoch: u32,
    pub train_loss: f64,
    /// Mean validation accuracy of the main output.
    pub val_accuracy: f64,
    /// Same for the MNL classification branch, when trained.
    pub val_accuracy_mnl: Option<f64>,
    pub seconds: f64,
}

/// Sigmoid cross-entropy on logits, averaged over batch and attributes.
pub fn bce_with_logits(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let pos = logits.clone().clamp_min(0.0);
    let log1p = (logits.clone().abs().neg().exp() + 1.0).log();
    (pos - logits * targets + log1p).mean()
}

/// Softmax cross-entropy of one-hot `targets`, averaged over the batch
/// (single-label data: CUB's classes).
pub fn softmax_cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let log_p = burn::tensor::activation::log_softmax(logits, 1);
    (log_p * targets).sum_dim(1).mean().neg()
}

/// Sigmoid cross-entropy reduced as `norm` says: Caffe's `batch` sums over
/// the M attributes (M times the mean), so the paper's learning rates apply.
pub fn attribute_loss(logits: Tensor<2>, targets: Tensor<2>, norm: LossNormalization) -> Tensor<1> {
    let m = logits.dims()[1] as f64;
    let mean = bce_with_logits(logits, targets);
    match norm {
        LossNormalization::BatchAttributes => mean,
        LossNormalization::Batch => mean * m,
    }
}

/// The task's loss: independent sigmoids for attributes, a softmax for classes.
pub fn label_loss(
    logits: Tensor<2>,
    targets: Tensor<2>,
    single_label: bool,
    norm: LossNormalization,
) -> Tensor<1> {
    if single_label {
        softmax_cross_entropy(logits, targets)
    } else {
        attribute_loss(logits, targets, norm)
    }
}

/// The learning rate at `step` of `total` under `schedule`.
pub fn scheduled_lr(schedule: LrSchedule, lr: f64, step: u64, total: u64) -> f64 {
    match schedule {
        LrSchedule::Constant => lr,
        LrSchedule::Cosine => {
            let t = step as f64 / total.max(1) as f64;
            0.5 * lr * (1.0 + (std::f64::consts::PI * t).cos())
        }
    }
}

/// The epoch whose weights a phase kept: the last, or the best on validation
/// (the first of equals).
pub fn kept_epoch(history: &[EpochRecord], keep: KeepEpoch) -> Option<&EpochRecord> {
    match keep {
        KeepEpoch::Last => history.last(),
        KeepEpoch::Best => history.iter().reduce(|best, h| {
            if h.val_accuracy > best.val_accuracy {
                h
            } else {
                best
            }
        }),
    }
}

/// Caffe's Euclidean loss: Σ (a − b)² / (2 · batch). The paper's hint
/// learning rate (1e-7) assumes this reduction.
pub fn euclidean_loss(a: Tensor<4>, b: Tensor<4>) -> Tensor<1> {
    let batch = a.dims()[0] as f64;
    (a - b).powi_scalar(2).sum() / (2.0 * batch)
}

/// ‖student − teacher‖² / ‖teacher‖² over the batch: the hint error as a
/// fraction of the teacher's energy, so a student that outputs zeros scores
/// 1 whatever the teacher's scale (a teacher of all zeros counts as energy 1).
pub fn relative_hint_loss(student: Tensor<4>, teacher: Tensor<4>) -> Tensor<1> {
    let energy = teacher.clone().powi_scalar(2).sum().into_scalar::<f32>() as f64;
    let energy = if energy > 0.0 { energy } else { 1.0 };
    (student - teacher).powi_scalar(2).sum() / energy
}

/// The paper's optimizer ([`sgd::Sgd`]: momentum without dampening, as
/// Caffe, and L2 weight decay); `clip` scales each parameter's gradient
/// down to that L2 norm first. `exp bench` times the same one.
pub fn sgd(momentum: f64, weight_decay: f64, clip: Option<f64>) -> burn::optim::ModuleOptimizer {
    let optim = burn::optim::ModuleOptimizer::from(sgd::Sgd {
        momentum: momentum as f32,
        weight_decay: weight_decay as f32,
    });
    match clip {
        Some(c) => optim.with_grad_clipping(GradientClippingConfig::Norm(c as f32).init()),
        None => optim,
    }
}

/// What one training phase needs besides the model.
pub struct Phase<'a> {
    /// Shown in progress and logs (`hint`, `attributes`, `part 3/10`).
    pub name: String,
    pub cfg: &'a TrainConfig,
    pub lr: f64,
    pub epochs: u32,
    /// Training examples.
    pub n: usize,
    pub progress: &'a dyn Progress,
}

/// Validation result: main accuracy and, for MNL, the second branch's.
pub type Validation = (f64, Option<f64>);

/// SGD over `epochs` of seeded batches. `loss` gets the model, the batch's
/// indices and flip flags; `validate` runs after every epoch. The learning
/// rate follows `cfg.lr_schedule`; the returned weights are the epoch
/// `cfg.keep` names ([`kept_epoch`]).
pub fn fit<M: Module>(
    mut model: M,
    phase: &Phase,
    mut loss: impl FnMut(&M, &[usize], &[bool]) -> Tensor<1>,
    mut validate: impl FnMut(&M) -> Validation,
) -> Result<(M, Vec<EpochRecord>), TrainError> {
    let cfg = phase.cfg;
    let mut optim = sgd(cfg.momentum, cfg.weight_decay, cfg.grad_clip);
    let batches = phase.n.div_ceil(cfg.batch_size as usize) as u64;
    phase.progress.set_total(batches * phase.epochs as u64);
    phase.progress.set_position(0);
    let mut history: Vec<EpochRecord> = Vec::new();
    let total = batches * phase.epochs as u64;
    let mut best: Option<(f64, M)> = None;
    // Resume where an interrupted run of this stage left off.
    let ckpt = checkpoint::phase_dir(&phase.name);
    let (mut first_epoch, mut skip, mut carried) = (1u32, 0usize, (0.0f64, 0usize));
    if let Some(r) = ckpt
        .as_deref()
        .and_then(|dir| checkpoint::load(dir, &model, |w| phase.progress.log(w)))
    {
        phase.progress.log(&format!(
            "{}: resuming from its checkpoint after epoch {}{}{}",
            phase.name,
            r.state.epochs_done,
            if r.state.batches_done > 0 {
                format!(" and {} batches", r.state.batches_done)
            } else {
                String::new()
            },
            checkpoint::another_build(r.build.as_deref(), checkpoint::BUILD)
        ));
        model = r.model;
        optim = optim.load_record(r.optim);
        history = r.state.history;
        best = r.state.best.zip(r.best);
        first_epoch = r.state.epochs_done + 1;
        skip = r.state.batches_done;
        carried = (r.state.sum, r.state.count);
    }
    let save = |dir: &std::path::Path,
                model: &M,
                optim: &burn::optim::ModuleOptimizer,
                state: checkpoint::State,
                best: &Option<(f64, M)>| {
        let state = checkpoint::State {
            best: best.as_ref().map(|b| b.0),
            ..state
        };
        if let Err(e) = checkpoint::save(dir, model, optim, &state, best.as_ref().map(|b| &b.1)) {
            // A missing checkpoint costs a restart from scratch, nothing else.
            phase.progress.log(&format!("warning: {e}"));
        }
    };
    for epoch in first_epoch..=phase.epochs {
        let start = std::time::Instant::now();
        let (mut sum, mut count) = if epoch == first_epoch {
            carried
        } else {
            (0.0, 0)
        };
        // The phase name salts the seed so two phases do not share an order.
        let salt = phase
            .name
            .bytes()
            .fold(cfg.seed, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
        for (b, (idx, flip)) in
            epoch_batches(phase.n, cfg.batch_size as usize, salt, epoch, cfg.flip)
                .into_iter()
                .enumerate()
        {
            if epoch == first_epoch && b < skip {
                continue;
            }
            let mut l = loss(&model, &idx, &flip);
            let value: f32 = l.clone().into_scalar::<f32>();
            if !value.is_finite() {
                return Err(TrainError::NonFinite {
                    phase: phase.name.clone(),
                    value,
                    epoch,
                    batch: b + 1,
                    lr: phase.lr,
                });
            }
            sum += value as f64 * idx.len() as f64;
            count += idx.len();
            if cfg.loss_scale != 1.0 {
                l = l * cfg.loss_scale;
            }
            let step = (epoch as u64 - 1) * batches + b as u64;
            let lr = scheduled_lr(cfg.lr_schedule, phase.lr, step, total);
            let grads = GradientsParams::from_grads(l.backward(), &model);
            model = optim.step(lr, model, grads);
            phase
                .progress
                .set_position((epoch as u64 - 1) * batches + b as u64 + 1);
            phase.progress.set_message(format!(
                "{} epoch {epoch}/{} loss {:.4}",
                phase.name,
                phase.epochs,
                sum / count as f64
            ));
            // Asked to stop (a Slurm time limit ahead): save mid-epoch and go.
            if let Some(dir) = ckpt.as_deref().filter(|_| checkpoint::stop_requested()) {
                let state = checkpoint::State {
                    epochs_done: epoch - 1,
                    batches_done: b + 1,
                    sum,
                    count,
                    history: history.clone(),
                    best: None,
                };
                save(dir, &model, &optim, state, &best);
                return Err(TrainError::Stopped {
                    phase: phase.name.clone(),
                    epoch,
                    batch: b + 1,
                });
            }
        }
        let (val_accuracy, val_accuracy_mnl) = validate(&model);
        let rec = EpochRecord {
            phase: phase.name.clone(),
            epoch,
            train_loss: sum / count.max(1) as f64,
            val_accuracy,
            val_accuracy_mnl,
            seconds: start.elapsed().as_secs_f64(),
        };
        phase.progress.log(&format!(
            "{} epoch {epoch}: train loss {:.4}, val accuracy {:.2}%{}, {:.1}s",
            phase.name,
            rec.train_loss,
            100.0 * rec.val_accuracy,
            rec.val_accuracy_mnl
                .map(|a| format!(" (MNL branch {:.2}%)", 100.0 * a))
                .unwrap_or_default(),
            rec.seconds
        ));
        if cfg.keep == KeepEpoch::Best
            && best.as_ref().is_none_or(|(acc, _)| rec.val_accuracy > *acc)
        {
            best = Some((rec.val_accuracy, model.clone()));
        }
        history.push(rec);
        if let Some(dir) = ckpt.as_deref() {
            let state = checkpoint::State {
                epochs_done: epoch,
                batches_done: 0,
                sum: 0.0,
                count: 0,
                history: history.clone(),
                best: None,
            };
            save(dir, &model, &optim, state, &best);
        }
    }
    if let Some((_, m)) = best {
        model = m;
    }
    Ok((model, history))
}

/// Train an attribute net on whole images (with its MNL branch if attached).
pub fn train_attr_net(
    model: AttrNet,
    phase: &Phase,
    train: &ImageSet,
    val: &ImageSet,
    device: &Device,
    eval_device: &Device,
) -> Result<(AttrNet, Vec<EpochRecord>), TrainError> {
    fit(
        model,
        phase,
        |m, idx, flip| {
            let y = train.targets(idx, device);
            let out = m.forward(train.images(idx, flip, device));
            let norm = phase.cfg.loss_normalization;
            let loss = label_loss(out.scores, y.clone(), train.single_label, norm);
            match out.mnl_scores {
                // Multi-net learning: both branches' losses reach the shared convs.
                Some(mnl) => loss + label_loss(mnl, y, train.single_label, norm),
                None => loss,
            }
        },
        |m| validate_attr_net(&m.valid(), val, eval_device),
    )
}

/// Mean accuracy of both branches on `set`.
pub fn validate_attr_net(model: &AttrNet, set: &ImageSet, device: &Device) -> Validation {
    let (scores, mnl) = predict(model, set, device, 64);
    let m = set.attributes.len();
    let acc = |s: &[f32]| {
        if set.single_label {
            metrics::top1(s, &set.labels, m)
        } else {
            metrics::mean(&metrics::accuracy(s, &set.labels, m))
        }
    };
    (acc(&scores), mnl.map(|s| acc(&s)))
}

/// Logits of every image (`n × m`, row-major) for both branches.
pub fn predict(
    model: &AttrNet,
    set: &ImageSet,
    device: &Device,
    batch: usize,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let idx: Vec<usize> = (0..set.len()).collect();
    let mut scores = Vec::with_capacity(set.len() * set.attributes.len());
    let mut mnl: Option<Vec<f32>> = model.mnl.as_ref().map(|_| Vec::new());
    for chunk in idx.chunks(batch) {
        let out = model.forward(set.images(chunk, &[], device));
        scores.extend(to_vec(out.scores));
        if let (Some(acc), Some(s)) = (mnl.as_mut(), out.mnl_scores) {
            acc.extend(to_vec(s));
        }
    }
    (scores, mnl)
}

/// A float tensor's values, row-major.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::AttrNetConfig;
    use crate::spec::Net;

    fn maps(values: &[f32]) -> Tensor<4> {
        Tensor::<4>::from_data(
            burn::tensor::TensorData::new(values.to_vec(), [1, 1, 1, values.len()]),
            &Device::flex(),
        )
    }

    #[test]
    fn relative_hint_loss_is_one_for_a_silent_student_at_any_teacher_scale() {
        for scale in [1e-3f32, 1.0, 1e3] {
            let teacher = maps(&[scale, -2.0 * scale, 3.0 * scale]);
            let l = relative_hint_loss(maps(&[0.0; 3]), teacher).into_scalar::<f32>();
            assert!((l - 1.0).abs() < 1e-5, "scale {scale}: {l}");
        }
    }

    #[test]
    fn relative_hint_loss_is_the_error_over_the_teachers_energy() {
        // ‖(1,2) − (0,2)‖² / ‖(0,2)‖² = 1/4.
        let l = relative_hint_loss(maps(&[1.0, 2.0]), maps(&[0.0, 2.0])).into_scalar::<f32>();
        assert!((l - 0.25).abs() < 1e-6, "{l}");
        // A teacher of zeros: the plain squared error.
        let l = relative_hint_loss(maps(&[1.0, 2.0]), maps(&[0.0, 0.0])).into_scalar::<f32>();
        assert!((l - 5.0).abs() < 1e-5, "{l}");
    }

    /// A plain SGD configuration with the given batch size.
    fn config(batch_size: u32) -> TrainConfig {
        TrainConfig {
            net: Net::Snet3,
            width: 0.5,
            epochs: 1,
            batch_size,
            lr: 1e-3,
            momentum: 0.9,
            weight_decay: 0.0,
            flip: false,
            seed: 0,
            maps: None,
            precision: None,
            init: None,
            lr_schedule: LrSchedule::Constant,
            keep: KeepEpoch::Last,
            loss_normalization: LossNormalization::BatchAttributes,
            loss_scale: 1.0,
            grad_clip: None,
        }
    }

    /// How far one SGD step at lr 1 moves a linear layer's weight under a
    /// loss whose gradient is large.
    fn first_step_size(clip: Option<f64>) -> f32 {
        let d = Device::flex().autodiff();
        d.seed(1);
        let layer = burn::nn::LinearConfig::new(4, 3).init(&d);
        let before = layer.weight.val();
        let x = Tensor::<2>::ones([2, 4], &d);
        let loss = layer.forward(x).sum() * 1000.0;
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        let layer = sgd(0.0, 0.0, clip).step(1.0, layer, grads);
        let delta = layer.weight.val() - before;
        delta.powi_scalar(2).sum().sqrt().into_scalar::<f32>()
    }

    #[test]
    fn grad_clip_bounds_each_parameters_step_to_lr_times_the_clip() {
        let unclipped = first_step_size(None);
        let clipped = first_step_size(Some(0.5));
        assert!(
            unclipped > 100.0,
            "the test's gradient is not large: {unclipped}"
        );
        assert!(
            (clipped - 0.5).abs() < 1e-3,
            "step {clipped}, clip 0.5 at lr 1"
        );
    }

    #[test]
    fn hint_loss_decreases_on_a_fixed_batch() {
        let d = Device::flex().autodiff();
        d.seed(1);
        let teacher = AttrNetConfig::new(Net::Snet3, 2)
            .init(32, &d.clone())
            .valid();
        let student = AttrNetConfig::new(Net::Snet3, 2)
            .with_width(0.5)
            .init(32, &d);
        let x = Tensor::<4>::random(
            [4, 3, 32, 32],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &Device::flex(),
        );
        let target = teacher.forward(x.clone()).maps;
        let cfg = config(4);
        let phase = Phase {
            name: "hint".into(),
            cfg: &cfg,
            lr: 1e-4,
            epochs: 15,
            n: 4,
            progress: &crate::progress::Silent,
        };
        let xa = Tensor::from_data(x.into_data(), &d);
        let ta = Tensor::from_data(target.into_data(), &d);
        let (_, hist) = fit(
            student,
            &phase,
            |m, _, _| euclidean_loss(m.forward(xa.clone()).maps, ta.clone()),
            |_| (0.0, None),
        )
        .unwrap();
        let (first, last) = (hist[0].train_loss, hist.last().unwrap().train_loss);
        assert!(last < 0.8 * first, "hint loss {first} -> {last}");
    }

    #[test]
    fn fit_stops_at_the_batch_whose_loss_is_not_finite() {
        let d = Device::flex().autodiff();
        d.seed(1);
        let net = AttrNetConfig::new(Net::Snet3, 2)
            .with_width(0.25)
            .init(16, &d);
        let cfg = config(2);
        let phase = Phase {
            name: "attributes".into(),
            cfg: &cfg,
            lr: 0.5,
            epochs: 3,
            n: 6,
            progress: &crate::progress::Silent,
        };
        let x = Tensor::<4>::zeros([2, 3, 16, 16], &d);
        // Finite for four batches, NaN on the fifth (epoch 2, batch 2).
        let mut calls = 0;
        let err = fit(
            net,
            &phase,
            |m, _, _| {
                calls += 1;
                let l = m.forward(x.clone()).scores.mean();
                if calls == 5 { l * f32::NAN } else { l }
            },
            |_| (0.0, None),
        )
        .map(|_| ())
        .unwrap_err();
        match err {
            TrainError::NonFinite {
                epoch,
                batch,
                value,
                ..
            } => {
                assert_eq!((epoch, batch), (2, 2));
                assert!(value.is_nan());
            }
            other => panic!("{other}"),
        }
        assert_eq!(calls, 5, "no batch after the NaN one");
    }

    fn record(epoch: u32, val_accuracy: f64) -> EpochRecord {
        EpochRecord {
            phase: "train".into(),
            epoch,
            train_loss: 0.0,
            val_accuracy,
            val_accuracy_mnl: None,
            seconds: 0.0,
        }
    }

    #[test]
    fn keep_best_picks_the_first_best_validation_epoch() {
        let h = [
            record(1, 0.5),
            record(2, 0.7),
            record(3, 0.7),
            record(4, 0.6),
        ];
        assert_eq!(kept_epoch(&h, KeepEpoch::Best).unwrap().epoch, 2);
        assert_eq!(kept_epoch(&h, KeepEpoch::Last).unwrap().epoch, 4);
    }

    #[test]
    fn cosine_schedule_falls_from_lr_to_zero() {
        assert_eq!(scheduled_lr(LrSchedule::Constant, 0.1, 7, 10), 0.1);
        assert!((scheduled_lr(LrSchedule::Cosine, 0.1, 0, 10) - 0.1).abs() < 1e-12);
        assert!((scheduled_lr(LrSchedule::Cosine, 0.1, 5, 10) - 0.05).abs() < 1e-12);
        assert!(scheduled_lr(LrSchedule::Cosine, 0.1, 9, 10) < 0.003);
    }

    #[test]
    fn caffe_normalisation_sums_over_attributes() {
        let d = Device::flex();
        let logits = || Tensor::from_floats([[0.0, 2.0, -1.0], [1.0, 0.5, 0.0]], &d);
        let targets = || Tensor::from_floats([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]], &d);
        let mean = attribute_loss(logits(), targets(), LossNormalization::BatchAttributes)
            .into_scalar::<f32>();
        let batch =
            attribute_loss(logits(), targets(), LossNormalization::Batch).into_scalar::<f32>();
        assert!((batch - 3.0 * mean).abs() < 1e-5, "{batch} vs 3 × {mean}");
    }

    #[test]
    fn softmax_cross_entropy_matches_the_formula() {
        let d = Device::flex();
        let l = softmax_cross_entropy(
            Tensor::from_floats([[0.0, 1.0, 2.0]], &d),
            Tensor::from_floats([[0.0, 1.0, 0.0]], &d),
        );
        let want = -(1f64.exp() / (1.0 + 1f64.exp() + 2f64.exp())).ln();
        assert!((l.into_scalar::<f32>() as f64 - want).abs() < 1e-5);
    }

    #[test]
    fn bce_matches_the_formula() {
        let d = Device::flex();
        let l = bce_with_logits(
            Tensor::from_floats([[0.0, 2.0]], &d),
            Tensor::from_floats([[1.0, 0.0]], &d),
        );
        let want = ((2f64).ln() + (1.0 + 2f64.exp()).ln()) / 2.0;
        assert!((l.into_scalar::<f32>() as f64 - want).abs() < 1e-5);
    }
}
