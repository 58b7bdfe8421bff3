//! A tiny anti-aliased rasteriser: shapes given as signed distances in a
//! local (face) frame, painted through an affine map onto an RGB canvas.

/// An RGB canvas, row-major, values in 0..=1.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<[f32; 3]>,
}

/// Local frame → image: p = origin + scale · R(angle) · (u, v).
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub cx: f32,
    pub cy: f32,
    pub scale: f32,
    pub angle: f32,
}

impl Frame {
    pub fn to_image(&self, u: f32, v: f32) -> (f32, f32) {
        let (s, c) = self.angle.sin_cos();
        (
            self.cx + self.scale * (c * u - s * v),
            self.cy + self.scale * (s * u + c * v),
        )
    }
    fn to_local(&self, x: f32, y: f32) -> (f32, f32) {
        let (s, c) = self.angle.sin_cos();
        let (dx, dy) = ((x - self.cx) / self.scale, (y - self.cy) / self.scale);
        (c * dx + s * dy, -s * dx + c * dy)
    }
    /// Axis-aligned image box of a local box `[u0, v0, u1, v1]`.
    pub fn image_box(&self, b: [f32; 4]) -> [f32; 4] {
        let corners = [(b[0], b[1]), (b[2], b[1]), (b[0], b[3]), (b[2], b[3])]
            .map(|(u, v)| self.to_image(u, v));
        let xs = corners.map(|c| c.0);
        let ys = corners.map(|c| c.1);
        let min = |a: [f32; 4]| a.into_iter().fold(f32::INFINITY, f32::min);
        let max = |a: [f32; 4]| a.into_iter().fold(f32::NEG_INFINITY, f32::max);
        [min(xs), min(ys), max(xs), max(ys)]
    }
}

/// Shapes in local units, with a signed distance (negative inside).
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    Ellipse {
        cx: f32,
        cy: f32,
        a: f32,
        b: f32,
    },
    Rect {
        cx: f32,
        cy: f32,
        hw: f32,
        hh: f32,
    },
    /// The outline of an ellipse, `t` thick.
    Ring {
        cx: f32,
        cy: f32,
        a: f32,
        b: f32,
        t: f32,
    },
    /// A parabola-shaped stroke: v = cy + bend · (1 − ((u−cx)/hw)²), `t` thick.
    Arc {
        cx: f32,
        cy: f32,
        hw: f32,
        bend: f32,
        t: f32,
    },
    /// A triangle pointing up (apex at cy − h/2).
    Triangle {
        cx: f32,
        cy: f32,
        hw: f32,
        h: f32,
    },
}

impl Shape {
    fn sdf(&self, u: f32, v: f32) -> f32 {
        match *self {
            Shape::Ellipse { cx, cy, a, b } => {
                let (x, y) = ((u - cx) / a, (v - cy) / b);
                ((x * x + y * y).sqrt() - 1.0) * a.min(b)
            }
            Shape::Rect { cx, cy, hw, hh } => {
                let (dx, dy) = ((u - cx).abs() - hw, (v - cy).abs() - hh);
                dx.max(dy).min(0.0) + (dx.max(0.0).powi(2) + dy.max(0.0).powi(2)).sqrt()
            }
            Shape::Ring { cx, cy, a, b, t } => {
                Shape::Ellipse { cx, cy, a, b }.sdf(u, v).abs() - t / 2.0
            }
            Shape::Arc {
                cx,
                cy,
                hw,
                bend,
                t,
            } => {
                let x = (u - cx) / hw;
                if x.abs() > 1.0 {
                    return (x.abs() - 1.0) * hw;
                }
                (v - (cy + bend * (1.0 - x * x))).abs() - t / 2.0
            }
            Shape::Triangle { cx, cy, hw, h } => {
                let top = cy - h / 2.0;
                let t = ((v - top) / h).clamp(0.0, 1.0);
                let half = hw * t;
                let dx = (u - cx).abs() - half;
                let dy = (v - cy).abs() - h / 2.0;
                dx.max(dy)
            }
        }
    }

    /// A local box that contains the shape.
    fn bounds(&self) -> [f32; 4] {
        match *self {
            Shape::Ellipse { cx, cy, a, b } => [cx - a, cy - b, cx + a, cy + b],
            Shape::Rect { cx, cy, hw, hh } => [cx - hw, cy - hh, cx + hw, cy + hh],
            Shape::Ring { cx, cy, a, b, t } => [cx - a - t, cy - b - t, cx + a + t, cy + b + t],
            Shape::Arc {
                cx,
                cy,
                hw,
                bend,
                t,
            } => {
                let (lo, hi) = (cy.min(cy + bend), cy.max(cy + bend));
                [cx - hw - t, lo - t, cx + hw + t, hi + t]
            }
            Shape::Triangle { cx, cy, hw, h } => [cx - hw, cy - h / 2.0, cx + hw, cy + h / 2.0],
        }
    }
}

/// How a shape is filled.
#[derive(Debug, Clone, Copy)]
pub enum Paint {
    Solid([f32; 3]),
    /// Alternating bands across u: straight or wavy hair.
    Stripes {
        a: [f32; 3],
        b: [f32; 3],
        period: f32,
        wavy: bool,
    },
    /// Sparse dark dots over the base colour, `density` in 0..1 (stubble).
    Speckle {
        color: [f32; 3],
        density: f32,
        seed: u32,
    },
}

impl Canvas {
    pub fn new(width: usize, height: usize, fill: [f32; 3]) -> Self {
        Canvas {
            width,
            height,
            rgb: vec![fill; width * height],
        }
    }

    /// Paint `shape` (local units) through `frame` with `alpha`.
    pub fn fill(&mut self, frame: &Frame, shape: Shape, paint: Paint, alpha: f32) {
        let b = frame.image_box(shape.bounds());
        let x0 = (b[0].floor() as isize - 1).max(0) as usize;
        let y0 = (b[1].floor() as isize - 1).max(0) as usize;
        let x1 = ((b[2].ceil() as isize + 1).max(0) as usize).min(self.width);
        let y1 = ((b[3].ceil() as isize + 1).max(0) as usize).min(self.height);
        let px = 1.0 / frame.scale; // one pixel in local units
        for y in y0..y1 {
            for x in x0..x1 {
                let (u, v) = frame.to_local(x as f32 + 0.5, y as f32 + 0.5);
                let d = shape.sdf(u, v);
                let cover = (0.5 - d / px).clamp(0.0, 1.0) * alpha;
                if cover <= 0.0 {
                    continue;
                }
                let i = y * self.width + x;
                let color = match paint {
                    Paint::Solid(c) => c,
                    Paint::Stripes { a, b, period, wavy } => {
                        let w = if wavy {
                            (v * 12.0).sin() * period * 0.35
                        } else {
                            0.0
                        };
                        if ((u + w) / period).rem_euclid(2.0) < 1.0 {
                            a
                        } else {
                            b
                        }
                    }
                    Paint::Speckle {
                        color,
                        density,
                        seed,
                    } => {
                        if hash(x as u32, y as u32, seed) < density {
                            color
                        } else {
                            continue;
                        }
                    }
                };
                let dst = &mut self.rgb[i];
                for k in 0..3 {
                    dst[k] += (color[k] - dst[k]) * cover;
                }
            }
        }
    }

    /// Paint an axis-aligned image-space rectangle (clutter, occluders).
    pub fn rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, color: [f32; 3]) {
        let id = Frame {
            cx: 0.0,
            cy: 0.0,
            scale: 1.0,
            angle: 0.0,
        };
        let shape = Shape::Rect {
            cx: (x0 + x1) / 2.0,
            cy: (y0 + y1) / 2.0,
            hw: (x1 - x0) / 2.0,
            hh: (y1 - y0) / 2.0,
        };
        self.fill(&id, shape, Paint::Solid(color), 1.0);
    }

    /// Separable 3-tap box blur, `passes` times.
    pub fn blur(&mut self, passes: usize) {
        let (w, h) = (self.width, self.height);
        for _ in 0..passes {
            let src = self.rgb.clone();
            for y in 0..h {
                for x in 0..w {
                    let mut acc = [0.0f32; 3];
                    let mut n = 0.0;
                    for dy in -1i32..=1 {
                        for dx in -1i32..=1 {
                            let (xx, yy) = (x as i32 + dx, y as i32 + dy);
                            if xx >= 0 && yy >= 0 && (xx as usize) < w && (yy as usize) < h {
                                let p = src[yy as usize * w + xx as usize];
                                for k in 0..3 {
                                    acc[k] += p[k];
                                }
                                n += 1.0;
                            }
                        }
                    }
                    self.rgb[y * w + x] = acc.map(|a| a / n);
                }
            }
        }
    }

    pub fn to_rgb8(&self) -> Vec<u8> {
        self.rgb
            .iter()
            .flat_map(|p| p.map(|c| (c.clamp(0.0, 1.0) * 255.0 + 0.5) as u8))
            .collect()
    }
}

/// A stateless hash in 0..1 for per-pixel texture.
fn hash(x: u32, y: u32, seed: u32) -> f32 {
    let mut h =
        x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77) ^ seed.wrapping_mul(0xC2B2_AE3D);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    (h & 0xFFFF) as f32 / 65536.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipse_covers_its_centre_and_not_far_away() {
        let mut c = Canvas::new(32, 32, [0.0; 3]);
        let f = Frame {
            cx: 16.0,
            cy: 16.0,
            scale: 8.0,
            angle: 0.3,
        };
        c.fill(
            &f,
            Shape::Ellipse {
                cx: 0.0,
                cy: 0.0,
                a: 1.0,
                b: 0.5,
            },
            Paint::Solid([1.0; 3]),
            1.0,
        );
        assert!(c.rgb[16 * 32 + 16][0] > 0.99);
        assert_eq!(c.rgb[0][0], 0.0);
        assert_eq!(c.rgb[31 * 32 + 31][0], 0.0);
    }
}
