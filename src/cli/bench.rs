//! `exp bench`: training-step throughput of the paper's nets on a device —
//! random images, the attribute loss, SGD — as PyTorch's reference
//! (`bench/gpu/torch_step.py`) measures it, so the two can be put side by side.

use std::time::Instant;

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Distribution, Tensor};
use serde_json::json;

use super::exit;
use crate::device::DeviceChoice;
use crate::models::AttrNetConfig;
use crate::spec::Net;
use crate::train::bce_with_logits;

/// Time training steps of a net (images/s), for benchmarks
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `tnet`, `snet1`, `snet2`, `snet3`
    #[arg(long, default_value = "tnet")]
    net: String,
    /// Side of the square input images
    #[arg(long, default_value_t = 224)]
    size: usize,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Attributes (M); the last conv has 32 × M maps
    #[arg(long, default_value_t = 40)]
    attributes: usize,
    /// Timed steps, after 3 warm-up steps
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Time the forward pass only
    #[arg(long)]
    forward: bool,
    /// `cpu`, `tch-cpu` or `cuda:N`
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Print one JSON object
    #[arg(long)]
    json: bool,
}

pub fn exec(args: &Args) -> anyhow::Result<i32> {
    args.device.check()?;
    let Some(net) = Net::ALL.into_iter().find(|n| n.as_str() == args.net) else {
        eprintln!(
            "error: unknown net `{}`; known nets are tnet, snet1, snet2, snet3",
            args.net
        );
        return Ok(exit::BAD_INPUT);
    };
    if args.size % 16 != 0 || args.size == 0 {
        eprintln!(
            "error: --size must be a positive multiple of 16 (four 2x2 pools), got {}",
            args.size
        );
        return Ok(exit::BAD_INPUT);
    }
    let plain = args.device.device();
    let device = if args.forward {
        plain.clone()
    } else {
        plain.clone().autodiff()
    };
    device.seed(0);
    let mut model = AttrNetConfig::new(net, args.attributes).init(args.size, &device);
    let params = model.num_params();
    let x = Tensor::<4>::random(
        [args.batch, 3, args.size, args.size],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let y = Tensor::<2>::random(
        [args.batch, args.attributes],
        Distribution::Bernoulli(0.5),
        &device,
    );
    let mut optim = SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
        ))
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
        .init();
    let mut start = Instant::now();
    for step in 0..args.steps + 3 {
        if step == 3 {
            start = Instant::now();
        }
        let scores = model.forward(x.clone()).scores;
        if args.forward {
            // Reading a value back waits for the device, like PyTorch's `.item()`.
            let _ = scores.sum().into_scalar::<f32>();
        } else {
            let loss = bce_with_logits(scores, y.clone());
            let _ = loss.clone().into_scalar::<f32>();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-4, model, grads);
        }
    }
    // The last step's update must finish before the clock stops.
    let _ = model.fc_bias.val().sum().into_scalar::<f32>();
    let seconds = start.elapsed().as_secs_f64();
    let images_per_s = (args.batch * args.steps) as f64 / seconds;
    let what = if args.forward { "forward" } else { "train" };
    if args.json {
        println!(
            "{}",
            json!({ "net": args.net, "what": what, "device": args.device.to_string(), "backend": args.device.backend(), "batch": args.batch, "size": args.size, "attributes": args.attributes, "params": params, "steps": args.steps, "seconds": seconds, "images_per_s": images_per_s })
        );
    } else {
        println!(
            "exp {} {what} on {} ({}): batch {} at {} px: {images_per_s:.1} img/s ({:.2} ms/step)",
            args.net,
            args.device,
            args.device.backend(),
            args.batch,
            args.size,
            1000.0 * seconds / args.steps as f64
        );
    }
    Ok(exit::OK)
}
