//! `compress`: hint-based model compression (the paper's Figure 3). The FRL
//! net (teacher) is frozen; the student (SNet1/2/3) first learns to
//! reproduce the teacher's last conv maps after ReLU with Caffe's Euclidean
//! loss (λ1 = 1, λ2 = 0, lr `hint-lr`), then the attributes alone (λ1 = 0,
//! λ2 = 1, lr `lr`).

use crate::metrics;
use burn::module::Module;
use burn::tensor::Tensor;

use crate::data::ImageSet;
use crate::kinds;
use crate::kinds::compress::HintLoss;
use crate::kinds::train::run::write_epochs;
use crate::models::AttrNetConfig;
use crate::spec::CompressConfig;
use crate::spec::{Split, TrainConfig};
use crate::stages::Run;
use crate::stages::{ModelInfo, StageCtx, StageError, load_attr_net, save_attr_net};
use crate::train::kept_epoch;
use crate::train::{self, Phase, euclidean_loss, relative_hint_loss};

impl Run for kinds::compress::Compress {
    fn run(ctx: &StageCtx, c: &CompressConfig) -> Result<serde_json::Value, StageError> {
        run(ctx, c)
    }
}

fn run(ctx: &StageCtx, c: &CompressConfig) -> Result<serde_json::Value, StageError> {
    let (cfg, hint_epochs, hint_lr, hint_loss) = (&c.train, c.hint_epochs, c.hint_lr, c.hint_loss);
    let (data, source) = ctx.data()?;
    let (plain, device) = ctx.devices();
    let (teacher, tinfo) = load_attr_net(&ctx.input("teacher").dir, "model", &plain)?;
    let size = tinfo.image_size;
    ctx.progress.set_message("decoding images".into());
    let train_set = ImageSet::load(&source, Split::Train, size, &tinfo.attributes)?;
    let val = ImageSet::load(&source, Split::Val, size, &tinfo.attributes)?;
    let mut student = crate::stages::fresh(&device, cfg.seed, || {
        AttrNetConfig::new(cfg.net, tinfo.attributes.len())
            .with_width(cfg.width)
            .with_maps(tinfo.maps)
            .init(size, &device)
    });
    // The student learns to reproduce the teacher's maps F_i, so it starts
    // from the teacher's CAM weights w_{j,i} on them (our choice; the paper
    // does not say how the student's FC starts).
    student.fc_weight = burn::module::Param::from_tensor(Tensor::from_data(
        teacher.fc_weight.val().into_data(),
        &device,
    ));
    student.fc_bias = burn::module::Param::from_tensor(Tensor::from_data(
        teacher.fc_bias.val().into_data(),
        &device,
    ));
    let params = student.num_params();
    ctx.progress.log(&format!(
        "teacher {} ({} params) -> student {} ({params} params)",
        tinfo.net.as_str(),
        tinfo.params,
        cfg.net.as_str()
    ));

    let mut history = Vec::new();
    if hint_epochs > 0 {
        // The hint phase's goal is the hint loss, not validation accuracy.
        let hint_cfg = TrainConfig {
            keep: crate::spec::KeepEpoch::Last,
            grad_clip: c.hint_grad_clip.or(cfg.grad_clip),
            ..cfg.clone()
        };
        let phase = Phase {
            name: "hint".into(),
            cfg: &hint_cfg,
            lr: hint_lr,
            epochs: hint_epochs,
            n: train_set.len(),
            progress: ctx.progress,
        };
        let (s, h) = train::fit(
            student,
            &phase,
            |m, idx, flip| {
                // The teacher runs without autodiff: it is frozen.
                let target = teacher.forward(train_set.images(idx, flip, &plain)).maps;
                let target = Tensor::from_data(target.into_data(), &device);
                let maps = m.forward(train_set.images(idx, flip, &device)).maps;
                match hint_loss {
                    HintLoss::Euclidean => euclidean_loss(maps, target),
                    HintLoss::Relative => relative_hint_loss(maps, target),
                }
            },
            |m| train::validate_attr_net(&m.valid(), &val, &plain),
        )?;
        student = s;
        history.extend(h);
    }
    let phase = Phase {
        name: "attributes".into(),
        cfg,
        lr: cfg.lr,
        epochs: cfg.epochs,
        n: train_set.len(),
        progress: ctx.progress,
    };
    let (student, h_attr) =
        train::train_attr_net(student, &phase, &train_set, &val, &device, &plain)?;
    history.extend(h_attr.iter().cloned());
    let info = ModelInfo {
        net: cfg.net,
        width: cfg.width,
        attributes: tinfo.attributes.clone(),
        image_size: size,
        mnl_hidden: None,
        params,
        maps: tinfo.maps,
        single_label: tinfo.single_label,
    };
    save_attr_net(ctx.out, "model", student, &info)?;
    write_epochs(ctx, &history)?;
    let hint_loss = history
        .iter()
        .filter(|h| h.phase == "hint")
        .map(|h| h.train_loss)
        .collect::<Vec<_>>();
    let _ = data;
    Ok(metrics::to_summary(&metrics::CompressSummary {
        net: cfg.net.as_str().into(),
        params: params as u64,
        teacher_params: (tinfo.params - teacher.mnl.as_ref().map_or(0, |b| b.num_params())) as u64,
        hint_loss_first: hint_loss.first().copied(),
        hint_loss_last: hint_loss.last().copied(),
        val_accuracy: kept_epoch(&h_attr, cfg.keep).map(|h| h.val_accuracy),
        epoch: kept_epoch(&h_attr, cfg.keep).map(|h| h.epoch),
    }))
}
