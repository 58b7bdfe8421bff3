//! Convolution gradients on flex as im2col + GEMM, under burn's autodiff
//! (burn 0.22's backend-extension mechanism, as in [`super::libtorch`]).
//!
//! Why: flex has no convolution backward of its own. burn's generic
//! fallback computes the weight gradient as a convolution whose kernel is
//! the whole output-gradient map, and the input gradient as a transposed
//! convolution; both materialise large intermediate layouts. Here, per image
//! and group, with `cols` the image's im2col matrix (C·K² × OH·OW):
//! `dW += dY · colsᵀ` and `dX = col2im(Wᵀ · dY)`, each one GEMM through the
//! `gemm` crate flex's own matmul uses; the training forward is `W · cols`
//! the same way (inference keeps flex's own convolution). Wide 3×3 layers
//! of stride 1 take Winograd's F(2×2, 3×3) instead for all three
//! ([`super::winograd`], [`Dims::winograd`]); `EXP_FLEX_CONV=im2col` turns
//! it off. Numerics differ from burn's fallback by float rounding only;
//! cache keys do not record the change (like a BLAS upgrade), so entries
//! computed before it stay.

use super::winograd;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor, Layout};
use burn::backend::ops::{ActivationOps, ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, DispatchDevice, backend_extension};
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Device, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

/// Whether `device` is flex under autodiff (the only place the backward runs).
pub fn on_flex_autodiff(device: &Device) -> bool {
    match device.as_dispatch() {
        DispatchDevice::Autodiff(a) => matches!(**a, DispatchDevice::Flex(_)),
        _ => false,
    }
}

/// Convolution geometry (symmetric padding), and whether a ReLU and then a
/// 2×2 max pool (stride 2) follow. Both are fused: applied as the GEMM's
/// output is written; backward, the pool's gradient goes to each window's
/// maximum and the ReLU masks it, before the convolution's own backward.
/// Fusing the pool saves flex's pooling with i64 indices (a quarter of an
/// SNet3 step at 128 px) and the full-size activation it would keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub relu: bool,
    pub pool: bool,
}

impl Geometry {
    /// The convolution's output size along axis `a` for an input of `size`
    /// and a kernel of `k`.
    fn output_size(&self, size: usize, k: usize, a: usize) -> usize {
        (size + 2 * self.padding[a]).saturating_sub(self.dilation[a] * (k - 1) + 1) / self.stride[a]
            + 1
    }

    fn options(&self) -> ConvOptions<2> {
        ConvOptions::new(self.stride, self.padding, self.dilation, self.groups)
    }

    /// The fused ReLU and pool, where there are, on flex's own convolution.
    fn finish(&self, y: FlexTensor) -> FlexTensor {
        let y = if self.relu { Flex::relu(y) } else { y };
        if self.pool {
            Flex::max_pool2d(y, [2, 2], [2, 2], [0, 0], [1, 1], false)
        } else {
            y
        }
    }

    /// The fused ReLU's forward (NaN passes, as in burn's and PyTorch's:
    /// `f32::max` would turn it into 0, hiding a diverged net from the
    /// training loop's NaN guard).
    fn activate(&self, v: f32) -> f32 {
        if self.relu && v < 0.0 { 0.0 } else { v }
    }
}

#[backend_extension(Flex, Autodiff)]
pub trait FlexConvOps: Backend {
    /// 2-D convolution with a bias.
    fn flex_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self>;
    /// 2-D convolution without a bias (extension inputs cannot be optional).
    fn flex_conv2d_no_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self>;
}

impl FlexConvOps for Flex {
    fn flex_conv2d(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        geometry: Geometry,
    ) -> FlexTensor {
        geometry.finish(Flex::conv2d(x, weight, Some(bias), geometry.options()))
    }
    fn flex_conv2d_no_bias(x: FlexTensor, weight: FlexTensor, geometry: Geometry) -> FlexTensor {
        geometry.finish(Flex::conv2d(x, weight, None, geometry.options()))
    }
}

/// What the backward pass needs: the forward's input and weights, its
/// output where a fused ReLU's mask is read from it, and where a pool is
/// fused, which of each window's four values was its maximum.
#[derive(Debug, Clone)]
struct Saved {
    x: FlexTensor,
    weight: FlexTensor,
    y: Option<FlexTensor>,
    argmax: Option<Arc<[u8]>>,
    geometry: Geometry,
}

/// Backward of a convolution with `N` inputs: x, weight (and bias).
#[derive(Debug)]
struct ConvBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for ConvBackward<N> {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let Saved {
            x,
            weight,
            y,
            argmax,
            geometry,
        } = ops.state;
        let shape = Dims::new(&x, &weight, geometry);
        let (x, weight, dy) = (Values::of(&x), Values::of(&weight), Values::of(&dy));
        let (x, weight) = (x.get(), weight.get());
        let y = y.as_ref().map(Values::of);
        let y = y.as_ref().map(Values::get);
        // dY once in the GEMMs' layout (after the pool's and the ReLU's
        // backward, fused into the same pass), read by all three gradients.
        let dy = by_task(dy.get(), y, argmax.as_deref(), &shape);
        let dy = &dy[..];
        let winograd = shape.winograd();
        let dy_plane = |k: usize, c: usize| shape.task_plane(dy, k, c);
        if let Some(node) = &ops.parents[0] {
            let dx = match &winograd {
                Some(s) => winograd::input_grad(s, weight, &dy_plane),
                None => input_grad(weight, dy, &shape),
            };
            grads.register::<Flex>(node.id, tensor(dx, shape.x_shape()));
        }
        if let Some(node) = &ops.parents[1] {
            let dw = match &winograd {
                Some(s) => {
                    let p = shape.pixels();
                    let x_plane = |k: usize, c: usize| &x[(k * shape.cin + c) * p..][..p];
                    winograd::weight_grad(s, &x_plane, &dy_plane)
                }
                None => weight_grad(x, dy, &shape),
            };
            grads.register::<Flex>(node.id, tensor(dw, shape.w_shape()));
        }
        if N == 3 {
            if let Some(node) = &ops.parents[2] {
                let db = bias_grad(dy, &shape);
                grads.register::<Flex>(node.id, tensor(db, Shape::new([shape.cout])));
            }
        }
    }
}

fn tracked<const N: usize, C: CheckpointStrategy>(
    inputs: [FloatTensor<Autodiff<Flex, C>>; N],
    geometry: Geometry,
) -> FloatTensor<Autodiff<Flex, C>> {
    let nodes = inputs.each_ref().map(|t| t.node());
    let forward = |p: &[FlexTensor]| forward(&p[0], &p[1], p.get(2), geometry);
    match ConvBackward::<N>
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let prims: Vec<FlexTensor> = inputs.into_iter().map(|t| t.into_primitive()).collect();
            let (out, argmax) = forward(&prims);
            let saved = Saved {
                x: prims[0].clone(),
                weight: prims[1].clone(),
                y: geometry.relu.then(|| out.clone()),
                argmax: argmax.map(Arc::from),
                geometry,
            };
            prep.finish(saved, out)
        }
        OpsKind::UnTracked(prep) => {
            let prims: Vec<FlexTensor> = inputs.into_iter().map(|t| t.into_primitive()).collect();
            prep.finish(forward(&prims).0)
        }
    }
}

impl<C: CheckpointStrategy> FlexConvOps for Autodiff<Flex, C> {
    fn flex_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self> {
        tracked::<3, C>([x, weight, bias], geometry)
    }
    fn flex_conv2d_no_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self> {
        tracked::<2, C>([x, weight], geometry)
    }
}

/// `conv.forward(x)`, then a ReLU if `relu`, then a 2×2 max pool of
/// stride 2 if `pool`, through [`FlexConvOps`]; `None` where this path does
/// not apply (asymmetric padding, a dtype other than f32, a pooled output of
/// odd size).
pub fn conv2d(conv: &Conv2d, x: Tensor<4>, relu: bool, pool: bool) -> Option<Tensor<4>> {
    if x.dtype() != DType::F32 || conv.weight.val().dtype() != DType::F32 {
        return None;
    }
    let padding = super::symmetric_padding(conv)?;
    let geometry = Geometry {
        stride: conv.stride,
        padding,
        dilation: conv.dilation,
        groups: conv.groups,
        relu,
        pool,
    };
    if pool {
        let [_, _, h, w] = x.dims();
        let out = |size: usize, a: usize| geometry.output_size(size, conv.kernel_size[a], a);
        if out(h, 0) % 2 != 0 || out(w, 1) % 2 != 0 {
            return None;
        }
    }
    let (x, weight) = (x.into_dispatch(), conv.weight.val().into_dispatch());
    let y = match &conv.bias {
        Some(b) => {
            <Dispatch as FlexConvOps>::flex_conv2d(x, weight, b.val().into_dispatch(), geometry)
        }
        None => <Dispatch as FlexConvOps>::flex_conv2d_no_bias(x, weight, geometry),
    };
    Some(Tensor::from_dispatch(y))
}

/// The convolution as im2col + one GEMM per task of images and group (the
/// same lowering as the gradients; flex's own forward spends its time in
/// index arithmetic per element), with the bias and, when fused, the ReLU
/// and the pool applied as the GEMM's output is laid out. Returns the output
/// and, with a pool, each window's argmax (0–3, row-major in the window).
fn forward(
    x: &FlexTensor,
    w: &FlexTensor,
    b: Option<&FlexTensor>,
    g: Geometry,
) -> (FlexTensor, Option<Vec<u8>>) {
    let d = Dims::new(x, w, g);
    let (x, w, bias) = (Values::of(x), Values::of(w), b.map(Values::of));
    let (x, w, bias) = (x.get(), w.get(), bias.as_ref().map(Values::get));
    let (rows, p, coutg) = (d.rows(), d.pixels(), d.coutg());
    // Output values per image and per channel plane (pooled where fused).
    let plane = if g.pool { p / 4 } else { p };
    let image_y = d.cout * plane;
    let per = d.images_per_task();
    let mut y = vec![0.0f32; d.n * image_y];
    let mut argmax = vec![0u8; if g.pool { d.n * image_y } else { 0 }];
    if let Some(s) = d.winograd() {
        let u = winograd::kernels(d.cout, d.cg(), |o, i, j| w[(o * d.cg() + i) * 9 + j]);
        let input = |k: usize, c: usize| &x[(k * d.cin + c) * p..][..p];
        // One output per channel plane.
        let argmax_planes: Vec<&mut [u8]> = if g.pool {
            argmax.chunks_mut(plane).collect()
        } else {
            (0..d.n * d.cout).map(|_| Default::default()).collect()
        };
        let mut outs: Vec<(&mut [f32], &mut [u8])> =
            y.chunks_mut(plane).zip(argmax_planes).collect();
        winograd::conv(&s, &input, &u, &mut outs, &|c, src, (dst, argmax)| {
            finish_plane(src, bias.map_or(0.0, |b| b[c]), &d, dst, argmax)
        });
        return output(y, argmax, &d);
    }
    let argmax_chunks: Vec<&mut [u8]> = if g.pool {
        argmax.chunks_mut(per * image_y).collect()
    } else {
        (0..d.n.div_ceil(per)).map(|_| Default::default()).collect()
    };
    y.par_chunks_mut(per * image_y)
        .zip(argmax_chunks)
        .enumerate()
        .for_each(|(t, (y, argmax))| {
            let (first, b) = (t * per, y.len() / image_y);
            let cols_len = rows * b * p;
            with_scratch(cols_len, coutg * b * p, |cols, out| {
                for grp in 0..g.groups {
                    im2col_images(x, &d, grp, first, b, cols);
                    gemm(
                        (coutg, b * p, rows),
                        out,
                        (b * p, 1),
                        false,
                        &w[grp * coutg * rows..][..coutg * rows],
                        (rows, 1),
                        cols,
                        (b * p, 1),
                        d.one_task(),
                    );
                    // out is C_g × (image, pixel); y is image × C × pixel.
                    for k in 0..b {
                        for c in 0..coutg {
                            let ch = grp * coutg + c;
                            let at = k * image_y + ch * plane;
                            let src = &mut out[c * b * p + k * p..][..p];
                            let add = bias.map_or(0.0, |b| b[ch]);
                            let dst = &mut y[at..][..plane];
                            let argmax = match g.pool {
                                true => &mut argmax[at..][..plane],
                                false => &mut [][..],
                            };
                            finish_plane(src, add, &d, dst, argmax);
                        }
                    }
                }
            });
        });
    output(y, argmax, &d)
}

/// One output plane from the convolution's raw values `src`: the bias, the
/// fused ReLU and, where fused, the 2×2 pool (`argmax` its windows' winners;
/// empty without a pool).
fn finish_plane(src: &mut [f32], add: f32, d: &Dims, dst: &mut [f32], argmax: &mut [u8]) {
    if d.g.pool {
        pool_plane(src, add, d, dst, argmax);
    } else {
        dst.iter_mut()
            .zip(src.iter())
            .for_each(|(o, s)| *o = d.g.activate(*s + add));
    }
}

/// The forward's output tensor (pooled where fused) and, with a pool, the
/// windows' argmax.
fn output(y: Vec<f32>, argmax: Vec<u8>, d: &Dims) -> (FlexTensor, Option<Vec<u8>>) {
    let (oh, ow) = if d.g.pool {
        (d.oh / 2, d.ow / 2)
    } else {
        (d.oh, d.ow)
    };
    let y = tensor(y, Shape::new([d.n, d.cout, oh, ow]));
    (y, d.g.pool.then_some(argmax))
}

/// One channel plane's bias, ReLU and 2×2 max pool: `src` holds the GEMM's
/// OH × OW values (overwritten with their activations), `dst` and `argmax`
/// the pooled ones. As flex's pool, the first maximum of a window wins, and
/// a NaN always does. A plane without NaN (the common case, checked once)
/// takes branch-free pairwise comparisons the compiler vectorises.
fn pool_plane(src: &mut [f32], add: f32, d: &Dims, dst: &mut [f32], argmax: &mut [u8]) {
    src.iter_mut().for_each(|v| *v = d.g.activate(*v + add));
    let any_nan = src.iter().fold(false, |n, v| n | v.is_nan());
    let (pw, ow) = (d.ow / 2, d.ow);
    for (py, (dst, argmax)) in dst.chunks_mut(pw).zip(argmax.chunks_mut(pw)).enumerate() {
        let (top, bottom) = (&src[2 * py * ow..][..ow], &src[(2 * py + 1) * ow..][..ow]);
        let windows = top.chunks_exact(2).zip(bottom.chunks_exact(2));
        let outs = dst.iter_mut().zip(argmax.iter_mut());
        if any_nan {
            for ((t, b), (dst, argmax)) in windows.zip(outs) {
                let (mut best, mut arg) = (t[0], 0u8);
                for (i, &v) in [t[1], b[0], b[1]].iter().enumerate() {
                    if v > best || v.is_nan() {
                        (best, arg) = (v, i as u8 + 1);
                    }
                }
                (*dst, *argmax) = (best, arg);
            }
        } else {
            // First maximum of each row's pair, then of the two rows: the
            // same winner as comparing the four in order.
            for ((t, b), (dst, argmax)) in windows.zip(outs) {
                let (m1, i1) = if t[1] > t[0] { (t[1], 1) } else { (t[0], 0) };
                let (m2, i2) = if b[1] > b[0] { (b[1], 3) } else { (b[0], 2) };
                (*dst, *argmax) = if m2 > m1 { (m2, i2) } else { (m1, i1) };
            }
        }
    }
}

/// The output gradient in the GEMMs' layout: images in tasks of
/// [`Dims::images_per_task`], each task's block channel-major — channel ×
/// (image, pixel) — so a group's C_g channels are one contiguous operand
/// for every task. The pool's backward (where fused: the gradient to each
/// window's maximum, zero elsewhere) and the ReLU's (none where it output
/// 0; a NaN output keeps its NaN gradient, as in burn) are applied on the
/// way.
fn by_task(dy: &[f32], y: Option<&[f32]>, argmax: Option<&[u8]>, d: &Dims) -> Vec<f32> {
    let (p, per) = (d.pixels(), d.images_per_task());
    let mut out = vec![0.0f32; d.n * d.cout * p];
    out.par_chunks_mut(p).enumerate().for_each(|(q, out)| {
        // Plane q of the task layout is image k's channel ch.
        let t = q / (per * d.cout);
        let b = per.min(d.n - t * per);
        let r = q - t * per * d.cout;
        let (ch, k) = (r / b, t * per + r % b);
        let i = k * d.cout + ch;
        match argmax {
            Some(argmax) => {
                let (pw, plane) = (d.ow / 2, p / 4);
                // The window's three other values stay the allocation's 0.
                for py in 0..d.oh / 2 {
                    let at = i * plane + py * pw;
                    for px in 0..pw {
                        let a = argmax[at + px] as usize;
                        let masked = y.is_some_and(|y| y[at + px] <= 0.0);
                        let g = if masked { 0.0 } else { dy[at + px] };
                        out[(2 * py + a / 2) * d.ow + 2 * px + a % 2] = g;
                    }
                }
            }
            None => {
                let dy = &dy[i * p..][..p];
                match y {
                    Some(y) => out
                        .iter_mut()
                        .zip(dy.iter().zip(&y[i * p..][..p]))
                        .for_each(|(o, (g, y))| *o = if *y <= 0.0 { 0.0 } else { *g }),
                    None => out.copy_from_slice(dy),
                }
            }
        }
    });
    out
}

/// A flex tensor in row-major order, its f32 values read in place (a
/// tensor that already is contiguous is shared, not copied: these are the
/// hot path's inputs).
struct Values(FlexTensor);

impl Values {
    fn of(t: &FlexTensor) -> Self {
        Values(t.to_contiguous())
    }

    fn get(&self) -> &[f32] {
        let (start, end) = self
            .0
            .layout()
            .contiguous_offsets()
            .expect("to_contiguous gives a contiguous layout");
        &self.0.storage::<f32>()[start..end]
    }
}

fn tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        burn::tensor::Bytes::from_elems(values),
        Layout::contiguous(shape),
        DType::F32,
    )
}

/// Channels per group from which a 3×3 convolution takes Winograd's
/// algorithm ([`Dims::winograd`]).
const WINOGRAD_CHANNELS: usize = 64;
/// Output tiles (2×2) per batch from which a 3×3 convolution takes
/// Winograd's algorithm: below, its three kernel-sized transforms per step
/// cost more than its fewer multiplications save.
const WINOGRAD_TILES: usize = 512;

/// Whether `EXP_FLEX_CONV=im2col` turns [`winograd`] off (read once).
fn im2col_only() -> bool {
    static IM2COL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IM2COL.get_or_init(|| std::env::var("EXP_FLEX_CONV").is_ok_and(|v| v == "im2col"))
}

/// Whether a test forces [`winograd`] below its thresholds on this thread.
fn forced_winograd() -> bool {
    #[cfg(test)]
    return tests::forced_winograd();
    #[cfg(not(test))]
    false
}

/// Sizes of one convolution: batch, channels, spatial sizes, kernel.
#[derive(Debug, Clone, Copy)]
struct Dims {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    g: Geometry,
}

impl Dims {
    /// The sizes of convolving `x` with `w`.
    fn new(x: &FlexTensor, w: &FlexTensor, g: Geometry) -> Self {
        let (xs, ws) = (x.layout().shape(), w.layout().shape());
        let out = |size: usize, k: usize, a: usize| g.output_size(size, k, a);
        Dims {
            n: xs[0],
            cin: xs[1],
            h: xs[2],
            w: xs[3],
            cout: ws[0],
            kh: ws[2],
            kw: ws[3],
            oh: out(xs[2], ws[2], 0),
            ow: out(xs[3], ws[3], 1),
            g,
        }
    }
    fn x_shape(&self) -> Shape {
        Shape::new([self.n, self.cin, self.h, self.w])
    }
    fn w_shape(&self) -> Shape {
        Shape::new([self.cout, self.cin / self.g.groups, self.kh, self.kw])
    }
    /// Input channels per group.
    fn cg(&self) -> usize {
        self.cin / self.g.groups
    }
    /// Output channels per group.
    fn coutg(&self) -> usize {
        self.cout / self.g.groups
    }
    /// Rows of one group's im2col matrix.
    fn rows(&self) -> usize {
        self.cg() * self.kh * self.kw
    }
    fn pixels(&self) -> usize {
        self.oh * self.ow
    }
    /// Values of one image's input and output.
    fn image_x(&self) -> usize {
        self.cin * self.h * self.w
    }
    /// Values of one image's group of input channels.
    fn group_x(&self) -> usize {
        self.cg() * self.h * self.w
    }
    /// Images per rayon task, each task one GEMM per group over all its
    /// images' columns: enough columns (images × output pixels) that packing
    /// the weights does not dominate, at most 8 — or the whole batch where
    /// its columns are few ([`Dims::one_task`]). A function of the geometry
    /// only, so the weight gradient's sums run in the same order whatever the
    /// thread count.
    fn images_per_task(&self) -> usize {
        if self.one_task() {
            self.n.max(1)
        } else {
            self.images_per_small_task()
        }
    }
    /// Whether the batch is one task: deep layers (few output pixels, large
    /// weights) or a small batch. There the GEMMs spread over the threads
    /// themselves, and the weight gradient is one GEMM with no per-task
    /// partials (each a full copy of dW to allocate and sum: 23 MB per task
    /// for TNet's last conv).
    fn one_task(&self) -> bool {
        // 1,024 against 4,096 and 16,384 on 2 cores (2026-12-07): SNet3 at
        // 64 px ~10% faster, TNet unchanged (bench/results/2026-12-07-cpu.md).
        const ONE_TASK_COLUMNS: usize = 1024;
        self.n * self.pixels() <= ONE_TASK_COLUMNS || self.n <= self.images_per_small_task()
    }
    /// Whether the weight gradient is computed as rows × C_g, then
    /// transposed. gemm's kernel tiles run along its output's column
    /// direction in the left operand, which it first copies ("packs") into
    /// tiles: along C_g that copies dY, along the rows the im2col matrix,
    /// rows / C_g times larger (9× for a 3×3 layer that keeps its channels).
    /// Where C_g is small that copy dominates the GEMM (~12% of an SNet3
    /// epoch at 128 px); where it is large, the tiles along C_g lose more
    /// than the copy costs. Measured on 2 cores (2026-12-07, alternating
    /// builds, bench/results/2026-12-07-cpu.md): ≤ 64 channels per group
    /// made SNet3 4–10% and TNet 3–6% faster; the same for ≥ 64 made TNet
    /// 64 px 16% slower.
    fn weight_grad_transposed(&self) -> bool {
        const MOST_CHANNELS: usize = 64;
        self.coutg() <= MOST_CHANNELS
    }
    /// Winograd's sizes where this convolution takes [`winograd`]: a 3×3
    /// kernel of stride 1, padding 1 and dilation 1 (the output the input's
    /// size) with at least [`WINOGRAD_CHANNELS`] input and output channels
    /// per group, unless `EXP_FLEX_CONV=im2col` (for paired timings and
    /// bitwise comparisons with results computed before it).
    fn winograd(&self) -> Option<winograd::Sizes> {
        let g = &self.g;
        let three = self.kh == 3 && self.kw == 3;
        let same = g.stride == [1, 1] && g.padding == [1, 1] && g.dilation == [1, 1];
        let wide = self.cg() >= WINOGRAD_CHANNELS && self.coutg() >= WINOGRAD_CHANNELS;
        let many = self.n * self.oh.div_ceil(2) * self.ow.div_ceil(2) >= WINOGRAD_TILES;
        let worth = (wide && many && !im2col_only()) || forced_winograd();
        (three && same && worth).then_some(winograd::Sizes {
            n: self.n,
            cin: self.cin,
            cout: self.cout,
            h: self.h,
            w: self.w,
            groups: g.groups,
        })
    }
    /// Image `k`'s channel `ch` of dY in [`by_task`]'s layout.
    fn task_plane<'a>(&self, dy: &'a [f32], k: usize, ch: usize) -> &'a [f32] {
        let (p, per) = (self.pixels(), self.images_per_task());
        let t = k / per;
        let b = per.min(self.n - t * per);
        &dy[(t * per * self.cout + ch * b + (k - t * per)) * p..][..p]
    }
    fn images_per_small_task(&self) -> usize {
        1024usize.div_ceil(self.pixels().max(1)).clamp(1, 8)
    }
    /// For kernel offset `k` along an axis: the input coordinate of output
    /// position `o` is `o·stride + k·dilation − padding`; the range of `o`
    /// for which it lies inside `0..size`.
    fn valid(o_len: usize, size: usize, stride: usize, offset: isize) -> (usize, usize) {
        let first = if offset >= 0 {
            0
        } else {
            ((-offset) as usize).div_ceil(stride)
        };
        // Largest o with o·stride + offset ≤ size − 1.
        let last = (size as isize - 1 - offset).div_euclid(stride as isize) + 1;
        let end = (last.max(0) as usize).min(o_len);
        (first.min(end), end)
    }
}

/// The im2col matrix of group `grp` of images `first..first + b` of `x`:
/// row `(c·KH + i)·KW + j` at `cols[row · b·OH·OW..]`, image `k`'s column
/// `oy·OW + ox` at `k·OH·OW` within it. Split by input channel over the
/// threads when the batch is one task (otherwise the tasks are).
fn im2col_images(x: &[f32], d: &Dims, grp: usize, first: usize, b: usize, cols: &mut [f32]) {
    let (p, hw) = (d.pixels(), d.h * d.w);
    let ld = b * p;
    let block = d.kh * d.kw * ld;
    let channel = |(c, rows): (usize, &mut [f32])| {
        for k in 0..b {
            let at = (first + k) * d.image_x() + grp * d.group_x() + c * hw;
            im2col_plane(&x[at..][..hw], d, &mut rows[k * p..], ld);
        }
    };
    let cols = &mut cols[..d.cg() * block];
    if d.one_task() {
        cols.par_chunks_mut(block).enumerate().for_each(channel);
    } else {
        cols.chunks_mut(block).enumerate().for_each(channel);
    }
}

/// Where one kernel offset's values lie, for a convolution of stride 1
/// whose output is as wide as its input (3×3 with padding 1, 1×1): output
/// rows `y0..y1` read input rows from `iy0` on, output columns `x0..x1`
/// input columns from `ix0`, and as `W = OW` those values are one run of
/// the plane, `len` long, starting at output position `first`. The run also
/// crosses the `OW − x1 + x0` positions at each row's ends, which read
/// padding: [`Run::gaps`] names them. (col2im stays row by row: a run saved
/// it nothing, its adds being bound by memory, not by loop overhead.)
struct Run {
    first: usize,
    len: usize,
    src: usize,
    /// Output positions per row, and the valid columns and rows.
    ow: usize,
    x: (usize, usize),
    y: (usize, usize),
}

impl Run {
    /// The run of kernel offset (`oy_off`, `ox_off`), if it has one: a
    /// stride-1 convolution with `W = OW` and some valid output.
    fn of(
        d: &Dims,
        (y0, y1): (usize, usize),
        (x0, x1): (usize, usize),
        oy_off: isize,
        ox_off: isize,
    ) -> Option<Run> {
        let flat = d.g.stride == [1, 1] && d.w == d.ow;
        if !flat || y0 >= y1 || x0 >= x1 {
            return None;
        }
        let (iy0, ix0) = (
            (y0 as isize + oy_off) as usize,
            (x0 as isize + ox_off) as usize,
        );
        let first = y0 * d.ow + x0;
        Some(Run {
            first,
            len: (y1 - 1) * d.ow + x1 - first,
            src: iy0 * d.w + ix0,
            ow: d.ow,
            x: (x0, x1),
            y: (y0, y1),
        })
    }

    /// The output positions inside the run that read padding (between two
    /// rows' valid columns), as ranges relative to the run's start.
    fn gaps(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        let ((x0, x1), (y0, y1)) = (self.x, self.y);
        (y0..y1 - 1)
            .map(move |oy| oy * self.ow + x1 - self.first..(oy + 1) * self.ow + x0 - self.first)
    }
}

/// Zeroes a short range (usually one value: calling memset for it costs
/// more than the store).
fn zero(values: &mut [f32]) {
    if let [v] = values {
        *v = 0.0;
    } else {
        values.fill(0.0);
    }
}

/// One input channel's KH·KW im2col rows (`plane` holds its H × W
/// values), row `i·KW + j` at `rows[row · ld..]`.
fn im2col_plane(plane: &[f32], d: &Dims, rows: &mut [f32], ld: usize) {
    let (p, g) = (d.pixels(), d.g);
    for i in 0..d.kh {
        let oy_off = (i * g.dilation[0]) as isize - g.padding[0] as isize;
        let (y0, y1) = Dims::valid(d.oh, d.h, g.stride[0], oy_off);
        for j in 0..d.kw {
            let ox_off = (j * g.dilation[1]) as isize - g.padding[1] as isize;
            let (x0, x1) = Dims::valid(d.ow, d.w, g.stride[1], ox_off);
            let row = &mut rows[(i * d.kw + j) * ld..][..p];
            // Zeros only where the kernel reads padding: every value is
            // written once.
            row[..y0 * d.ow].fill(0.0);
            row[y1 * d.ow..].fill(0.0);
            if let Some(run) = Run::of(d, (y0, y1), (x0, x1), oy_off, ox_off) {
                // One copy for all rows, then the gaps it filled zeroed.
                let (first, end) = (run.first, run.first + run.len);
                row[first..end].copy_from_slice(&plane[run.src..][..run.len]);
                row[y0 * d.ow..first].fill(0.0);
                row[end..y1 * d.ow].fill(0.0);
                let dst = &mut row[first..end];
                run.gaps().for_each(|gap| zero(&mut dst[gap]));
                continue;
            }
            for oy in y0..y1 {
                let iy = (oy * g.stride[0]) as isize + oy_off;
                let src = &plane[iy as usize * d.w..][..d.w];
                let dst = &mut row[oy * d.ow..][..d.ow];
                dst[..x0].fill(0.0);
                dst[x1..].fill(0.0);
                if g.stride[1] == 1 {
                    let ix0 = (x0 as isize + ox_off) as usize;
                    dst[x0..x1].copy_from_slice(&src[ix0..ix0 + (x1 - x0)]);
                } else {
                    for ox in x0..x1 {
                        dst[ox] = src[((ox * g.stride[1]) as isize + ox_off) as usize];
                    }
                }
            }
        }
    }
}

/// Adds an im2col-shaped gradient (rows at `cols[row · ld..]`) back onto
/// one image's group (`dx`).
fn col2im(cols: &[f32], d: &Dims, dx: &mut [f32], ld: usize) {
    let (p, g) = (d.pixels(), d.g);
    for c in 0..d.cg() {
        let plane = &mut dx[c * d.h * d.w..(c + 1) * d.h * d.w];
        for i in 0..d.kh {
            let oy_off = (i * g.dilation[0]) as isize - g.padding[0] as isize;
            let (y0, y1) = Dims::valid(d.oh, d.h, g.stride[0], oy_off);
            for j in 0..d.kw {
                let ox_off = (j * g.dilation[1]) as isize - g.padding[1] as isize;
                let (x0, x1) = Dims::valid(d.ow, d.w, g.stride[1], ox_off);
                let row = &cols[((c * d.kh + i) * d.kw + j) * ld..][..p];
                for oy in y0..y1 {
                    let iy = (oy * g.stride[0]) as isize + oy_off;
                    let dst = &mut plane[iy as usize * d.w..][..d.w];
                    let src = &row[oy * d.ow..][..d.ow];
                    if g.stride[1] == 1 {
                        let ix0 = (x0 as isize + ox_off) as usize;
                        dst[ix0..ix0 + (x1 - x0)]
                            .iter_mut()
                            .zip(&src[x0..x1])
                            .for_each(|(d, s)| *d += s);
                    } else {
                        for ox in x0..x1 {
                            dst[((ox * g.stride[1]) as isize + ox_off) as usize] += src[ox];
                        }
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn gemm(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    (dst_rs, dst_cs): (usize, usize),
    accumulate: bool,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
    parallel: bool,
) {
    let last = |rs: usize, cs: usize, rows: usize, cols: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
    };
    assert!(m == 0 || n == 0 || last(dst_rs, dst_cs, m, n) < dst.len());
    assert!(m == 0 || k == 0 || last(lhs_rs, lhs_cs, m, k) < lhs.len());
    assert!(k == 0 || n == 0 || last(rhs_rs, rhs_cs, k, n) < rhs.len());
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every index the strides reach lies inside its slice (checked
    // above), and `dst` does not alias `lhs` or `rhs` (a `&mut` and two `&`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Two scratch buffers of at least `a` and `b` values, reused by each
/// thread across calls (fresh large allocations cost page faults every
/// step). Their contents are garbage: callers overwrite before reading.
pub(super) fn with_scratch<R>(
    a: usize,
    b: usize,
    f: impl FnOnce(&mut [f32], &mut [f32]) -> R,
) -> R {
    thread_local! {
        static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = Default::default();
    }
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => {
            let (x, y) = &mut *s;
            if x.len() < a {
                x.resize(a, 0.0);
            }
            if y.len() < b {
                y.resize(b, 0.0);
            }
            f(&mut x[..a], &mut y[..b])
        }
        // Re-entered on this thread (not expected): fresh buffers.
        Err(_) => f(&mut vec![0.0; a], &mut vec![0.0; b]),
    })
}

/// dW = Σ over tasks of images, per group, of dY · colsᵀ.
fn weight_grad(x: &[f32], dy: &[f32], d: &Dims) -> Vec<f32> {
    let (rows, p, coutg) = (d.rows(), d.pixels(), d.coutg());
    let per = d.images_per_task();
    let transposed = d.weight_grad_transposed();
    let dst = if transposed { (1, coutg) } else { (rows, 1) };
    let partial = |t: usize| {
        let first = t * per;
        let b = per.min(d.n - first);
        let mut dw = vec![0.0f32; d.cout * rows];
        with_scratch(rows * b * p, 0, |cols, _| {
            for grp in 0..d.g.groups {
                im2col_images(x, d, grp, first, b, cols);
                let dys = &dy[(first * d.cout + grp * coutg * b) * p..][..coutg * b * p];
                // Each group's block is written once, so the GEMM need not
                // read it: reading the zeroed (calloc'd, not yet mapped)
                // partial first, then writing it, costs a copy-on-write page
                // fault with a TLB shootdown on every core per page.
                gemm(
                    (coutg, rows, b * p),
                    &mut dw[grp * coutg * rows..][..coutg * rows],
                    dst,
                    false,
                    dys,
                    (b * p, 1),
                    cols,
                    (1, b * p),
                    d.one_task(),
                );
            }
        });
        dw
    };
    let dw = if d.one_task() {
        partial(0)
    } else {
        let partials: Vec<Vec<f32>> = (0..d.n.div_ceil(per))
            .into_par_iter()
            .map(partial)
            .collect();
        // Summed in task order: bitwise the same whatever the thread count.
        let mut dw = vec![0.0f32; d.cout * rows];
        for p in &partials {
            dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        dw
    };
    if !transposed {
        return dw;
    }
    // Each group's block from rows × C_g to C_g × rows.
    let mut out = vec![0.0f32; d.cout * rows];
    for (to, from) in out.chunks_mut(coutg * rows).zip(dw.chunks(coutg * rows)) {
        for (c, to) in to.chunks_mut(rows).enumerate() {
            to.iter_mut()
                .enumerate()
                .for_each(|(r, v)| *v = from[r * coutg + c]);
        }
    }
    out
}

/// dX per task of images and group: col2im(Wᵀ · dY).
fn input_grad(w: &[f32], dy: &[f32], d: &Dims) -> Vec<f32> {
    let (rows, p, coutg) = (d.rows(), d.pixels(), d.coutg());
    let image_x = d.image_x();
    let per = d.images_per_task();
    let mut dx = vec![0.0f32; d.n * image_x];
    dx.par_chunks_mut(per * image_x)
        .enumerate()
        .for_each(|(t, dx)| {
            // Written before col2im adds into it, for the same reason as the
            // weight gradient's partials (a first read of untouched zeroed
            // pages, then a write, faults twice with TLB shootdowns).
            dx.fill(0.0);
            let (first, b) = (t * per, dx.len() / image_x);
            with_scratch(rows * b * p, 0, |cols, _| {
                for grp in 0..d.g.groups {
                    let dys = &dy[(first * d.cout + grp * coutg * b) * p..][..coutg * b * p];
                    gemm(
                        (rows, b * p, coutg),
                        cols,
                        (b * p, 1),
                        false,
                        &w[grp * coutg * rows..][..coutg * rows],
                        (1, rows),
                        dys,
                        (b * p, 1),
                        d.one_task(),
                    );
                    let image = |(k, dx): (usize, &mut [f32])| {
                        let dx = &mut dx[grp * d.group_x()..][..d.group_x()];
                        col2im(&cols[k * p..], d, dx, b * p);
                    };
                    if d.one_task() {
                        dx.par_chunks_mut(image_x).enumerate().for_each(image);
                    } else {
                        dx.chunks_mut(image_x).enumerate().for_each(image);
                    }
                }
            });
        });
    dx
}

/// db: dY (in [`by_task`]'s layout) summed over images and pixels, task
/// by task in order (each run of values in 8 interleaved partial sums,
/// which the compiler keeps in one vector register).
fn bias_grad(dy: &[f32], d: &Dims) -> Vec<f32> {
    let (p, per) = (d.pixels(), d.images_per_task());
    let mut db = vec![0.0f32; d.cout];
    for (t, task) in dy.chunks(per * d.cout * p).enumerate() {
        let b = per.min(d.n - t * per);
        for (c, values) in task.chunks(b * p).enumerate() {
            let mut lanes = [0.0f32; 8];
            let mut chunks = values.chunks_exact(8);
            for chunk in &mut chunks {
                lanes.iter_mut().zip(chunk).for_each(|(l, v)| *l += v);
            }
            db[c] += lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>();
        }
    }
    db
}

#[cfg(test)]
mod tests {
    use super::super::test_values::{close, fixed, vals};
    use super::*;
    use burn::module::Param;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::TensorData;

    struct Case {
        x: [usize; 4],
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
        dilation: usize,
        groups: usize,
        bias: bool,
    }

    fn conv_of(c: &Case, device: &Device) -> Conv2d {
        let mut conv = Conv2dConfig::new([c.x[1], c.cout], [c.k, c.k])
            .with_stride([c.stride, c.stride])
            .with_dilation([c.dilation, c.dilation])
            .with_groups(c.groups)
            .with_padding(PaddingConfig2d::Explicit(c.pad, c.pad, c.pad, c.pad))
            .with_bias(c.bias)
            .init(device);
        let w = fixed([c.cout, c.x[1] / c.groups, c.k, c.k], 2);
        conv.weight = Param::from_tensor(Tensor::from_data(w, device));
        if c.bias {
            let b = TensorData::new((0..c.cout).map(|i| i as f32 * 0.1).collect(), [c.cout]);
            conv.bias = Some(Param::from_tensor(Tensor::from_data(b, device)));
        }
        conv
    }

    /// burn's 2×2 max pool of stride 2, the nets' own.
    fn pool_2x2() -> burn::nn::pool::MaxPool2d {
        burn::nn::pool::MaxPool2dConfig::new([2, 2])
            .with_strides([2, 2])
            .init()
    }

    fn burns_pool(y: Tensor<4>) -> Tensor<4> {
        pool_2x2().forward(y)
    }

    /// Ours against burn's on every case, with and without the ReLU.
    fn assert_matches_burns(cases: &[Case], pool: bool) {
        for (n, c) in cases.iter().enumerate() {
            for relu in [false, true] {
                let (ours, burns) = (grads(c, true, relu, pool), grads(c, false, relu, pool));
                for (k, what) in ["output", "dx", "dw", "db"].iter().enumerate() {
                    let at = format!("case {n}, relu {relu}, pool {pool}: {what}");
                    close(&ours[k], &burns[k], &at);
                }
            }
        }
    }

    /// Output, dx, dw, db of `Σ y·r` through ours or burn's path, with
    /// `y` the convolution's output, or its ReLU (`relu`), then pooled
    /// (`pool`).
    fn grads(c: &Case, ours: bool, relu: bool, pool: bool) -> [Vec<f32>; 4] {
        let device = Device::flex().autodiff();
        let conv = conv_of(c, &device);
        let x = Tensor::<4>::from_data(fixed(c.x, 1), &device).require_grad();
        let y = if ours {
            conv2d(&conv, x.clone(), relu, pool).expect("f32, symmetric padding, even size")
        } else {
            let y = conv.forward(x.clone());
            let y = if relu {
                burn::tensor::activation::relu(y)
            } else {
                y
            };
            if pool { burns_pool(y) } else { y }
        };
        let r = Tensor::<4>::from_data(fixed(y.dims(), 3), &device);
        let g = (y.clone() * r).sum().backward();
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
    fn gradients_match_burns_with_stride_padding_dilation_and_groups() {
        let cases = [
            Case {
                x: [2, 3, 9, 8],
                cout: 4,
                k: 3,
                stride: 1,
                pad: 1,
                dilation: 1,
                groups: 1,
                bias: true,
            },
            Case {
                x: [3, 4, 9, 9],
                cout: 6,
                k: 3,
                stride: 2,
                pad: 1,
                dilation: 1,
                groups: 2,
                bias: false,
            },
            Case {
                x: [2, 2, 10, 7],
                cout: 3,
                k: 3,
                stride: 1,
                pad: 2,
                dilation: 2,
                groups: 1,
                bias: true,
            },
            Case {
                x: [1, 3, 6, 6],
                cout: 2,
                k: 1,
                stride: 1,
                pad: 0,
                dilation: 1,
                groups: 1,
                bias: true,
            },
            Case {
                x: [5, 2, 7, 7],
                cout: 4,
                k: 5,
                stride: 3,
                pad: 0,
                dilation: 1,
                groups: 2,
                bias: true,
            },
            // Stride 1 with an output wider than the input: im2col row by
            // row (the stride-1 cases above, with OW = W, take `Run`).
            Case {
                x: [2, 2, 5, 6],
                cout: 3,
                k: 3,
                stride: 1,
                pad: 2,
                dilation: 1,
                groups: 1,
                bias: true,
            },
            // 65 output channels per group: the weight gradient in gemm's
            // own orientation; every case above is computed transposed
            // (Dims::weight_grad_transposed).
            Case {
                x: [3, 4, 6, 5],
                cout: 130,
                k: 3,
                stride: 1,
                pad: 1,
                dilation: 1,
                groups: 2,
                bias: true,
            },
        ];
        assert_matches_burns(&cases, false);
    }

    #[test]
    fn a_nan_input_stays_nan_through_the_fused_relu_as_through_burns() {
        let device = Device::flex().autodiff();
        let c = Case {
            x: [1, 1, 4, 4],
            cout: 2,
            k: 1,
            stride: 1,
            pad: 0,
            dilation: 1,
            groups: 1,
            bias: true,
        };
        let conv = conv_of(&c, &device);
        let mut v = vals(Tensor::<4>::from_data(fixed(c.x, 1), &device));
        v[5] = f32::NAN;
        let x = Tensor::<4>::from_data(TensorData::new(v, c.x), &device);
        let ours = vals(conv2d(&conv, x.clone(), true, false).expect("f32"));
        let burns = vals(burn::tensor::activation::relu(conv.forward(x)));
        let nans = |v: &[f32]| -> Vec<usize> { (0..v.len()).filter(|&i| v[i].is_nan()).collect() };
        assert_eq!(nans(&ours), vec![5, 21]);
        assert_eq!(nans(&ours), nans(&burns));
    }

    #[test]
    fn the_fused_pool_matches_burns_relu_and_pool_forward_and_backward() {
        let cases = [
            // Many windows wholly below 0: ties at the ReLU's 0.
            Case {
                x: [2, 3, 8, 6],
                cout: 4,
                k: 3,
                stride: 1,
                pad: 1,
                dilation: 1,
                groups: 1,
                bias: true,
            },
            Case {
                x: [3, 4, 10, 10],
                cout: 6,
                k: 3,
                stride: 1,
                pad: 0,
                dilation: 1,
                groups: 2,
                bias: false,
            },
            // 11 images of 4×4 outputs: tasks of 8 and 3.
            Case {
                x: [11, 2, 4, 4],
                cout: 3,
                k: 1,
                stride: 1,
                pad: 0,
                dilation: 1,
                groups: 1,
                bias: true,
            },
        ];
        assert_matches_burns(&cases, true);
    }

    thread_local! {
        static FORCE_WINOGRAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Whether this test thread takes [`winograd`] wherever the geometry
    /// allows, small sizes included (forward and backward run on the
    /// calling thread).
    pub(super) fn forced_winograd() -> bool {
        FORCE_WINOGRAD.with(|f| f.get())
    }

    /// `f()` with [`winograd`] forced on this thread.
    fn with_winograd<R>(f: impl FnOnce() -> R) -> R {
        struct Unforce;
        impl Drop for Unforce {
            fn drop(&mut self) {
                FORCE_WINOGRAD.with(|w| w.set(false));
            }
        }
        FORCE_WINOGRAD.with(|w| w.set(true));
        let _unforce = Unforce;
        f()
    }

    /// [`with_winograd`], checking that `f`'s convolutions went through it.
    fn through_winograd(f: impl FnOnce()) {
        let before = winograd::CALLS.with(|c| c.get());
        with_winograd(f);
        let after = winograd::CALLS.with(|c| c.get());
        assert!(after > before, "Winograd's path ran");
    }

    /// 3×3, stride 1, padding 1 cases for [`winograd`] (forced: they are
    /// below its size thresholds).
    fn winograd_cases() -> [Case; 5] {
        let case = |x: [usize; 4], cout: usize, groups: usize, bias: bool| Case {
            x,
            cout,
            k: 3,
            stride: 1,
            pad: 1,
            dilation: 1,
            groups,
            bias,
        };
        [
            // One task.
            case([2, 16, 6, 6], 16, 1, true),
            // Odd height and width: the last tiles stick out of the plane.
            case([2, 16, 7, 5], 17, 1, false),
            // Two groups of 16 inputs and 24 outputs.
            case([2, 32, 6, 4], 48, 2, true),
            // 289 tiles an image: tasks of two images and one, one after
            // another, each adding into the weight gradient.
            case([3, 16, 34, 34], 16, 1, true),
            // 64 tiles an image: Winograd's tasks of 8 images and 1, and dY
            // in im2col's task layout of 4, 4 and 1 (`Dims::task_plane`).
            case([9, 16, 16, 16], 16, 1, true),
        ]
    }

    #[test]
    fn winograd_matches_burns_with_odd_sizes_groups_and_several_tasks() {
        for c in winograd_cases() {
            let [n, cin, h, w] = c.x;
            let d = Dims {
                n,
                cin,
                h,
                w,
                cout: c.cout,
                oh: h,
                ow: w,
                g: Geometry {
                    groups: c.groups,
                    ..same_3x3(n, cin, h, c.cout).g
                },
                ..same_3x3(n, cin, h, c.cout)
            };
            assert!(d.winograd().is_none(), "{:?} is below the thresholds", c.x);
            assert!(
                with_winograd(|| d.winograd()).is_some(),
                "{:?} can take Winograd",
                c.x
            );
        }
        through_winograd(|| assert_matches_burns(&winograd_cases(), false));
    }

    #[test]
    fn winograd_with_the_fused_pool_matches_burns() {
        // The even-sized ones (a pooled output of odd size falls back).
        let [one, _, grouped, tasks, layouts] = winograd_cases();
        through_winograd(|| assert_matches_burns(&[one, grouped, tasks, layouts], true));
    }

    #[test]
    fn tnets_wide_3x3_layers_take_winograd_and_its_narrow_and_deep_ones_do_not() {
        // (C_in, C_out, side) at batch 32, 64 px.
        let takes = |cin: usize, cout: usize, side: usize| {
            Dims {
                cout,
                ..same_3x3(32, cin, side, cout)
            }
            .winograd()
            .is_some()
        };
        assert!(takes(64, 64, 32) && takes(128, 128, 16) && takes(256, 256, 8));
        assert!(!takes(32, 32, 64) && !takes(32, 64, 32), "too few channels");
        assert!(!takes(512, 512, 4), "too few tiles");
        let strided = Dims {
            g: Geometry {
                stride: [2, 2],
                ..same_3x3(32, 128, 16, 128).g
            },
            ..same_3x3(32, 128, 16, 128)
        };
        assert!(strided.winograd().is_none() && with_winograd(|| strided.winograd()).is_none());
    }

    #[test]
    fn the_fused_pool_declines_an_odd_output_and_the_nets_path_falls_back_to_burns() {
        let device = Device::flex().autodiff();
        let c = Case {
            x: [1, 2, 7, 6],
            cout: 2,
            k: 3,
            stride: 1,
            pad: 1,
            dilation: 1,
            groups: 1,
            bias: true,
        };
        let conv = conv_of(&c, &device);
        let x = Tensor::<4>::from_data(fixed(c.x, 1), &device);
        assert!(conv2d(&conv, x.clone(), true, true).is_none());
        let ours = super::super::conv2d_relu_pool(&conv, x.clone(), &pool_2x2());
        let burns = burns_pool(burn::tensor::activation::relu(conv.forward(x)));
        assert_eq!(ours.dims(), [1, 2, 3, 3]);
        close(&vals(ours), &vals(burns), "odd output");
    }

    #[test]
    fn a_nan_wins_its_pooling_window_as_in_burns_pool() {
        let device = Device::flex().autodiff();
        let c = Case {
            x: [1, 1, 4, 4],
            cout: 1,
            k: 1,
            stride: 1,
            pad: 0,
            dilation: 1,
            groups: 1,
            bias: true,
        };
        let conv = conv_of(&c, &device);
        let mut v = vals(Tensor::<4>::from_data(fixed(c.x, 1), &device));
        v[5] = f32::NAN;
        let x = Tensor::<4>::from_data(TensorData::new(v, c.x), &device);
        let ours = vals(conv2d(&conv, x.clone(), true, true).expect("f32, even"));
        let burns = vals(burns_pool(burn::tensor::activation::relu(conv.forward(x))));
        assert!(ours[0].is_nan(), "{ours:?}");
        assert!(burns[0].is_nan(), "{burns:?}");
        close(&ours[1..], &burns[1..], "the windows without a NaN");
    }

    /// The sizes of a 3×3 convolution of stride 1 and padding 1 (output
    /// the input's size) over `n` images of `cin` × `size` × `size`.
    fn same_3x3(n: usize, cin: usize, size: usize, cout: usize) -> Dims {
        let g = Geometry {
            stride: [1; 2],
            padding: [1; 2],
            dilation: [1; 2],
            groups: 1,
            relu: false,
            pool: false,
        };
        Dims {
            n,
            cin,
            h: size,
            w: size,
            cout,
            kh: 3,
            kw: 3,
            oh: size,
            ow: size,
            g,
        }
    }

    #[test]
    fn several_images_share_a_gemm_and_a_last_task_is_short() {
        // 20×20 outputs: 3 images per task, so 11 images (4,400 columns,
        // more than one task's worth) are tasks of 3, 3, 3 and 2.
        let c = Case {
            x: [11, 3, 20, 20],
            cout: 4,
            k: 3,
            stride: 1,
            pad: 1,
            dilation: 1,
            groups: 1,
            bias: true,
        };
        let d = same_3x3(11, 3, 20, 4);
        assert!(!d.one_task());
        assert_eq!(d.images_per_task(), 3);
        // Groups and a stride across tasks too: 12×12 outputs, tasks of 8
        // and 1.
        let grouped = Case {
            x: [9, 4, 24, 24],
            cout: 6,
            k: 3,
            stride: 2,
            pad: 1,
            dilation: 1,
            groups: 2,
            bias: false,
        };
        let cases = [c, grouped];
        assert_matches_burns(&cases, false);
        assert_matches_burns(&cases, true);
    }

    #[test]
    fn a_deep_layers_batch_is_one_task_and_a_shallow_ones_is_not() {
        // TNet at 64 px, batch 32: conv6 (4×4) and conv1 (64×64).
        let (deep, shallow) = (same_3x3(32, 512, 4, 1280), same_3x3(32, 3, 64, 32));
        assert!(deep.one_task());
        assert_eq!(deep.images_per_task(), 32);
        assert!(!shallow.one_task());
        assert_eq!(shallow.images_per_task(), 1);
        // One image is always one task, whatever its size.
        assert!(same_3x3(1, 3, 64, 32).one_task());
    }

    #[test]
    fn weight_gradient_matches_finite_differences() {
        let im2col = Case {
            x: [2, 2, 6, 6],
            cout: 3,
            k: 3,
            stride: 2,
            pad: 1,
            dilation: 1,
            groups: 1,
            bias: false,
        };
        let [winograd, ..] = winograd_cases();
        weight_gradient_matches_finite_differences_on(im2col, [0, 5, 17, 40, 53]);
        through_winograd(|| {
            weight_gradient_matches_finite_differences_on(winograd, [0, 5, 170, 1200, 2303])
        });
    }

    fn weight_gradient_matches_finite_differences_on(c: Case, indices: [usize; 5]) {
        let device = Device::flex();
        let x = fixed(c.x, 1);
        // L = Σ y², computed in f64 from f32 outputs.
        let loss = |conv: &Conv2d| -> f64 {
            let y = conv2d(conv, Tensor::from_data(x.clone(), &device), false, false).unwrap();
            vals(y).iter().map(|v| (*v as f64).powi(2)).sum()
        };
        let ad = device.clone().autodiff();
        let conv = conv_of(&c, &ad);
        let y = conv2d(&conv, Tensor::from_data(x.clone(), &ad), false, false).unwrap();
        let dw = vals(conv.weight.grad(&(y.clone() * y).sum().backward()).unwrap());
        let base = vals(conv_of(&c, &device).weight.val());
        for k in indices {
            let eps = 1e-2f32;
            let at = |delta: f32| {
                let mut w = base.clone();
                w[k] += delta;
                let mut conv = conv_of(&c, &device);
                let shape = conv.weight.dims();
                conv.weight =
                    Param::from_tensor(Tensor::from_data(TensorData::new(w, shape), &device));
                loss(&conv)
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps as f64);
            let rel = (numeric - dw[k] as f64).abs() / numeric.abs().max(1.0);
            assert!(rel < 1e-3, "dw[{k}]: {} vs {numeric}", dw[k]);
        }
    }

    #[test]
    fn valid_output_ranges_stay_inside_the_input() {
        // o·stride + offset must lie in 0..size for o in the range, and
        // just outside it at both ends.
        for (o_len, size, stride, offset) in [
            (8, 8, 1, -1isize),
            (4, 9, 2, -1),
            (4, 9, 2, 1),
            (3, 7, 3, 2),
            (5, 5, 1, 3),
        ] {
            let (a, b) = Dims::valid(o_len, size, stride, offset);
            for o in 0..o_len {
                let i = (o * stride) as isize + offset;
                assert_eq!(
                    (a..b).contains(&o),
                    (0..size as isize).contains(&i),
                    "{o_len} {size} {stride} {offset} o={o}"
                );
            }
        }
    }
}

/// Per-layer times of TNet at 64 px, batch 32, full width (the side-by-side
/// benchmark's hardest case), to set against `bench/cpu/layers.py`:
/// `cargo test --release --lib tnet_layer_times -- --ignored --nocapture`.
#[cfg(test)]
mod layer_times {
    use super::*;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;

    #[test]
    #[ignore = "a timing, not a check: run by hand"]
    fn tnet_layer_times() {
        let device = Device::flex().autodiff();
        // `NET=snet3` times SNet3's 3×3 layers instead of TNet's, `SIZE=128`
        // at 128 px.
        let env = |k: &str| std::env::var(k).ok();
        let size: usize = env("SIZE").and_then(|v| v.parse().ok()).unwrap_or(64);
        // (C_in, C_out, side, pooled after)
        let layers: Vec<(usize, usize, usize, bool)> = if env("NET").as_deref() == Some("snet3") {
            vec![
                (3, 16, size, true),
                (16, 32, size / 2, true),
                (32, 64, size / 4, true),
                (64, 128, size / 8, true),
            ]
        } else {
            let s = |d: usize| size / d;
            vec![
                (3, 32, s(1), false),
                (32, 32, s(1), true),
                (32, 64, s(2), false),
                (64, 64, s(2), true),
                (64, 128, s(4), false),
                (128, 128, s(4), false),
                (128, 128, s(4), true),
                (128, 256, s(8), false),
                (256, 256, s(8), false),
                (256, 256, s(8), true),
                (256, 512, s(16), false),
                (512, 512, s(16), false),
                (512, 512, s(16), false),
                (512, 1280, s(16), false),
            ]
        };
        let (mut tf, mut tb) = (0.0, 0.0);
        println!("layer\tforward ms\tbackward ms");
        // `LAYER=5` times only the sixth layer (for a profiler).
        let only: Option<usize> = std::env::var("LAYER").ok().and_then(|v| v.parse().ok());
        let reps = if only.is_some() { 40 } else { 6 };
        for (i, (cin, cout, side, pool)) in layers.into_iter().enumerate() {
            if only.is_some_and(|o| o != i) {
                continue;
            }
            let conv = Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(&device);
            let x = Tensor::<4>::ones([32, cin, side, side], &device).require_grad();
            let (mut f, mut b) = (Vec::new(), Vec::new());
            for rep in 0..reps {
                let t = std::time::Instant::now();
                let y = conv2d(&conv, x.clone(), true, pool).unwrap();
                let _ = y.clone().into_data();
                let t1 = t.elapsed().as_secs_f64();
                let t = std::time::Instant::now();
                let g = y.sum().backward();
                let _ = x.grad(&g).unwrap().into_data();
                let t2 = t.elapsed().as_secs_f64();
                if rep > 0 {
                    f.push(t1);
                    b.push(t2);
                }
            }
            let med = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2] * 1e3
            };
            let (f, b) = (med(&mut f), med(&mut b));
            tf += f;
            tb += b;
            println!(
                "{cin}->{cout} @{side}{}\t{f:.1}\t{b:.1}",
                if pool { " +pool" } else { "" }
            );
        }
        println!("total\t{tf:.1}\t{tb:.1}");
    }
}
