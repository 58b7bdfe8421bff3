//! TNet / SNet1–3 (the paper's Table 3): VGG-style conv blocks, a last conv
//! of M attribute branches × N maps, global average pooling, and a
//! block-diagonal FC — attribute j's score sees only its own N maps, so its
//! class activation map is H_j = Σ_i w_{j,i} F_i over those maps.
//!
//! With `mnl = true` the multi-net-learning classification branch (flatten →
//! FC → ReLU → FC M on conv5's output) is attached and trained jointly.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::Serialize;

use crate::ops;
use crate::vocab::Net;

/// One conv stage: `repeat` convs of `kernel`×`kernel` to `channels`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ConvStage {
    pub channels: usize,
    pub kernel: usize,
    pub repeat: usize,
}

/// A net's architecture, as data (saved beside the weights).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttrNetConfig {
    pub net: Net,
    /// Four stages, each followed by a 2×2 max pool (conv1–conv4).
    pub pooled: Vec<ConvStage>,
    /// Stages after the last pool (conv5, conv6); the last ends in M×N maps.
    pub top: Vec<ConvStage>,
    /// Attributes (M).
    pub attributes: usize,
    /// Maps per attribute (N); the paper uses 32.
    pub maps_per_attribute: usize,
    /// Width of the MNL classification branch's hidden FC, if attached.
    pub mnl_hidden: Option<usize>,
}

const fn stage(channels: usize, kernel: usize, repeat: usize) -> ConvStage {
    ConvStage {
        channels,
        kernel,
        repeat,
    }
}

impl AttrNetConfig {
    /// Table 3's layers for `net`, with `attributes` outputs.
    pub fn new(net: Net, attributes: usize) -> Self {
        let n = 32;
        let last = attributes * n;
        let (pooled, top) = match net {
            Net::Tnet => (
                vec![
                    stage(32, 3, 2),
                    stage(64, 3, 2),
                    stage(128, 3, 3),
                    stage(256, 3, 3),
                ],
                vec![stage(512, 3, 3), stage(last, 3, 1)],
            ),
            Net::Snet1 => (
                vec![
                    stage(32, 3, 1),
                    stage(64, 3, 1),
                    stage(128, 3, 1),
                    stage(256, 3, 1),
                ],
                vec![stage(512, 3, 1), stage(last, 3, 1)],
            ),
            Net::Snet2 => (
                vec![
                    stage(32, 3, 1),
                    stage(64, 3, 1),
                    stage(128, 3, 1),
                    stage(256, 3, 1),
                ],
                vec![stage(512, 3, 1), stage(last, 1, 1)],
            ),
            Net::Snet3 => (
                vec![
                    stage(16, 3, 1),
                    stage(32, 3, 1),
                    stage(64, 3, 1),
                    stage(128, 3, 1),
                ],
                vec![stage(last, 1, 1)],
            ),
        };
        AttrNetConfig {
            net,
            pooled,
            top,
            attributes,
            maps_per_attribute: n,
            mnl_hidden: None,
        }
    }

    /// Scale every conv's channels by `width` (the M×N maps stay), for CPU-sized runs.
    pub fn with_width(mut self, width: f64) -> Self {
        let last = self.pooled.len() + self.top.len() - 1;
        for (i, s) in self
            .pooled
            .iter_mut()
            .chain(self.top.iter_mut())
            .enumerate()
        {
            if i != last {
                s.channels = ((s.channels as f64 * width).round() as usize).max(4);
            }
        }
        self
    }

    /// Use `n` maps per attribute or class in the last conv (the paper: 32).
    pub fn with_maps(mut self, n: usize) -> Self {
        let last = self.top.last_mut().expect("a last conv");
        last.channels = self.attributes * n;
        self.maps_per_attribute = n;
        self
    }

    /// Attach the MNL classification branch with a hidden FC of `hidden`.
    pub fn with_mnl(mut self, hidden: usize) -> Self {
        self.mnl_hidden = Some(hidden);
        self
    }

    /// Channels of conv5's output, where the MNL branch attaches.
    fn conv5_channels(&self) -> usize {
        self.top[0].channels
    }

    /// Build the module; `image_size` fixes the MNL branch's input width.
    pub fn init(&self, image_size: usize, device: &Device) -> AttrNet {
        let init = Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: false,
        };
        let conv = |cin: usize, s: &ConvStage| {
            Conv2dConfig::new([cin, s.channels], [s.kernel, s.kernel])
                .with_padding(PaddingConfig2d::Same)
                .with_initializer(init.clone())
                .init(device)
        };
        let mut cin = 3;
        let mut build = |stages: &[ConvStage]| -> Vec<Vec<Conv2d>> {
            stages
                .iter()
                .map(|s| {
                    (0..s.repeat)
                        .map(|_| {
                            let c = conv(cin, s);
                            cin = s.channels;
                            c
                        })
                        .collect()
                })
                .collect()
        };
        let pooled = build(&self.pooled);
        let top = build(&self.top);
        let (m, n) = (self.attributes, self.maps_per_attribute);
        // Block-diagonal FC: one row of N weights per attribute.
        let fc_weight = Initializer::KaimingUniform {
            gain: 1.0 / 3f64.sqrt(),
            fan_out_only: false,
        }
        .init_with([m, n], Some(n), Some(1), device);
        let fc_bias = Initializer::Zeros.init([m], device);
        let mnl = self.mnl_hidden.map(|hidden| {
            let side = image_size >> self.pooled.len();
            let d_in = self.conv5_channels() * side * side;
            MnlBranch {
                fc1: LinearConfig::new(d_in, hidden)
                    .with_initializer(init.clone())
                    .init(device),
                fc2: LinearConfig::new(hidden, m).init(device),
            }
        });
        AttrNet {
            pooled,
            top,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc_weight,
            fc_bias,
            mnl,
            maps_per_attribute: n,
        }
    }
}

/// The MNL classification branch: two FC layers on conv5's output.
#[derive(Module, Debug)]
pub struct MnlBranch {
    pub fc1: Linear,
    pub fc2: Linear,
}

#[derive(Module, Debug)]
pub struct AttrNet {
    pub pooled: Vec<Vec<Conv2d>>,
    pub top: Vec<Vec<Conv2d>>,
    pub pool: MaxPool2d,
    /// `[M, N]`: attribute j's weights over its own N maps.
    pub fc_weight: Param<Tensor<2>>,
    pub fc_bias: Param<Tensor<1>>,
    pub mnl: Option<MnlBranch>,
    pub maps_per_attribute: usize,
}

/// What a forward pass gives.
pub struct Output {
    /// Localisation-branch scores (logits), `[B, M]`.
    pub scores: Tensor<2>,
    /// The last conv's maps after ReLU, `[B, M·N, h, w]`: CAM's F_i and the hint layer.
    pub maps: Tensor<4>,
    /// MNL classification-branch scores, `[B, M]`, when the branch exists.
    pub mnl_scores: Option<Tensor<2>>,
}

impl AttrNet {
    /// # Shapes
    /// - `images`: `[B, 3, S, S]`, S divisible by 16
    /// - scores `[B, M]`, maps `[B, M·N, S/16, S/16]`
    pub fn forward(&self, images: Tensor<4>) -> Output {
        let mut x = images;
        for block in &self.pooled {
            // The stage's last conv runs fused with its ReLU and the pool.
            match block.split_last() {
                Some((last, rest)) => {
                    for conv in rest {
                        x = ops::conv2d_relu(conv, x);
                    }
                    x = ops::conv2d_relu_pool(last, x, &self.pool);
                }
                None => x = self.pool.forward(x),
            }
        }
        let mut conv5 = None;
        for (i, block) in self.top.iter().enumerate() {
            for conv in block {
                x = ops::conv2d_relu(conv, x);
            }
            if i == 0 {
                conv5 = Some(x.clone());
            }
        }
        let mnl_scores = self.mnl.as_ref().zip(conv5).map(|(b, c5)| {
            let flat: Tensor<2> = c5.flatten(1, 3);
            b.fc2.forward(ops::relu(b.fc1.forward(flat)))
        });
        let maps = x;
        let scores = self.scores_from_maps(maps.clone());
        Output {
            scores,
            maps,
            mnl_scores,
        }
    }

    /// GAP, then the block-diagonal FC.
    pub fn scores_from_maps(&self, maps: Tensor<4>) -> Tensor<2> {
        let [b, c, _, _] = maps.dims();
        let n = self.maps_per_attribute;
        let m = c / n;
        let gap: Tensor<3> = maps.mean_dims(&[2, 3]).reshape([b, m, n]);
        let w: Tensor<3> = self.fc_weight.val().unsqueeze_dim(0);
        let s: Tensor<2> = (gap * w).sum_dim(2).reshape([b, m]);
        s + self.fc_bias.val().unsqueeze_dim(0)
    }

    /// Class activation maps `[B, M, h, w]`: H_j = Σ_i w_{j,i} F_i.
    pub fn cams(&self, maps: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = maps.dims();
        let n = self.maps_per_attribute;
        let m = c / n;
        let f: Tensor<5> = maps.reshape([b, m, n, h, w]);
        let wt: Tensor<5> = self.fc_weight.val().reshape([1, m, n, 1, 1]);
        (f * wt).sum_dim(2).reshape([b, m, h, w])
    }
}

/// Parameters of `net` with `attributes` outputs (no MNL branch).
pub fn param_count(net: Net, attributes: usize) -> usize {
    let d = Device::flex();
    AttrNetConfig::new(net, attributes)
        .init(64, &d)
        .num_params()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_table_3_layers() {
        // Counting Table 3's layers with biases and the block-diagonal FC40.
        assert_eq!(param_count(Net::Snet3, 40), 263_880);
        assert_eq!(param_count(Net::Snet2, 40), 2_226_536);
        let tnet = param_count(Net::Tnet, 40);
        assert!((13_700_000..13_720_000).contains(&tnet), "{tnet}");
        let snet1 = param_count(Net::Snet1, 40);
        assert!((7_460_000..7_480_000).contains(&snet1), "{snet1}");
    }

    #[test]
    fn shapes_and_cam_is_weighted_sum_of_maps() {
        let d = Device::flex();
        let net = AttrNetConfig::new(Net::Snet3, 3).init(32, &d);
        let out = net.forward(Tensor::zeros([2, 3, 32, 32], &d));
        assert_eq!(out.scores.dims(), [2, 3]);
        assert_eq!(out.maps.dims(), [2, 96, 2, 2]);
        // Hand-built maps: attribute 1's maps are all 1 except map 0 = 2.
        let mut v = vec![0f32; 96 * 4];
        for i in 32..64 {
            for p in 0..4 {
                v[i * 4 + p] = if i == 32 { 2.0 } else { 1.0 };
            }
        }
        let maps = Tensor::<1>::from_floats(v.as_slice(), &d).reshape([1, 96, 2, 2]);
        let w: Vec<f32> = net.fc_weight.val().into_data().try_into_vec().unwrap();
        let cam: Vec<f32> = net.cams(maps).into_data().try_into_vec().unwrap();
        let want: f32 = w[32..64].iter().sum::<f32>() + w[32];
        assert!((cam[4] - want).abs() < 1e-4, "{} vs {want}", cam[4]);
        assert!(cam[0].abs() < 1e-6 && cam[8].abs() < 1e-6);
    }
}
