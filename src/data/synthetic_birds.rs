//! `synthetic-birds`: 200 bird classes that differ only in fine local detail
//! — beak (length × colour), crown colour, wing bars and eye ring — drawn at
//! varying position, scale, facing and tilt in clutter, with a body colour
//! that varies within every class (so the body says nothing about the class).
//! Written in CUB-200-2011's layout with `bounding_boxes.txt` and
//! `parts/part_locs.txt`. Image `i` depends only on `(seed, i)`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::draw::{Canvas, Frame, Paint, Shape};

/// How many classes the design space holds (5 beaks × 4 crowns × 5 wing
/// patterns × 2 eye rings), like CUB-200's 200 species.
pub const CLASSES: usize = 200;

/// Beaks: name, long, colour.
const BEAKS: [(&str, bool, [f32; 3]); 5] = [
    ("ShortYellowBeak", false, [0.95, 0.8, 0.1]),
    ("LongYellowBeak", true, [0.95, 0.8, 0.1]),
    ("ShortBlackBeak", false, [0.08, 0.08, 0.08]),
    ("LongBlackBeak", true, [0.08, 0.08, 0.08]),
    ("ShortOrangeBeak", false, [0.95, 0.45, 0.1]),
];
const CROWNS: [(&str, Option<[f32; 3]>); 4] = [
    ("PlainCrown", None),
    ("RedCrown", Some([0.85, 0.1, 0.1])),
    ("BlueCrown", Some([0.15, 0.3, 0.9])),
    ("BlackCrown", Some([0.05, 0.05, 0.05])),
];
const BARS: [(&str, usize, [f32; 3]); 5] = [
    ("NoBars", 0, [0.0; 3]),
    ("OneWhiteBar", 1, [0.97; 3]),
    ("TwoWhiteBars", 2, [0.97; 3]),
    ("OneYellowBar", 1, [0.95, 0.9, 0.2]),
    ("TwoYellowBars", 2, [0.95, 0.9, 0.2]),
];
const RINGS: [&str; 2] = ["NoEyeRing", "EyeRing"];
/// Body colours, drawn per image.
const BODIES: [[f32; 3]; 6] = [
    [0.45, 0.33, 0.22],
    [0.55, 0.55, 0.55],
    [0.42, 0.45, 0.25],
    [0.72, 0.62, 0.45],
    [0.3, 0.35, 0.45],
    [0.6, 0.4, 0.3],
];

/// The generator versions. Each is frozen: a version's images never change,
/// so cached data sets and the results trained on them keep their meaning.
pub const VERSIONS: [u32; 2] = [1, 2];

/// The sizes that tell classes apart, in local units (body half-length = 1).
/// Version 1 drew short beaks 3–6 px long and 3 px wide at 64 px, below
/// what a net can read; version 2 draws birds a little larger and every
/// class-telling feature at least 3 px across at 64 px, checked by
/// [`legibility`].
#[derive(Clone, Copy)]
struct Geometry {
    /// Local unit in image sizes.
    scale: (f32, f32),
    /// Range of the centre in image sizes, and how far (local units) the
    /// body sits behind it, so a long beak stays in the frame.
    centre: (f32, f32),
    behind: f32,
    beak_short: f32,
    beak_long: f32,
    /// Half-width of the beak's base: short, long.
    beak_hw: (f32, f32),
    /// Crown ellipse: centre v, half-axes.
    crown_cv: f32,
    crown_a: f32,
    crown_b: f32,
    ring_r: f32,
    bar_hh: f32,
    /// Top of the bird's box (the crown may rise above the head).
    top: f32,
}

impl Geometry {
    fn of(version: u32) -> Self {
        match version {
            1 => Geometry {
                scale: (0.15, 0.3),
                centre: (0.3, 0.7),
                behind: 0.0,
                beak_short: 0.3,
                beak_long: 0.6,
                beak_hw: (0.15, 0.15),
                crown_cv: -0.84,
                crown_a: 0.32,
                crown_b: 0.17,
                ring_r: 0.16,
                bar_hh: 0.06,
                top: -0.95,
            },
            _ => Geometry {
                scale: (0.2, 0.26),
                centre: (0.38, 0.62),
                behind: 0.36,
                beak_short: 0.5,
                beak_long: 1.0,
                beak_hw: (0.28, 0.36),
                crown_cv: -0.86,
                crown_a: 0.38,
                crown_b: 0.24,
                ring_r: 0.22,
                bar_hh: 0.09,
                top: -1.1,
            },
        }
    }
}

/// The class's local features: indices into BEAKS, CROWNS, BARS, RINGS.
fn features(class: usize) -> (usize, usize, usize, usize) {
    (
        class % 5,
        (class / 5) % 4,
        (class / 20) % 5,
        (class / 100) % 2,
    )
}

/// `NNN.Name` as in CUB's `classes.txt`.
pub fn class_name(class: usize) -> String {
    let (b, c, w, r) = features(class);
    format!(
        "{:03}.{}_{}_{}_{}",
        class + 1,
        BEAKS[b].0,
        CROWNS[c].0,
        BARS[w].0,
        RINGS[r]
    )
}

/// One generated image and its annotations (image coordinates).
pub struct Bird {
    pub rgb: Vec<u8>,
    /// `x, y, width, height` of the bird.
    pub bbox: [f32; 4],
    /// Visible parts: `(CUB part index, x, y)`.
    pub parts: Vec<(usize, f32, f32)>,
}

/// Draw image `index` of class `class` at `size` × `size` by generator
/// `version`. The random draws do not depend on the class, so two classes
/// at the same `(seed, index)` differ only in their features.
pub fn generate(seed: u64, index: u64, class: usize, size: usize, version: u32) -> Bird {
    let g = Geometry::of(version);
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xB1D5);
    let s = size as f32;
    let (beak, crown, bars, ring) = features(class);
    // Facing left or right (u is mirrored), tilted a little; the bird spans
    // about 3 local units, i.e. 45–90% of the frame.
    let facing: f32 = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    let scale = s * rng.random_range(g.scale.0..g.scale.1);
    let frame = Frame {
        cx: s * rng.random_range(g.centre.0..g.centre.1) - facing * g.behind * scale,
        cy: s * rng.random_range(0.35..0.65),
        scale,
        angle: rng.random_range(-0.3f32..0.3),
    };
    let u = |x: f32| facing * x;
    let rand_color = |rng: &mut ChaCha8Rng| {
        [
            rng.random::<f32>(),
            rng.random::<f32>(),
            rng.random::<f32>(),
        ]
    };

    // Background: sky/foliage tone and clutter, some of it bird-coloured.
    let mut c = Canvas::new(size, size, rand_color(&mut rng).map(|x| 0.25 + 0.5 * x));
    for _ in 0..rng.random_range(4..10) {
        let (x, y) = (rng.random::<f32>() * s, rng.random::<f32>() * s);
        let (w, h) = (
            rng.random_range(0.04..0.35) * s,
            rng.random_range(0.04..0.35) * s,
        );
        let color = if rng.random_bool(0.3) {
            BODIES[rng.random_range(0..BODIES.len())]
        } else {
            rand_color(&mut rng)
        };
        let f = Frame {
            cx: x,
            cy: y,
            scale: 1.0,
            angle: rng.random_range(0.0f32..3.14),
        };
        if rng.random_bool(0.5) {
            c.fill(
                &f,
                Shape::Rect {
                    cx: 0.0,
                    cy: 0.0,
                    hw: w / 2.0,
                    hh: h / 8.0,
                },
                Paint::Solid(color),
                1.0,
            );
        } else {
            c.fill(
                &f,
                Shape::Ellipse {
                    cx: 0.0,
                    cy: 0.0,
                    a: w / 2.0,
                    b: h / 2.0,
                },
                Paint::Solid(color),
                1.0,
            );
        }
    }
    c.blur(1);

    let body = BODIES[rng.random_range(0..BODIES.len())];
    let dark = |c: [f32; 3], k: f32| c.map(|x| x * k);
    // Tail and beak are triangles: Shape::Triangle points up, so draw them in
    // frames turned by ±90° about their base.
    let turned = |bu: f32, bv: f32, toward: f32| {
        let (x, y) = frame.to_image(u(bu), bv);
        Frame {
            cx: x,
            cy: y,
            scale,
            angle: frame.angle + toward * facing * std::f32::consts::FRAC_PI_2,
        }
    };
    c.fill(
        &turned(-0.95, -0.05, -1.0),
        Shape::Triangle {
            cx: 0.0,
            cy: -0.25,
            hw: 0.22,
            h: 0.5,
        },
        Paint::Solid(dark(body, 0.8)),
        1.0,
    );
    for leg in [0.1f32, -0.15] {
        c.fill(
            &frame,
            Shape::Rect {
                cx: u(leg),
                cy: 0.72,
                hw: 0.03,
                hh: 0.16,
            },
            Paint::Solid([0.35, 0.25, 0.15]),
            1.0,
        );
    }
    c.fill(
        &frame,
        Shape::Ellipse {
            cx: 0.0,
            cy: 0.0,
            a: 1.0,
            b: 0.6,
        },
        Paint::Solid(body),
        1.0,
    );
    c.fill(
        &frame,
        Shape::Ellipse {
            cx: u(0.3),
            cy: 0.22,
            a: 0.5,
            b: 0.3,
        },
        Paint::Solid(body.map(|x| 0.5 + 0.5 * x)),
        1.0,
    );
    // Wing with its bars.
    c.fill(
        &frame,
        Shape::Ellipse {
            cx: u(-0.15),
            cy: -0.05,
            a: 0.62,
            b: 0.3,
        },
        Paint::Solid(dark(body, 0.7)),
        1.0,
    );
    let (_, n_bars, bar_color) = BARS[bars];
    for k in 0..n_bars {
        c.fill(
            &frame,
            Shape::Rect {
                cx: u(-0.15),
                cy: -0.1 + 0.17 * k as f32,
                hw: 0.45,
                hh: g.bar_hh,
            },
            Paint::Solid(bar_color),
            1.0,
        );
    }
    // Head, crown, eye (with ring), beak.
    c.fill(
        &frame,
        Shape::Ellipse {
            cx: u(0.85),
            cy: -0.55,
            a: 0.38,
            b: 0.36,
        },
        Paint::Solid(body),
        1.0,
    );
    if let Some(color) = CROWNS[crown].1 {
        c.fill(
            &frame,
            Shape::Ellipse {
                cx: u(0.82),
                cy: g.crown_cv,
                a: g.crown_a,
                b: g.crown_b,
            },
            Paint::Solid(color),
            1.0,
        );
    }
    if ring == 1 {
        c.fill(
            &frame,
            Shape::Ellipse {
                cx: u(0.98),
                cy: -0.6,
                a: g.ring_r,
                b: g.ring_r,
            },
            Paint::Solid([0.98; 3]),
            1.0,
        );
    }
    c.fill(
        &frame,
        Shape::Ellipse {
            cx: u(0.98),
            cy: -0.6,
            a: 0.07,
            b: 0.07,
        },
        Paint::Solid([0.03; 3]),
        1.0,
    );
    let (_, long, beak_color) = BEAKS[beak];
    let beak_len = if long { g.beak_long } else { g.beak_short };
    c.fill(
        &turned(1.18, -0.52, 1.0),
        Shape::Triangle {
            cx: 0.0,
            cy: -beak_len / 2.0,
            hw: if long { g.beak_hw.1 } else { g.beak_hw.0 },
            h: beak_len,
        },
        Paint::Solid(beak_color),
        1.0,
    );
    // A branch in front of some birds.
    if rng.random_bool(0.2) {
        let f = Frame {
            cx: s * rng.random::<f32>(),
            cy: s * rng.random::<f32>(),
            scale: 1.0,
            angle: rng.random_range(0.0f32..3.14),
        };
        c.fill(
            &f,
            Shape::Rect {
                cx: 0.0,
                cy: 0.0,
                hw: s,
                hh: s * 0.025,
            },
            Paint::Solid([0.3, 0.22, 0.12]),
            1.0,
        );
    }

    let b = frame.image_box(if facing > 0.0 {
        [-1.45, g.top, 1.18 + beak_len, 0.9]
    } else {
        [-1.18 - beak_len, g.top, 1.45, 0.9]
    });
    let b = [b[0].max(0.0), b[1].max(0.0), b[2].min(s), b[3].min(s)];
    // CUB's 15 parts; the eye, wing and leg on the far side are not visible.
    let near = |left: usize, right: usize| if facing > 0.0 { left } else { right };
    let local: [(usize, f32, f32); 12] = [
        (0, -0.2, -0.45),
        (1, 1.18 + beak_len / 2.0, -0.52),
        (2, 0.0, 0.45),
        (3, 0.55, 0.2),
        (4, 0.82, -0.85),
        (5, 1.05, -0.75),
        (near(6, 10), 0.98, -0.6),
        (near(7, 11), 0.1, 0.8),
        (near(8, 12), -0.15, -0.05),
        (9, 0.55, -0.7),
        (13, -1.2, -0.1),
        (14, 0.9, -0.25),
    ];
    let parts = local
        .iter()
        .map(|&(p, lu, lv)| {
            let (x, y) = frame.to_image(u(lu), lv);
            (p, x, y)
        })
        .filter(|&(_, x, y)| (0.0..s).contains(&x) && (0.0..s).contains(&y))
        .collect();
    Bird {
        rgb: c.to_rgb8(),
        bbox: [b[0], b[1], b[2] - b[0], b[3] - b[1]],
        parts,
    }
}

/// The class-telling features: name, and the class index step and count
/// of its values (see [`features`]).
pub const FEATURES: [(&str, usize, usize); 4] = [
    ("beak", 1, 5),
    ("crown", 5, 4),
    ("wing bars", 20, 5),
    ("eye ring", 100, 2),
];

/// For each feature in [`FEATURES`]: over `n` birds and every pair of its
/// values (the other features and the whole scene fixed), the smallest
/// fraction of birds in which switching the value changes some 3×3 block by
/// at least [`super::synthetic_faces::MIN_CHANGE`] — a difference a net can read.
pub fn legibility(version: u32, size: usize, seed: u64, n: u64) -> Vec<f64> {
    use rayon::prelude::*;
    FEATURES
        .iter()
        .map(|&(_, step, values)| {
            let mut worst = 1.0f64;
            for a in 0..values {
                for b in a + 1..values {
                    let seen = (0..n)
                        .into_par_iter()
                        .filter(|&i| {
                            let x = generate(seed, i, a * step, size, version).rgb;
                            let y = generate(seed, i, b * step, size, version).rgb;
                            super::synthetic_faces::has_changed_block(&x, &y, size)
                        })
                        .count();
                    worst = worst.min(seen as f64 / n as f64);
                }
            }
            worst
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_distinct_and_images_deterministic() {
        let names: std::collections::BTreeSet<String> = (0..CLASSES).map(class_name).collect();
        assert_eq!(names.len(), CLASSES);
        assert_eq!(
            class_name(0),
            "001.ShortYellowBeak_PlainCrown_NoBars_NoEyeRing"
        );
        let a = generate(3, 17, 42, 64, 1);
        assert_eq!(a.rgb, generate(3, 17, 42, 64, 1).rgb);
        assert_ne!(a.rgb, generate(3, 18, 42, 64, 1).rgb);
        let [x, y, w, h] = a.bbox;
        assert!(
            x >= 0.0 && y >= 0.0 && x + w <= 64.0 && y + h <= 64.0 && w > 10.0 && h > 8.0,
            "{:?}",
            a.bbox
        );
        // The beak (part 2 in CUB's 1-based ids) lies inside the bird's box.
        let &(_, bx, by) = a.parts.iter().find(|p| p.0 == 1).expect("beak visible");
        assert!(bx >= x - 1.0 && bx <= x + w + 1.0 && by >= y - 1.0 && by <= y + h + 1.0);
    }

    #[test]
    fn only_the_local_detail_differs_between_classes() {
        // Same seed and index, two classes that differ only in the crown:
        // the images differ, and only near the crown.
        let (a, b) = (generate(1, 5, 0, 96, 1), generate(1, 5, 5, 96, 1));
        let diff: Vec<usize> = (0..96 * 96)
            .filter(|&p| a.rgb[3 * p..3 * p + 3] != b.rgb[3 * p..3 * p + 3])
            .collect();
        assert!(!diff.is_empty());
        let &(_, cx, cy) = a.parts.iter().find(|p| p.0 == 4).expect("crown visible");
        let far = diff
            .iter()
            .filter(|&&p| ((p % 96) as f32 - cx).hypot((p / 96) as f32 - cy) > 0.25 * 96.0)
            .count();
        assert_eq!(far, 0, "pixels far from the crown changed");
    }

    #[test]
    fn version_1_images_are_frozen() {
        let mut all = Vec::new();
        for i in 0..6 {
            let bird = generate(1, i, (i as usize * 7) % 20, 128, 1);
            all.extend(bird.rgb);
            all.extend(bird.bbox.iter().flat_map(|v| v.to_le_bytes()));
            for (p, x, y) in bird.parts {
                all.extend((p as u32).to_le_bytes());
                all.extend(x.to_le_bytes());
                all.extend(y.to_le_bytes());
            }
        }
        assert_eq!(crate::digest::sha256_hex(&all), V1_DIGEST);
    }

    const V1_DIGEST: &str = "3469e6f463807196e0a051fa6c12be26166ff29edc76a827ac300acc0316884d";

    #[test]
    fn version_2_at_64_px_shows_every_feature_at_3x3_px() {
        let seen = legibility(2, 64, 11, 100);
        for ((name, ..), s) in FEATURES.iter().zip(&seen) {
            assert!(
                *s >= 0.9,
                "{name}: a 3×3 px change in only {:.0}% of birds",
                s * 100.0
            );
        }
    }

    #[test]
    fn version_1_at_64_px_hides_beak_length_below_3x3_px() {
        let beak = legibility(1, 64, 11, 100)[0];
        assert!(beak < 0.5, "{beak}");
    }

    #[test]
    fn version_2_images_are_frozen() {
        let mut all = Vec::new();
        for i in 0..6 {
            let bird = generate(1, i, (i as usize * 7) % 20, 128, 2);
            all.extend(bird.rgb);
            all.extend(bird.bbox.iter().flat_map(|v| v.to_le_bytes()));
        }
        assert_eq!(crate::digest::sha256_hex(&all), V2_DIGEST);
    }

    const V2_DIGEST: &str = "c9f57becc4775849e7dead002e716382b0bb04c9d2fd990ba3435f21aade6259";
}
