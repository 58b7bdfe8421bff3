//! PaW, the parts-and-whole classifier: P part subnets and one whole-image
//! subnet (each predicting all M scores), a region switch layer (RSL) and an
//! attribute relation layer (ARL).
//!
//! RSL is a group FC: r_j = Σ_{i=0..P} W_ij s_ij + b_j with W ∈ R^{(P+1)×M},
//! so output j sees only the j-th score of every subnet. ARL is a full FC
//! M → M, initialised to the identity so PaW starts as its RSL.

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::AttrNet;

/// RSL + ARL: the two fusion layers.
#[derive(Module, Debug)]
pub struct Fusion {
    /// `[P+1, M]`; row 0 is the whole-image subnet.
    pub rsl_weight: Param<Tensor<2>>,
    pub rsl_bias: Param<Tensor<1>>,
    pub arl: Linear,
}

impl Fusion {
    pub fn init(subnets: usize, m: usize, device: &Device) -> Fusion {
        let w = Tensor::<2>::ones([subnets, m], device) / subnets as f64;
        let eye: Tensor<2> = Tensor::eye(m, device);
        let arl = LinearConfig::new(m, m).init(device);
        let arl = Linear {
            weight: Param::from_tensor(eye),
            bias: arl.bias.map(|b| Param::from_tensor(b.val().zeros_like())),
        };
        Fusion {
            rsl_weight: Param::from_tensor(w),
            rsl_bias: Initializer::Zeros.init([m], device),
            arl,
        }
    }

    /// # Shapes
    /// - `scores`: `[B, P+1, M]` (subnet 0 = whole image)
    /// - output: `[B, M]` logits
    pub fn forward(&self, scores: Tensor<3>) -> Tensor<2> {
        self.arl.forward(self.rsl(scores))
    }

    /// The region switch layer alone, `[B, P+1, M]` → `[B, M]`.
    pub fn rsl(&self, scores: Tensor<3>) -> Tensor<2> {
        let [b, _, m] = scores.dims();
        let w: Tensor<3> = self.rsl_weight.val().unsqueeze_dim(0);
        let r: Tensor<2> = (scores * w).sum_dim(1).reshape([b, m]);
        r + self.rsl_bias.val().unsqueeze_dim(0)
    }
}

/// The whole PaW net.
#[derive(Module, Debug)]
pub struct Paw {
    pub whole: AttrNet,
    pub parts: Vec<AttrNet>,
    pub fusion: Fusion,
}

impl Paw {
    /// Scores of every subnet, `[B, P+1, M]`.
    /// `whole`: `[B, 3, S, S]`; `parts[i]`: `[B, 3, s, s]` patches of part i.
    pub fn subnet_scores(&self, whole: Tensor<4>, parts: Vec<Tensor<4>>) -> Tensor<3> {
        let mut all = vec![self.whole.forward(whole).scores.unsqueeze_dim::<3>(1)];
        for (net, x) in self.parts.iter().zip(parts) {
            all.push(net.forward(x).scores.unsqueeze_dim::<3>(1));
        }
        Tensor::cat(all, 1)
    }

    pub fn forward(&self, whole: Tensor<4>, parts: Vec<Tensor<4>>) -> Tensor<2> {
        self.fusion.forward(self.subnet_scores(whole, parts))
    }
}

/// Parameters of PaW for `m` attributes as the paper builds it: one SNet3
/// part subnet per attribute plus the whole-image SNet3, each predicting all
/// `m`, and the fusion layers. Returns (total, one subnet, fusion).
pub fn param_count(m: usize) -> (usize, usize, usize) {
    let d = Device::flex();
    let subnet = super::attr_net::param_count(crate::vocab::Net::Snet3, m);
    let fusion = Fusion::init(m + 1, m, &d).num_params();
    ((m + 1) * subnet + fusion, subnet, fusion)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paw_for_40_attributes_has_the_papers_11m_parameters() {
        let (total, subnet, fusion) = param_count(40);
        // 41 SNet3s + RSL (41×40 + 40) + ARL (40×40 + 40).
        assert_eq!(fusion, 41 * 40 + 40 + 40 * 40 + 40);
        assert_eq!(total, 41 * subnet + fusion);
        assert!((10_500_000..11_500_000).contains(&total), "{total}");
    }

    #[test]
    fn rsl_gradients_stay_inside_their_group() {
        let d = Device::flex().autodiff();
        let fusion = Fusion::init(3, 4, &d);
        let scores =
            Tensor::<3>::random([2, 3, 4], burn::tensor::Distribution::Normal(0.0, 1.0), &d)
                .require_grad();
        // Loss on attribute 1's RSL output only.
        let loss = fusion.rsl(scores.clone()).narrow(1, 1, 1).sum();
        let grads = loss.backward();
        let gw: Vec<f32> = fusion
            .rsl_weight
            .val()
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_into_vec()
            .unwrap();
        for i in 0..3 {
            for j in 0..4 {
                let g = gw[i * 4 + j];
                assert_eq!(g == 0.0, j != 1, "W[{i},{j}] grad {g}");
            }
        }
        let gs: Vec<f32> = scores
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_into_vec()
            .unwrap();
        for (k, g) in gs.iter().enumerate() {
            assert_eq!(*g == 0.0, k % 4 != 1, "score grad {k} = {g}");
        }
    }

    #[test]
    fn fusion_shapes_and_identity_arl() {
        let d = Device::flex();
        let f = Fusion::init(2, 3, &d);
        let s = Tensor::<3>::from_floats([[[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]]], &d);
        let out: Vec<f32> = f.forward(s).into_data().try_into_vec().unwrap();
        assert_eq!(out, vec![2.0, 3.0, 4.0]);
    }
}
