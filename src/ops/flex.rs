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
//! the same way (inference keeps flex's own convolution). Numerics differ
//! from burn's fallback by float rounding only; cache keys do not record
//! the change (like a BLAS upgrade), so entries computed before it stay.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor, Layout};
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, DispatchDevice, backend_extension};
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Device, Shape, Tensor};
use rayon::prelude::*;

/// Whether `device` is flex under autodiff (the only place the backward runs).
pub fn on_flex_autodiff(device: &Device) -> bool {
    match device.as_dispatch() {
        DispatchDevice::Autodiff(a) => matches!(**a, DispatchDevice::Flex(_)),
        _ => false,
    }
}

/// Convolution geometry (symmetric padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Geometry {
    fn options(&self) -> ConvOptions<2> {
        ConvOptions::new(self.stride, self.padding, self.dilation, self.groups)
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
        Flex::conv2d(x, weight, Some(bias), geometry.options())
    }
    fn flex_conv2d_no_bias(x: FlexTensor, weight: FlexTensor, geometry: Geometry) -> FlexTensor {
        Flex::conv2d(x, weight, None, geometry.options())
    }
}

/// What the backward pass needs: the forward's input and weights.
#[derive(Debug, Clone)]
struct Saved {
    x: FlexTensor,
    weight: FlexTensor,
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
            geometry,
        } = ops.state;
        let shape = Dims::new(&x, &weight, geometry);
        let (x, weight, dy) = (Values::of(&x), Values::of(&weight), Values::of(&dy));
        let (x, weight, dy) = (x.get(), weight.get(), dy.get());
        if let Some(node) = &ops.parents[0] {
            let dx = input_grad(weight, dy, &shape);
            grads.register::<Flex>(node.id, tensor(dx, shape.x_shape()));
        }
        if let Some(node) = &ops.parents[1] {
            let dw = weight_grad(x, dy, &shape);
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
            let out = forward(&prims);
            let saved = Saved {
                x: prims[0].clone(),
                weight: prims[1].clone(),
                geometry,
            };
            prep.finish(saved, out)
        }
        OpsKind::UnTracked(prep) => {
            let prims: Vec<FlexTensor> = inputs.into_iter().map(|t| t.into_primitive()).collect();
            prep.finish(forward(&prims))
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

/// `conv.forward(x)` through [`FlexConvOps`]; `None` where this path does
/// not apply (asymmetric padding, a dtype other than f32).
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Option<Tensor<4>> {
    if x.dtype() != DType::F32 || conv.weight.val().dtype() != DType::F32 {
        return None;
    }
    let padding = super::symmetric_padding(conv)?;
    let geometry = Geometry {
        stride: conv.stride,
        padding,
        dilation: conv.dilation,
        groups: conv.groups,
    };
    let (x, weight) = (x.into_dispatch(), conv.weight.val().into_dispatch());
    let y = match &conv.bias {
        Some(b) => {
            <Dispatch as FlexConvOps>::flex_conv2d(x, weight, b.val().into_dispatch(), geometry)
        }
        None => <Dispatch as FlexConvOps>::flex_conv2d_no_bias(x, weight, geometry),
    };
    Some(Tensor::from_dispatch(y))
}

/// The convolution as im2col + one GEMM per image and group, the same
/// lowering as the gradients (flex's own forward spends its time in index
/// arithmetic per element).
fn forward(x: &FlexTensor, w: &FlexTensor, b: Option<&FlexTensor>, g: Geometry) -> FlexTensor {
    let d = Dims::new(x, w, g);
    let (x, w, bias) = (Values::of(x), Values::of(w), b.map(Values::of));
    let (x, w, bias) = (x.get(), w.get(), bias.as_ref().map(Values::get));
    let (rows, p, cg, coutg) = (d.rows(), d.pixels(), d.cg(), d.coutg());
    let image_x = d.cin * d.h * d.w;
    let image_y = d.cout * p;
    let mut y = vec![0.0f32; d.n * image_y];
    y.par_chunks_mut(CHUNK * image_y)
        .enumerate()
        .for_each(|(t, y)| {
            let mut cols = vec![0.0f32; rows * p];
            for (k, y) in y.chunks_mut(image_y).enumerate() {
                let img = t * CHUNK + k;
                for grp in 0..g.groups {
                    im2col(
                        &x[img * image_x + grp * cg * d.h * d.w..][..cg * d.h * d.w],
                        &d,
                        &mut cols,
                    );
                    gemm(
                        (coutg, p, rows),
                        &mut y[grp * coutg * p..][..coutg * p],
                        p,
                        false,
                        &w[grp * coutg * rows..][..coutg * rows],
                        (rows, 1),
                        &cols,
                        (p, 1),
                        false,
                    );
                }
                if let Some(bias) = bias {
                    for (plane, b) in y.chunks_mut(p).zip(bias) {
                        plane.iter_mut().for_each(|v| *v += b);
                    }
                }
            }
        });
    tensor(y, Shape::new([d.n, d.cout, d.oh, d.ow]))
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
        let out = |size: usize, k: usize, a: usize| {
            (size + 2 * g.padding[a]).saturating_sub(g.dilation[a] * (k - 1) + 1) / g.stride[a] + 1
        };
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

/// The im2col matrix of one image's group (`x` holds its C_g × H × W
/// values): row `(c·KH + i)·KW + j`, column `oy·OW + ox`.
fn im2col(x: &[f32], d: &Dims, cols: &mut [f32]) {
    let (p, g) = (d.pixels(), d.g);
    for c in 0..d.cg() {
        let plane = &x[c * d.h * d.w..(c + 1) * d.h * d.w];
        for i in 0..d.kh {
            let oy_off = (i * g.dilation[0]) as isize - g.padding[0] as isize;
            let (y0, y1) = Dims::valid(d.oh, d.h, g.stride[0], oy_off);
            for j in 0..d.kw {
                let ox_off = (j * g.dilation[1]) as isize - g.padding[1] as isize;
                let (x0, x1) = Dims::valid(d.ow, d.w, g.stride[1], ox_off);
                let row = &mut cols[((c * d.kh + i) * d.kw + j) * p..][..p];
                row.fill(0.0);
                for oy in y0..y1 {
                    let iy = (oy * g.stride[0]) as isize + oy_off;
                    let src = &plane[iy as usize * d.w..][..d.w];
                    let dst = &mut row[oy * d.ow..][..d.ow];
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
}

/// Adds an im2col-shaped gradient back onto one image's group (`dx`).
fn col2im(cols: &[f32], d: &Dims, dx: &mut [f32]) {
    let (p, g) = (d.pixels(), d.g);
    for c in 0..d.cg() {
        let plane = &mut dx[c * d.h * d.w..(c + 1) * d.h * d.w];
        for i in 0..d.kh {
            let oy_off = (i * g.dilation[0]) as isize - g.padding[0] as isize;
            let (y0, y1) = Dims::valid(d.oh, d.h, g.stride[0], oy_off);
            for j in 0..d.kw {
                let ox_off = (j * g.dilation[1]) as isize - g.padding[1] as isize;
                let (x0, x1) = Dims::valid(d.ow, d.w, g.stride[1], ox_off);
                let row = &cols[((c * d.kh + i) * d.kw + j) * p..][..p];
                for oy in y0..y1 {
                    let iy = (oy * g.stride[0]) as isize + oy_off;
                    let dst = &mut plane[iy as usize * d.w..][..d.w];
                    let src = &row[oy * d.ow..][..d.ow];
                    for ox in x0..x1 {
                        dst[((ox * g.stride[1]) as isize + ox_off) as usize] += src[ox];
                    }
                }
            }
        }
    }
}

/// `dst (m×n) = [dst +] lhs (m×k) · rhs (k×n)`, strides as (row, column).
#[allow(clippy::too_many_arguments)]
fn gemm(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_rs: usize,
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
    assert!(m == 0 || n == 0 || last(dst_rs, 1, m, n) < dst.len());
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
            1,
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

/// Images per rayon task: each task keeps one im2col buffer and runs its
/// GEMMs single-threaded. Fixed, not derived from the thread count, so the
/// weight gradient's sums run in the same order on any machine.
const CHUNK: usize = 4;

/// dW = Σ over images and per group of dY · colsᵀ.
fn weight_grad(x: &[f32], dy: &[f32], d: &Dims) -> Vec<f32> {
    let (rows, p, cg, coutg) = (d.rows(), d.pixels(), d.cg(), d.coutg());
    let image_x = d.cin * d.h * d.w;
    let image_y = d.cout * p;
    let per = CHUNK;
    let partial = |images: std::ops::Range<usize>| {
        let mut dw = vec![0.0f32; d.cout * rows];
        let mut cols = vec![0.0f32; rows * p];
        for img in images {
            for grp in 0..d.g.groups {
                let xs = &x[img * image_x + grp * cg * d.h * d.w..][..cg * d.h * d.w];
                im2col(xs, d, &mut cols);
                let dys = &dy[img * image_y + grp * coutg * p..][..coutg * p];
                gemm(
                    (coutg, rows, p),
                    &mut dw[grp * coutg * rows..][..coutg * rows],
                    rows,
                    true,
                    dys,
                    (p, 1),
                    &cols,
                    (1, p),
                    false,
                );
            }
        }
        dw
    };
    let partials: Vec<Vec<f32>> = (0..d.n.div_ceil(per))
        .into_par_iter()
        .map(|t| partial(t * per..((t + 1) * per).min(d.n)))
        .collect();
    // Summed in chunk order: bitwise the same whatever the thread count.
    let mut dw = vec![0.0f32; d.cout * rows];
    for p in &partials {
        dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
    dw
}

/// dX per image and group: col2im(Wᵀ · dY).
fn input_grad(w: &[f32], dy: &[f32], d: &Dims) -> Vec<f32> {
    let (rows, p, cg, coutg) = (d.rows(), d.pixels(), d.cg(), d.coutg());
    let image_x = d.cin * d.h * d.w;
    let image_y = d.cout * p;
    let mut dx = vec![0.0f32; d.n * image_x];
    let per = CHUNK;
    dx.par_chunks_mut(per * image_x)
        .enumerate()
        .for_each(|(t, dx)| {
            let mut cols = vec![0.0f32; rows * p];
            for (k, dx) in dx.chunks_mut(image_x).enumerate() {
                let img = t * per + k;
                for grp in 0..d.g.groups {
                    let wg = &w[grp * coutg * rows..][..coutg * rows];
                    let dys = &dy[img * image_y + grp * coutg * p..][..coutg * p];
                    gemm(
                        (rows, p, coutg),
                        &mut cols,
                        p,
                        false,
                        wg,
                        (1, rows),
                        dys,
                        (p, 1),
                        false,
                    );
                    col2im(&cols, d, &mut dx[grp * cg * d.h * d.w..][..cg * d.h * d.w]);
                }
            }
        });
    dx
}

/// db: dY summed over images and pixels.
fn bias_grad(dy: &[f32], d: &Dims) -> Vec<f32> {
    let p = d.pixels();
    let mut db = vec![0.0f32; d.cout];
    for image in dy.chunks(d.cout * p) {
        for (c, plane) in image.chunks(p).enumerate() {
            db[c] += plane.iter().sum::<f32>();
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

    /// Output, dx, dw, db of `Σ relu-free y·r` through ours or burn's path.
    fn grads(c: &Case, ours: bool) -> [Vec<f32>; 4] {
        let device = Device::flex().autodiff();
        let conv = conv_of(c, &device);
        let x = Tensor::<4>::from_data(fixed(c.x, 1), &device).require_grad();
        let y = if ours {
            conv2d(&conv, x.clone()).expect("f32, symmetric padding")
        } else {
            conv.forward(x.clone())
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
        ];
        for (n, c) in cases.iter().enumerate() {
            let (ours, burns) = (grads(c, true), grads(c, false));
            for (k, what) in ["output", "dx", "dw", "db"].iter().enumerate() {
                close(&ours[k], &burns[k], &format!("case {n}: {what}"));
            }
        }
    }

    #[test]
    fn weight_gradient_matches_finite_differences() {
        let c = Case {
            x: [2, 2, 6, 6],
            cout: 3,
            k: 3,
            stride: 2,
            pad: 1,
            dilation: 1,
            groups: 1,
            bias: false,
        };
        let device = Device::flex();
        let x = fixed(c.x, 1);
        // L = Σ y², computed in f64 from f32 outputs.
        let loss = |conv: &Conv2d| -> f64 {
            let y = conv2d(conv, Tensor::from_data(x.clone(), &device)).unwrap();
            vals(y).iter().map(|v| (*v as f64).powi(2)).sum()
        };
        let ad = device.clone().autodiff();
        let conv = conv_of(&c, &ad);
        let y = conv2d(&conv, Tensor::from_data(x.clone(), &ad)).unwrap();
        let dw = vals(conv.weight.grad(&(y.clone() * y).sum().backward()).unwrap());
        let base = vals(conv_of(&c, &device).weight.val());
        for k in [0, 5, 17, 40, 53] {
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
