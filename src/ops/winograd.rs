//! 3×3 convolutions of stride 1 and padding 1 by Winograd's F(2×2, 3×3)
//! (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
//! 2016): each 4×4 input tile `d` and 3×3 kernel `g` are transformed,
//! `V = Bᵀ d B` and `U = G g Gᵀ`, so that the tile's 2×2 outputs are
//! `Aᵀ (U ⊙ V) A`: 16 multiplications per channel pair instead of 36. Over a
//! batch, the products are 16 GEMMs over channels (one per position ξ of the
//! 4×4 transform), each `M[ξ] = U[ξ] · V[ξ]`.
//!
//! Why: the im2col lowering in [`super::flex`] runs its GEMMs at gemm's
//! speed and cannot do fewer of them; on TNet's wide 3×3 layers PyTorch's
//! direct convolution was ahead (bench/results/2026-12-07-cpu.md). Doing
//! 2.25× fewer multiplications is the lever that is left. All three passes
//! use it: the forward; the input gradient, which is the same convolution
//! of dY with the kernel flipped and its channels swapped; and the weight
//! gradient, `dU[ξ] = Σ_tiles (A dY Aᵀ)[ξ] · V[ξ]`, then `dg = Gᵀ dU G`.
//! Rounding differs from the direct sums': the error grows with the sum of
//! the transformed terms' magnitudes rather than with the result's (within
//! 1e-4 of the largest output in the tests, as the im2col path).

use rayon::prelude::*;

/// One convolution's sizes; the output has the input's spatial size.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sizes {
    pub n: usize,
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
    pub groups: usize,
}

/// Transformed tiles per task: enough that the 16 GEMMs are not dominated
/// by packing the transformed kernels, few enough to bound a task's
/// transformed input and output (16 · channels · 512 values each: 8 MiB
/// at 256 channels). 2,048 measured within noise of it.
const TILES_PER_TASK: usize = 512;

impl Sizes {
    fn tiles_y(&self) -> usize {
        self.h.div_ceil(2)
    }
    fn tiles_x(&self) -> usize {
        self.w.div_ceil(2)
    }
    fn tiles_per_image(&self) -> usize {
        self.tiles_y() * self.tiles_x()
    }
    /// Images per task.
    fn images_per_task(&self) -> usize {
        TILES_PER_TASK
            .div_ceil(self.tiles_per_image())
            .clamp(1, self.n.max(1))
    }
    fn plane(&self) -> usize {
        self.h * self.w
    }
}

/// The transformed kernels `U[ξ]` (`outs × ins`, `ins` the input channels
/// per group), laid out output by output: `u[(o · 16 + ξ) · ins + i]`, so
/// that each output's rows are one contiguous block (transformed in
/// parallel). `tap(o, i, j)` is tap `j` (row-major 3×3) of the kernel from
/// input `i` of `o`'s group to output `o`. This runs on every forward and
/// backward pass, for kernels of up to 512 × 1,280 channels, so it works
/// on whole rows of inputs at a time (vectorised) instead of kernel by
/// kernel.
pub(super) fn kernels(
    outs: usize,
    ins: usize,
    tap: impl Fn(usize, usize, usize) -> f32 + Sync,
) -> Vec<f32> {
    let mut u = vec![0.0f32; outs * 16 * ins];
    u.par_chunks_mut(16 * ins).enumerate().for_each_init(
        || vec![0.0f32; 21 * ins],
        |scratch, (o, u)| {
            // g[j][i], then G g: t[r][c][i] (4 × 3 rows).
            let (g, t) = scratch.split_at_mut(9 * ins);
            for (j, g) in g.chunks_exact_mut(ins).enumerate() {
                g.iter_mut()
                    .enumerate()
                    .for_each(|(i, v)| *v = tap(o, i, j));
            }
            let g = |r: usize, c: usize| &g[(r * 3 + c) * ins..][..ins];
            for c in 0..3 {
                let (g0, g1, g2) = (g(0, c), g(1, c), g(2, c));
                let row = |r: usize| (r * 3 + c) * ins;
                let (t0, t1, t2, t3) = (row(0), row(1), row(2), row(3));
                for i in 0..ins {
                    t[t0 + i] = g0[i];
                    t[t1 + i] = 0.5 * (g0[i] + g1[i] + g2[i]);
                    t[t2 + i] = 0.5 * (g0[i] - g1[i] + g2[i]);
                    t[t3 + i] = g2[i];
                }
            }
            // (G g) Gᵀ, row r of the 4 × 4 result.
            for (r, u) in u.chunks_exact_mut(4 * ins).enumerate() {
                let t = |c: usize| &t[(r * 3 + c) * ins..][..ins];
                let (t0, t1, t2) = (t(0), t(1), t(2));
                let (u0, rest) = u.split_at_mut(ins);
                let (u1, rest) = rest.split_at_mut(ins);
                let (u2, u3) = rest.split_at_mut(ins);
                for i in 0..ins {
                    u0[i] = t0[i];
                    u1[i] = 0.5 * (t0[i] + t1[i] + t2[i]);
                    u2[i] = 0.5 * (t0[i] - t1[i] + t2[i]);
                    u3[i] = t2[i];
                }
            }
        },
    );
    u
}

/// The 3×3 kernels `[o][i][3][3]` of a weight gradient from its transformed
/// form `du` (laid out as [`kernels`]' `u`): `dg = Gᵀ dU G`.
fn untransform_kernels(du: &[f32], outs: usize, ins: usize) -> Vec<f32> {
    let mut dg = vec![0.0f32; outs * ins * 9];
    dg.par_chunks_mut(ins * 9)
        .zip(du.par_chunks(16 * ins))
        .for_each_init(
            || vec![0.0f32; 12 * ins],
            |q, (dg, du)| {
                let du = |xi: usize| &du[xi * ins..][..ins];
                // Gᵀ dU: q[r][c][i] (3 × 4 rows).
                for c in 0..4 {
                    let (u0, u1, u2, u3) = (du(c), du(4 + c), du(8 + c), du(12 + c));
                    let row = |r: usize| (r * 4 + c) * ins;
                    let (q0, q1, q2) = (row(0), row(1), row(2));
                    for i in 0..ins {
                        q[q0 + i] = u0[i] + 0.5 * (u1[i] + u2[i]);
                        q[q1 + i] = 0.5 * (u1[i] - u2[i]);
                        q[q2 + i] = 0.5 * (u1[i] + u2[i]) + u3[i];
                    }
                }
                // (Gᵀ dU) G, tap by tap.
                for r in 0..3 {
                    let q = |c: usize| &q[(r * 4 + c) * ins..][..ins];
                    let (q0, q1, q2, q3) = (q(0), q(1), q(2), q(3));
                    for i in 0..ins {
                        let g = &mut dg[i * 9 + r * 3..][..3];
                        g[0] = q0[i] + 0.5 * (q1[i] + q2[i]);
                        g[1] = 0.5 * (q1[i] - q2[i]);
                        g[2] = 0.5 * (q1[i] + q2[i]) + q3[i];
                    }
                }
            },
        );
    dg
}

#[cfg(test)]
thread_local! {
    /// Calls of [`conv`] and [`weight_grad`] on this thread, for tests to
    /// check that a convolution went through here.
    pub(super) static CALLS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Buffers a thread reuses across planes (a fresh allocation per plane
/// costs more than a deep layer's 4×4 plane takes to transform).
#[derive(Default)]
struct Scratch {
    padded: Vec<f32>,
    rows: Vec<f32>,
}

/// `out[k] = f(a[k], b[k])` along `out`: a loop the compiler vectorises.
#[inline(always)]
fn zip2(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
    out.iter_mut()
        .zip(a.iter().zip(b))
        .for_each(|(d, (a, b))| *d = f(*a, *b));
}

/// `V = Bᵀ d B` for every 4×4 tile of one H × W plane (zero padded by 1):
/// tile `t` (row-major over the plane's tiles) of position ξ at
/// `v[ξ · stride + t]`. The padded rows are kept as their even and odd
/// columns apart, so that every step below runs along contiguous runs of
/// tiles (vectorised).
fn transform_input(plane: &[f32], s: &Sizes, scratch: &mut Scratch, v: &mut [f32], stride: usize) {
    let (ty_n, tx_n) = (s.tiles_y(), s.tiles_x());
    let (half, width) = (tx_n + 1, 2 * tx_n + 2);
    let Scratch { padded, rows: t } = scratch;
    padded.clear();
    padded.resize((2 * ty_n + 2) * width, 0.0);
    for (y, row) in plane.chunks_exact(s.w).enumerate() {
        // Input column x is padded column x + 1: odd x to the even half.
        let (even, odd) = padded[(y + 1) * width..][..width].split_at_mut(half);
        odd.iter_mut()
            .zip(row.iter().step_by(2))
            .for_each(|(d, v)| *d = *v);
        even[1..]
            .iter_mut()
            .zip(row.iter().skip(1).step_by(2))
            .for_each(|(d, v)| *d = *v);
    }
    t.resize(4 * width, 0.0);
    for ty in 0..ty_n {
        // Bᵀ d: four padded rows into four rows, both halves at once.
        let r = |i: usize| &padded[(2 * ty + i) * width..][..width];
        let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
        let (t0, rest) = t.split_at_mut(width);
        let (t1, rest) = rest.split_at_mut(width);
        let (t2, t3) = rest.split_at_mut(width);
        for x in 0..width {
            t0[x] = r0[x] - r2[x];
            t1[x] = r1[x] + r2[x];
            t2[x] = r2[x] - r1[x];
            t3[x] = r1[x] - r3[x];
        }
        // (Bᵀ d) B: tile tx reads padded columns 2tx..2tx + 3, i.e.
        // even[tx], odd[tx], even[tx + 1], odd[tx + 1].
        for (i, ti) in t.chunks_exact(width).enumerate() {
            let (e, o) = ti.split_at(half);
            let (e1, o1) = (&e[1..], &o[1..]);
            let out = |j: usize| (i * 4 + j) * stride + ty * tx_n;
            zip2(&mut v[out(0)..][..tx_n], e, e1, |a, b| a - b);
            zip2(&mut v[out(1)..][..tx_n], o, e1, |a, b| a + b);
            zip2(&mut v[out(2)..][..tx_n], e1, o, |a, b| a - b);
            zip2(&mut v[out(3)..][..tx_n], o, o1, |a, b| a - b);
        }
    }
}

/// `Z = A dy Aᵀ` for every 2×2 tile of one H × W output-gradient plane
/// (zero beyond an odd edge), laid out as [`transform_input`]'s `V`.
fn transform_output_grad(
    plane: &[f32],
    s: &Sizes,
    scratch: &mut Scratch,
    z: &mut [f32],
    stride: usize,
) {
    let (ty_n, tx_n) = (s.tiles_y(), s.tiles_x());
    let width = 2 * tx_n;
    let Scratch { padded, rows } = scratch;
    padded.clear();
    padded.resize(2 * ty_n * width, 0.0);
    for (y, row) in plane.chunks_exact(s.w).enumerate() {
        // Even columns, then odd ones.
        let (even, odd) = padded[y * width..][..width].split_at_mut(tx_n);
        even.iter_mut()
            .zip(row.iter().step_by(2))
            .for_each(|(d, v)| *d = *v);
        odd.iter_mut()
            .zip(row.iter().skip(1).step_by(2))
            .for_each(|(d, v)| *d = *v);
    }
    rows.resize(8 * tx_n, 0.0);
    for ty in 0..ty_n {
        let half = |y: usize, h: usize| &padded[(2 * ty + y) * width + h * tx_n..][..tx_n];
        let (g00, g01, g10, g11) = (half(0, 0), half(0, 1), half(1, 0), half(1, 1));
        // A dy: rows g0, g0 + g1, g0 − g1, −g1, each as its two columns
        // (`rows[(i · 2 + c) · tiles + tx]`).
        for tx in 0..tx_n {
            let r = [
                g00[tx],
                g01[tx],
                g00[tx] + g10[tx],
                g01[tx] + g11[tx],
                g00[tx] - g10[tx],
                g01[tx] - g11[tx],
                -g10[tx],
                -g11[tx],
            ];
            for (k, v) in r.into_iter().enumerate() {
                rows[k * tx_n + tx] = v;
            }
        }
        // (A dy) Aᵀ: columns a, a + b, a − b, −b.
        for i in 0..4 {
            let (a, b) = (
                &rows[2 * i * tx_n..][..tx_n],
                &rows[(2 * i + 1) * tx_n..][..tx_n],
            );
            let out = |j: usize| (i * 4 + j) * stride + ty * tx_n;
            zip2(&mut z[out(0)..][..tx_n], a, b, |a, _| a);
            zip2(&mut z[out(1)..][..tx_n], a, b, |a, b| a + b);
            zip2(&mut z[out(2)..][..tx_n], a, b, |a, b| a - b);
            zip2(&mut z[out(3)..][..tx_n], a, b, |_, b| -b);
        }
    }
}

/// `Y = Aᵀ M A` for every tile of one output plane: `m[ξ · stride + t]`
/// into `out` (H × W; an odd edge's extra row or column dropped).
fn transform_output(m: &[f32], stride: usize, s: &Sizes, rows: &mut Vec<f32>, out: &mut [f32]) {
    let (ty_n, tx_n) = (s.tiles_y(), s.tiles_x());
    rows.resize(10 * tx_n, 0.0);
    for ty in 0..ty_n {
        let at = |xi: usize| &m[xi * stride + ty * tx_n..][..tx_n];
        let (sums, even_odd) = rows.split_at_mut(8 * tx_n);
        // Aᵀ M: rows m0 + m1 + m2 and m1 − m2 − m3, for each column j
        // (`sums[(a · 4 + j) · tiles + tx]`).
        for j in 0..4 {
            let (m0, m1, m2, m3) = (at(j), at(4 + j), at(8 + j), at(12 + j));
            let (s0, s1) = sums.split_at_mut(4 * tx_n);
            let (s0, s1) = (&mut s0[j * tx_n..][..tx_n], &mut s1[j * tx_n..][..tx_n]);
            for tx in 0..tx_n {
                s0[tx] = m0[tx] + m1[tx] + m2[tx];
                s1[tx] = m1[tx] - m2[tx] - m3[tx];
            }
        }
        // (Aᵀ M) A: columns likewise, the even and odd output columns apart,
        // then interleaved into the row.
        for (a, sa) in sums.chunks_exact(4 * tx_n).enumerate() {
            let y = 2 * ty + a;
            if y >= s.h {
                break;
            }
            let sa = |j: usize| &sa[j * tx_n..][..tx_n];
            let (s0, s1, s2, s3) = (sa(0), sa(1), sa(2), sa(3));
            let (even, odd) = even_odd.split_at_mut(tx_n);
            for tx in 0..tx_n {
                even[tx] = s0[tx] + s1[tx] + s2[tx];
                odd[tx] = s1[tx] - s2[tx] - s3[tx];
            }
            let row = &mut out[y * s.w..][..s.w];
            let mut pairs = row.chunks_exact_mut(2);
            for (pair, (e, o)) in (&mut pairs).zip(even.iter().zip(odd.iter())) {
                (pair[0], pair[1]) = (*e, *o);
            }
            if let [last] = pairs.into_remainder() {
                *last = even[tx_n - 1];
            }
        }
    }
}

/// Over `v`'s chunks of `len` values, in parallel where `parallel`, each
/// thread with its own [`Scratch`].
fn chunks(
    v: &mut [f32],
    len: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [f32], &mut Scratch) + Sync,
) {
    if parallel {
        v.par_chunks_mut(len)
            .enumerate()
            .for_each_init(Scratch::default, |s, (i, c)| f(i, c, s));
    } else {
        let mut s = Scratch::default();
        v.chunks_mut(len)
            .enumerate()
            .for_each(|(i, c)| f(i, c, &mut s));
    }
}

/// A channel plane of image `k`: `planes(k, c)`, H × W values.
pub(super) type Planes<'a> = dyn Fn(usize, usize) -> &'a [f32] + Sync + 'a;

/// Every tile of channels `0..channels` of images `first..first + b`
/// transformed by `transform` into `out`, laid out channel × ξ × tile (a
/// channel's 16 rows contiguous, each of `tiles` values, image by image).
fn transform_all(
    planes: &Planes,
    (first, b, channels): (usize, usize, usize),
    s: &Sizes,
    out: &mut [f32],
    parallel: bool,
    transform: fn(&[f32], &Sizes, &mut Scratch, &mut [f32], usize),
) {
    let (tiles, per_image) = (b * s.tiles_per_image(), s.tiles_per_image());
    chunks(
        &mut out[..channels * 16 * tiles],
        16 * tiles,
        parallel,
        |c, out, scratch| {
            for k in 0..b {
                transform(
                    planes(first + k, c),
                    s,
                    scratch,
                    &mut out[k * per_image..],
                    tiles,
                );
            }
        },
    );
}

/// `dst[ξ] = lhs[ξ] · rhs[ξ]` (or `+=`, `accumulate`) for the 16 positions
/// ξ in parallel, each GEMM on one thread: `dst`, `lhs` and `rhs` are
/// read at `base + ξ · step` with the given (rows, columns) strides, for
/// each group `grp` at `+ grp · group` of each.
struct Sixteen<'a> {
    mnk: (usize, usize, usize),
    dst: (&'a mut [f32], [usize; 4]),
    lhs: (&'a [f32], [usize; 4]),
    rhs: (&'a [f32], [usize; 4]),
}

/// A pointer the 16 GEMMs share: each writes only its own position's
/// elements (disjoint for distinct ξ: [`Sixteen::run`] checks the layout).
#[derive(Clone, Copy)]
struct Shared(*mut f32);
// SAFETY: the writes through it from different threads never overlap.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// The element `offset` past the start (the caller keeps it in bounds).
    ///
    /// # Safety
    /// `offset` lies inside the slice the pointer came from.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: in bounds, by the caller's contract.
        unsafe { self.0.add(offset) }
    }
}

impl Sixteen<'_> {
    /// Strides `[step, group, rows, columns]` of each operand.
    fn run(self, groups: usize, accumulate: bool) {
        let (m, n, k) = self.mnk;
        let (dst, [d_step, d_group, d_rs, d_cs]) = self.dst;
        let (lhs, [l_step, l_group, l_rs, l_cs]) = self.lhs;
        let (rhs, [r_step, r_group, r_rs, r_cs]) = self.rhs;
        let last = |base: usize, rs: usize, cs: usize, rows: usize, cols: usize| {
            base + (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
        };
        if m == 0 || n == 0 || groups == 0 {
            return;
        }
        // Position ξ's output rows, each n long from `ξ · step`, must not
        // reach position ξ + 1's (so no two threads write one element), nor
        // a group's rows the next group's.
        assert!(
            d_cs == 1 && n <= d_step && 16 * d_step <= d_rs && (groups == 1 || m * d_rs <= d_group)
        );
        let (xi, g) = (15, groups - 1);
        assert!(m == 0 || n == 0 || last(xi * d_step + g * d_group, d_rs, d_cs, m, n) < dst.len());
        assert!(m == 0 || k == 0 || last(xi * l_step + g * l_group, l_rs, l_cs, m, k) < lhs.len());
        assert!(k == 0 || n == 0 || last(xi * r_step + g * r_group, r_rs, r_cs, k, n) < rhs.len());
        let out = Shared(dst.as_mut_ptr());
        (0..16).into_par_iter().for_each(|xi| {
            for grp in 0..groups {
                // SAFETY: every index lies inside its slice (the largest
                // base and extent checked above); position ξ's and group
                // grp's output elements are written by this call alone, and
                // `dst` (a `&mut`) aliases neither `lhs` nor `rhs`.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        out.at(xi * d_step + grp * d_group),
                        d_cs as isize,
                        d_rs as isize,
                        accumulate,
                        lhs.as_ptr().add(xi * l_step + grp * l_group),
                        l_cs as isize,
                        l_rs as isize,
                        rhs.as_ptr().add(xi * r_step + grp * r_group),
                        r_cs as isize,
                        r_rs as isize,
                        if accumulate { 1.0 } else { 0.0 },
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            }
        });
    }
}

/// The convolution of `s.n` images, input planes `input` (`s.cin` channels),
/// with transformed kernels `u` (from [`kernels`]: `s.cout` × `s.cin /
/// s.groups`). Each output plane (H × W), once computed, is handed to
/// `finish(channel, plane, &mut outs[image · s.cout + channel])`. Tasks of
/// images run one after another, each phase of a task over the threads:
/// the transforms by channel or plane, the 16 independent GEMMs one per
/// thread (so at most 16 threads are busy in that phase).
pub(super) fn conv<O: Send>(
    s: &Sizes,
    input: &Planes,
    u: &[f32],
    outs: &mut [O],
    finish: &(dyn Fn(usize, &mut [f32], &mut O) + Sync),
) {
    #[cfg(test)]
    CALLS.with(|c| c.set(c.get() + 1));
    let per = s.images_per_task();
    let (cg, coutg) = (s.cin / s.groups, s.cout / s.groups);
    for (t, outs) in outs.chunks_mut(per * s.cout).enumerate() {
        let (first, b) = (t * per, outs.len() / s.cout);
        let tiles = b * s.tiles_per_image();
        let row = 16 * tiles;
        super::flex::with_scratch(16 * s.cin * tiles, 16 * s.cout * tiles, |v, m| {
            transform_all(input, (first, b, s.cin), s, v, true, transform_input);
            Sixteen {
                mnk: (coutg, tiles, cg),
                dst: (m, [tiles, coutg * row, row, 1]),
                lhs: (u, [cg, coutg * 16 * cg, 16 * cg, 1]),
                rhs: (v, [tiles, cg * row, row, 1]),
            }
            .run(s.groups, false);
            let m = &*m;
            outs.par_iter_mut()
                .enumerate()
                .for_each_init(Scratch::default, |scratch, (q, out)| {
                    let (k, c) = (q / s.cout, q % s.cout);
                    let Scratch {
                        padded: plane,
                        rows,
                    } = scratch;
                    plane.resize(s.plane(), 0.0);
                    transform_output(
                        &m[c * row + k * s.tiles_per_image()..],
                        tiles,
                        s,
                        rows,
                        plane,
                    );
                    finish(c, plane, out);
                });
        });
    }
}

/// The weight gradient `[cout][cin / groups][3][3]` of the convolution of
/// `x` (`s.cin` channels) whose output gradient is `dy` (`s.cout`). Tasks
/// of images one after another, each adding its part to `dU` in turn (so
/// the sums run in the same order whatever the thread count).
pub(super) fn weight_grad(s: &Sizes, x: &Planes, dy: &Planes) -> Vec<f32> {
    #[cfg(test)]
    CALLS.with(|c| c.set(c.get() + 1));
    let per = s.images_per_task();
    let (cg, coutg) = (s.cin / s.groups, s.cout / s.groups);
    let mut du = vec![0.0f32; 16 * s.cout * cg];
    for (t, first) in (0..s.n).step_by(per).enumerate() {
        let b = per.min(s.n - first);
        let tiles = b * s.tiles_per_image();
        let row = 16 * tiles;
        super::flex::with_scratch(16 * s.cin * tiles, 16 * s.cout * tiles, |v, z| {
            transform_all(x, (first, b, s.cin), s, v, true, transform_input);
            transform_all(dy, (first, b, s.cout), s, z, true, transform_output_grad);
            // The first task overwrites: reading the fresh (not yet mapped)
            // zeroed pages before writing them costs copy-on-write faults.
            Sixteen {
                mnk: (coutg, cg, tiles),
                dst: (&mut du, [cg, coutg * 16 * cg, 16 * cg, 1]),
                lhs: (z, [tiles, coutg * row, row, 1]),
                rhs: (v, [tiles, cg * row, 1, row]),
            }
            .run(s.groups, t > 0);
        });
    }
    untransform_kernels(&du, s.cout, cg)
}

/// The input gradient `[n][cin][h][w]` of the convolution with weights `w`
/// (`[cout][cin / groups][3][3]`) whose output gradient is `dy`: the same
/// convolution of dY, its kernel flipped and its channels swapped.
pub(super) fn input_grad(s: &Sizes, w: &[f32], dy: &Planes) -> Vec<f32> {
    let (cg, coutg) = (s.cin / s.groups, s.cout / s.groups);
    let u = kernels(s.cin, coutg, |i, o, j| {
        let o = (i / cg) * coutg + o;
        w[(o * cg + i % cg) * 9 + 8 - j]
    });
    let swapped = Sizes {
        cin: s.cout,
        cout: s.cin,
        ..*s
    };
    let mut dx = vec![0.0f32; s.n * s.cin * s.plane()];
    let mut outs: Vec<&mut [f32]> = dx.chunks_mut(s.plane()).collect();
    conv(&swapped, dy, &u, &mut outs, &|_, plane, dx| {
        dx.copy_from_slice(plane)
    });
    dx
}
