//! `exp bench`: training-step throughput of the paper's nets on a device —
//! random images, the attribute loss, SGD — as PyTorch's reference
//! (`bench/gpu/torch_step.py`) measures it, so the two can be put side by side.

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor};
use serde_json::json;

use super::exit;
use crate::device::DeviceChoice;
use crate::models::{AttrNetConfig, Fusion, Paw};
use crate::ops::{Precision, with_precision};
use crate::spec::Net;
use crate::train::bce_with_logits;

/// Time training steps of a net (images/s), for benchmarks
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `tnet`, `snet1`, `snet2`, `snet3`, or `paw` (an SNet3 whole-image subnet,
    /// one SNet3 part subnet per attribute on `--part-size` patches, RSL + ARL)
    #[arg(long, default_value = "tnet")]
    net: String,
    /// `paw`: side of the part patches (the paper's 64 px patch at 224 px)
    #[arg(long, default_value_t = 64)]
    part_size: usize,
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
    /// Scale every conv's channels (the specs' `width`; 1 is the paper's nets)
    #[arg(long, default_value_t = 1.0)]
    width: f64,
    /// Time the forward pass only
    #[arg(long)]
    forward: bool,
    /// `cpu`, `tch-cpu` or `cuda:N`
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// `fp32`, or `bf16` convolutions with fp32 master weights (libtorch devices)
    #[arg(long, default_value = "fp32", value_parser = ["fp32", "bf16"])]
    precision: String,
    /// Print one JSON object
    #[arg(long)]
    json: bool,
}

/// 3 warm-up steps, then `args.steps` timed ones: `(parameters, seconds)`.
/// The clock stops when the device has finished the last step (no extra
/// forward pass is timed).
fn time_steps<M: Module>(
    mut model: M,
    args: &Args,
    device: &Device,
    forward: impl Fn(&M) -> Tensor<2>,
    y: &Tensor<2>,
) -> (usize, f64) {
    let params = model.num_params();
    // The paper's momentum and weight decay.
    let mut optim = crate::train::sgd(0.9, 5e-4, None);
    let mut start = Instant::now();
    for step in 0..args.steps + 3 {
        if step == 3 {
            start = Instant::now();
        }
        let scores = forward(&model);
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
    // The last update must finish before the clock stops.
    if let Err(e) = device.sync() {
        eprintln!("warning: device sync failed: {e:?}");
    }
    (params, start.elapsed().as_secs_f64())
}

pub fn exec(args: &Args) -> anyhow::Result<i32> {
    args.device.check()?;
    let net = match args.net.as_str() {
        "paw" => None,
        name => match Net::ALL.into_iter().find(|n| n.as_str() == name) {
            Some(n) => Some(n),
            None => {
                eprintln!(
                    "error: unknown net `{name}`; known nets are tnet, snet1, snet2, snet3, paw"
                );
                return Ok(exit::BAD_INPUT);
            }
        },
    };
    for (flag, v) in [("--size", args.size), ("--part-size", args.part_size)] {
        if v % 16 != 0 || v == 0 {
            eprintln!("error: {flag} must be a positive multiple of 16 (four 2x2 pools), got {v}");
            return Ok(exit::BAD_INPUT);
        }
    }
    if !(args.width > 0.0 && args.width <= 4.0) {
        eprintln!("error: --width must be in (0, 4], got {}", args.width);
        return Ok(exit::BAD_INPUT);
    }
    let precision = if args.precision == "bf16" {
        Precision::Bf16
    } else {
        Precision::Fp32
    };
    if precision == Precision::Bf16 && args.device == DeviceChoice::Cpu {
        eprintln!(
            "error: --precision bf16 needs a libtorch device (`--device tch-cpu` or `cuda:N`)"
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
    let (m, b) = (args.attributes, args.batch);
    let images = |size: usize| {
        Tensor::<4>::random([b, 3, size, size], Distribution::Normal(0.0, 1.0), &device)
    };
    let x = images(args.size);
    let y = Tensor::<2>::random([b, m], Distribution::Bernoulli(0.5), &device);
    let (params, seconds) = with_precision(precision, || match net {
        Some(net) => {
            let model = AttrNetConfig::new(net, m)
                .with_width(args.width)
                .init(args.size, &device);
            time_steps(
                model,
                args,
                &device,
                |model| model.forward(x.clone()).scores,
                &y,
            )
        }
        None => {
            let snet3 = |size: usize| {
                AttrNetConfig::new(Net::Snet3, m)
                    .with_width(args.width)
                    .init(size, &device)
            };
            let model = Paw {
                whole: snet3(args.size),
                parts: (0..m).map(|_| snet3(args.part_size)).collect(),
                fusion: Fusion::init(m + 1, m, &device),
            };
            let patches: Vec<Tensor<4>> = (0..m).map(|_| images(args.part_size)).collect();
            time_steps(
                model,
                args,
                &device,
                |model| model.forward(x.clone(), patches.clone()),
                &y,
            )
        }
    });
    let images_per_s = (b * args.steps) as f64 / seconds;
    let what = if args.forward { "forward" } else { "train" };
    if args.json {
        let part_size = (args.net == "paw").then_some(args.part_size);
        let v = json!({ "net": args.net, "what": what, "device": args.device.to_string(), "backend": args.device.backend(), "precision": args.precision, "batch": b, "size": args.size, "width": args.width, "part_size": part_size, "attributes": m, "params": params, "steps": args.steps, "seconds": seconds, "images_per_s": images_per_s });
        println!("{v}");
    } else {
        println!(
            "exp {} {what} on {} ({}): batch {b} at {} px: {images_per_s:.1} img/s ({:.2} ms/step)",
            args.net,
            args.device,
            args.device.backend(),
            args.size,
            1000.0 * seconds / args.steps as f64
        );
    }
    Ok(exit::OK)
}
