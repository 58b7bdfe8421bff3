//! `synthetic-faces`: unaligned face-like images whose 40 CelebA-named
//! attributes each live in a known region, written in CelebA's on-disk
//! layout. Deterministic by seed: image `i` depends only on `(seed, i)`, so
//! generation is parallel and thread-count independent.
//!
//! Rough outline of one image:
//! 1. sample attributes with CelebA-like prevalence, correlations and
//!    exclusions ([`sample_attributes`]);
//! 2. sample a pose (centre, scale, in-plane rotation) and clutter;
//! 3. draw background clutter, neck, hair, face, features, accessories, an
//!    occluder on some faces, blur on `Blurry` ones;
//! 4. record the face box, five landmarks and the box of every present
//!    attribute's region.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::draw::{Canvas, Frame, Paint, Shape};
use crate::attributes::{Region, region};

/// One generated image and its annotations (image coordinates).
pub struct Face {
    pub rgb: Vec<u8>,
    pub size: usize,
    pub labels: [bool; 40],
    /// `x, y, width, height` of the face.
    pub bbox: [f32; 4],
    /// Left eye, right eye, nose, left mouth corner, right mouth corner.
    pub landmarks: [(f32, f32); 5],
    /// `x0, y0, x1, y1` of each attribute's region (present or not).
    pub regions: [[f32; 4]; 40],
}

fn idx(name: &str) -> usize {
    crate::attributes::index_of(name).expect("known attribute")
}

/// Attributes with CelebA-like prevalence and the dependencies the data
/// issue lists: exclusive hair colours, beard vs No_Beard, make-up ↔
/// lipstick, smiling ↔ cheekbones ↔ open mouth, male vs make-up, chubby ↔
/// double chin.
pub fn sample_attributes(rng: &mut impl Rng) -> [bool; 40] {
    let mut a = [false; 40];
    let mut set = |name: &str, v: bool| a[idx(name)] = v;
    let p = |rng: &mut dyn rand::RngCore, x: f64| rng.random_bool(x.clamp(0.0, 1.0));
    let male = p(rng, 0.42);
    let young = p(rng, 0.77);
    set("Male", male);
    set("Young", young);
    let bald = male && p(rng, if young { 0.02 } else { 0.12 });
    set("Bald", bald);
    if !bald {
        let r: f64 = rng.random();
        let gray = if young { 0.01 } else { 0.16 };
        let blond = if male { 0.04 } else { 0.24 };
        let (black, brown) = (0.25, 0.21);
        let colour = if r < gray {
            "Gray_Hair"
        } else if r < gray + blond {
            "Blond_Hair"
        } else if r < gray + blond + black {
            "Black_Hair"
        } else if r < gray + blond + black + brown {
            "Brown_Hair"
        } else {
            ""
        };
        if !colour.is_empty() {
            set(colour, true);
        }
        let r: f64 = rng.random();
        let wavy = if male { 0.15 } else { 0.45 };
        if r < wavy {
            set("Wavy_Hair", true);
        } else if r < wavy + 0.22 {
            set("Straight_Hair", true);
        }
        let receding = p(rng, if male && !young { 0.25 } else { 0.04 });
        set("Receding_Hairline", receding);
        set("Bangs", !receding && p(rng, 0.16));
    }
    let makeup = !male && p(rng, 0.65);
    set("Heavy_Makeup", makeup);
    set(
        "Wearing_Lipstick",
        if makeup {
            p(rng, 0.95)
        } else {
            p(rng, if male { 0.005 } else { 0.2 })
        },
    );
    if male {
        set("Goatee", p(rng, 0.14));
        set("Mustache", p(rng, 0.10));
        set("5_o_Clock_Shadow", p(rng, 0.26));
        set("Sideburns", p(rng, 0.13));
        set("Wearing_Necktie", p(rng, 0.16));
    } else {
        set("Wearing_Earrings", p(rng, 0.32));
        set("Wearing_Necklace", p(rng, 0.2));
    }
    let beard = a[idx("Goatee")] || a[idx("Mustache")] || a[idx("5_o_Clock_Shadow")];
    a[idx("No_Beard")] = !beard;
    let smiling = p(rng, 0.48);
    a[idx("Smiling")] = smiling;
    a[idx("High_Cheekbones")] = p(rng, if smiling { 0.8 } else { 0.12 });
    a[idx("Mouth_Slightly_Open")] = p(rng, if smiling { 0.7 } else { 0.25 });
    let chubby = p(rng, if male && !young { 0.15 } else { 0.04 });
    a[idx("Chubby")] = chubby;
    a[idx("Double_Chin")] = p(rng, if chubby { 0.6 } else { 0.02 });
    a[idx("Eyeglasses")] = p(rng, if young { 0.04 } else { 0.15 });
    a[idx("Arched_Eyebrows")] = p(rng, if male { 0.05 } else { 0.4 });
    a[idx("Bushy_Eyebrows")] = p(rng, if male { 0.25 } else { 0.06 });
    a[idx("Big_Nose")] = p(rng, if male { 0.4 } else { 0.1 });
    a[idx("Pointy_Nose")] = !a[idx("Big_Nose")] && p(rng, 0.33);
    a[idx("Big_Lips")] = p(rng, 0.24);
    a[idx("Bags_Under_Eyes")] = p(rng, if young { 0.14 } else { 0.4 });
    a[idx("Narrow_Eyes")] = p(rng, 0.115);
    a[idx("Oval_Face")] = !chubby && p(rng, 0.3);
    a[idx("Pale_Skin")] = p(rng, 0.045);
    a[idx("Rosy_Cheeks")] = p(rng, if male { 0.01 } else { 0.11 });
    a[idx("Wearing_Hat")] = p(rng, 0.05);
    a[idx("Blurry")] = p(rng, 0.05);
    let attractive =
        0.12 + 0.4 * young as u8 as f64 + 0.25 * makeup as u8 as f64 - 0.15 * chubby as u8 as f64;
    a[idx("Attractive")] = p(rng, attractive);
    a
}

const SKIN: [[f32; 3]; 4] = [
    [0.87, 0.72, 0.6],
    [0.78, 0.6, 0.47],
    [0.62, 0.45, 0.33],
    [0.45, 0.31, 0.22],
];

/// The generator versions. Each is frozen: a version's images never change,
/// so cached data sets and the results trained on them keep their meaning.
pub const VERSIONS: [u32; 2] = [1, 2];

/// Sizes of the features that tell local attributes apart, in local units
/// (face half-height = 1; at 128 px that is 35–46 px). Version 1 drew them
/// 1–2 px wide at 64 px, below what a net can read; version 2 makes each
/// local attribute's difference at least 3 px across at 128 px (0.087 local
/// units at the smallest face), checked by [`legibility`].
#[derive(Clone, Copy)]
struct Features {
    brow_cy: f32,
    brow_t: f32,
    bushy_t: f32,
    arched_bend: f32,
    glasses_t: f32,
    bridge_hh: f32,
    lip_t: f32,
    big_lip_t: f32,
    smile_bend: f32,
    /// How far an open mouth drops the lower lip.
    open_drop: f32,
    earring_r: f32,
    goatee_cy: f32,
    wrinkle_t: f32,
    wrinkle_gap: f32,
    bags_t: f32,
    pointy_hw: f32,
}

impl Features {
    fn of(version: u32) -> Self {
        match version {
            1 => Features {
                brow_cy: -0.3,
                brow_t: 0.035,
                bushy_t: 0.09,
                arched_bend: -0.09,
                glasses_t: 0.035,
                bridge_hh: 0.018,
                lip_t: 0.05,
                big_lip_t: 0.1,
                smile_bend: 0.09,
                open_drop: 0.0,
                earring_r: 0.06,
                goatee_cy: 0.78,
                wrinkle_t: 0.02,
                wrinkle_gap: 0.07,
                bags_t: 0.03,
                pointy_hw: 0.03,
            },
            _ => Features {
                brow_cy: -0.36,
                brow_t: 0.09,
                bushy_t: 0.27,
                arched_bend: -0.15,
                glasses_t: 0.09,
                bridge_hh: 0.045,
                lip_t: 0.1,
                big_lip_t: 0.28,
                smile_bend: 0.13,
                open_drop: 0.16,
                earring_r: 0.1,
                goatee_cy: 0.86,
                wrinkle_t: 0.09,
                wrinkle_gap: 0.12,
                bags_t: 0.1,
                pointy_hw: 0.07,
            },
        }
    }
}

/// Local boxes `[u0, v0, u1, v1]` of each region (face half-height = 1).
fn region_box(r: Region, version: u32) -> [f32; 4] {
    let v2 = version >= 2;
    match r {
        Region::Eyes => [-0.55, -0.32, 0.55, 0.05],
        Region::Brows if v2 => [-0.55, -0.68, 0.55, -0.2],
        Region::Brows => [-0.55, -0.48, 0.55, -0.22],
        Region::Nose => [-0.2, -0.08, 0.2, 0.32],
        Region::Mouth if v2 => [-0.38, 0.14, 0.38, 0.92],
        Region::Mouth => [-0.35, 0.26, 0.35, 0.62],
        Region::Chin => [-0.5, 0.3, 0.5, 1.1],
        Region::Cheeks if v2 => [-0.9, -0.05, -0.3, 0.5],
        Region::Cheeks => [-0.8, 0.0, 0.8, 0.45],
        Region::Hair => [-0.95, -1.3, 0.95, -0.4],
        Region::HeadTop => [-0.85, -1.35, 0.85, -0.6],
        // One ear (image left when upright), as a patch covers one: a box
        // over both would centre every patch on the nose.
        Region::Ears if v2 => [-1.05, 0.1, -0.55, 0.45],
        Region::Ears => [-0.95, 0.0, 0.95, 0.4],
        Region::Neck => [-0.45, 0.95, 0.45, 1.8],
        Region::Global => [-0.9, -1.1, 0.9, 1.1],
    }
}

/// Draw image `index` of a data set with `seed` by generator `version`.
pub fn generate(seed: u64, index: u64, size: usize, version: u32) -> Face {
    render(seed, index, size, version, |_| {})
}

/// [`generate`] with every face-part attribute (a region other than the
/// whole face, hair and head top) drawn independently of every other
/// attribute, at the prevalence [`sample_attributes`] gives it; sex, age,
/// hair and the global attributes keep their correlations, and the pose,
/// colours and clutter are [`generate`]'s. A diagnostic: a face part can
/// then be told only from its own region, not from correlated cues.
/// Two derived attributes keep the sampler's exclusions instead, so their
/// prevalence moves: No_Beard (no goatee, moustache or stubble: ~80%
/// instead of ~82%) and Pointy_Nose (cleared on a big nose: ~20% instead
/// of ~26%). Neither is one the paper's specs evaluate.
pub fn generate_independent_parts(seed: u64, index: u64, size: usize, version: u32) -> Face {
    render(seed, index, size, version, |labels| {
        for (k, label) in labels.iter_mut().enumerate() {
            if !matches!(region(k), Region::Global | Region::Hair | Region::HeadTop) {
                // Attribute k from its own draw of the whole sampler (its
                // own ChaCha stream), so it is independent of the others.
                let mut own =
                    ChaCha8Rng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                own.set_stream(1 + k as u64);
                *label = sample_attributes(&mut own)[k];
            }
        }
        // The sampler's exclusions, kept: No_Beard is the absence of a beard,
        // a nose is big or pointy.
        let beard =
            labels[idx("Goatee")] || labels[idx("Mustache")] || labels[idx("5_o_Clock_Shadow")];
        labels[idx("No_Beard")] = !beard;
        if labels[idx("Big_Nose")] {
            labels[idx("Pointy_Nose")] = false;
        }
    })
}

/// [`generate`], with the sampled attributes edited before drawing (the
/// rest of the image — pose, colours, clutter — stays the same).
fn render(
    seed: u64,
    index: u64,
    size: usize,
    version: u32,
    edit: impl FnOnce(&mut [bool; 40]),
) -> Face {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut labels = sample_attributes(&mut rng);
    edit(&mut labels);
    let f = Features::of(version);
    let has = |n: &str| labels[idx(n)];
    let s = size as f32;
    // Like CelebA after the paper's face-detector crop: the face fills much
    // of the frame, but position, scale and in-plane rotation still vary.
    let frame = Frame {
        cx: s * rng.random_range(0.4..0.6),
        cy: s * rng.random_range(0.45..0.58),
        scale: s * rng.random_range(0.27..0.36),
        angle: rng.random_range(-0.4f32..0.4),
    };
    let rand_color = |rng: &mut ChaCha8Rng| {
        [
            rng.random::<f32>(),
            rng.random::<f32>(),
            rng.random::<f32>(),
        ]
    };

    // 1. Background and clutter.
    let mut c = Canvas::new(size, size, rand_color(&mut rng).map(|x| 0.2 + 0.6 * x));
    for _ in 0..rng.random_range(3..8) {
        let (x, y) = (rng.random::<f32>() * s, rng.random::<f32>() * s);
        let (w, h) = (
            rng.random_range(0.05..0.4) * s,
            rng.random_range(0.05..0.4) * s,
        );
        let color = rand_color(&mut rng);
        if rng.random_bool(0.5) {
            c.rect(x, y, x + w, y + h, color);
        } else {
            let f = Frame {
                cx: x,
                cy: y,
                scale: 1.0,
                angle: 0.0,
            };
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

    let skin = if has("Pale_Skin") {
        [0.96, 0.9, 0.86]
    } else {
        SKIN[rng.random_range(0..SKIN.len())]
    };
    let dark = |c: [f32; 3], k: f32| c.map(|x| x * k);
    let hair = if has("Black_Hair") {
        [0.08, 0.07, 0.07]
    } else if has("Blond_Hair") {
        [0.93, 0.8, 0.42]
    } else if has("Brown_Hair") {
        [0.45, 0.28, 0.14]
    } else if has("Gray_Hair") {
        [0.7, 0.7, 0.72]
    } else {
        [0.62, 0.22, 0.1]
    };
    let hair_paint = |wavy: bool, straight: bool| {
        if wavy || straight {
            Paint::Stripes {
                a: hair,
                b: dark(hair, 0.7),
                period: 0.12,
                wavy,
            }
        } else {
            Paint::Solid(hair)
        }
    };
    let hp = hair_paint(has("Wavy_Hair"), has("Straight_Hair"));

    // 2. Neck and clothes, then hair behind the head.
    c.fill(
        &frame,
        Shape::Rect {
            cx: 0.0,
            cy: 1.6,
            hw: 1.2,
            hh: 0.5,
        },
        Paint::Solid(rand_color(&mut rng)),
        1.0,
    );
    c.fill(
        &frame,
        Shape::Rect {
            cx: 0.0,
            cy: 1.1,
            hw: 0.32,
            hh: 0.35,
        },
        Paint::Solid(dark(skin, 0.92)),
        1.0,
    );
    if !has("Bald") {
        let long = if has("Male") { 0.2 } else { 0.75 };
        c.fill(
            &frame,
            Shape::Ellipse {
                cx: 0.0,
                cy: -0.25 + long / 2.0,
                a: 0.95,
                b: 0.95 + long / 2.0,
            },
            hp,
            1.0,
        );
    }
    // 3. Face: wider if chubby, longer if oval, squarer jaw if male.
    let width = if has("Chubby") {
        0.86
    } else if has("Oval_Face") {
        0.64
    } else {
        0.74
    };
    c.fill(
        &frame,
        Shape::Ellipse {
            cx: 0.0,
            cy: 0.0,
            a: width,
            b: 1.0,
        },
        Paint::Solid(skin),
        1.0,
    );
    if has("Male") {
        c.fill(
            &frame,
            Shape::Rect {
                cx: 0.0,
                cy: 0.55,
                hw: width * 0.8,
                hh: 0.3,
            },
            Paint::Solid(skin),
            1.0,
        );
    }
    if has("Double_Chin") {
        c.fill(
            &frame,
            Shape::Arc {
                cx: 0.0,
                cy: 1.02,
                hw: 0.35,
                bend: -0.08,
                t: 0.05,
            },
            Paint::Solid(dark(skin, 0.7)),
            1.0,
        );
    }
    // Hairline: a cap over the forehead unless bald; receding leaves a high M.
    if !has("Bald") {
        let top = if has("Receding_Hairline") {
            -0.95
        } else {
            -0.78
        };
        c.fill(
            &frame,
            Shape::Ellipse {
                cx: 0.0,
                cy: top - 0.3,
                a: 0.8,
                b: 0.42,
            },
            hp,
            1.0,
        );
        if has("Bangs") {
            c.fill(
                &frame,
                Shape::Rect {
                    cx: 0.0,
                    cy: -0.6,
                    hw: 0.55,
                    hh: 0.14,
                },
                hp,
                1.0,
            );
        }
    }
    if !has("Young") {
        for k in 0..2 {
            c.fill(
                &frame,
                Shape::Arc {
                    cx: 0.0,
                    cy: -0.52 - f.wrinkle_gap * k as f32,
                    hw: 0.3,
                    bend: -0.03,
                    t: f.wrinkle_t,
                },
                Paint::Solid(dark(skin, 0.75)),
                0.8,
            );
        }
    }
    // 4. Features.
    let eye_h = if has("Narrow_Eyes") { 0.035 } else { 0.075 };
    for side in [-1.0f32, 1.0] {
        let ex = side * 0.3;
        if has("Heavy_Makeup") {
            c.fill(
                &frame,
                Shape::Ellipse {
                    cx: ex,
                    cy: -0.17,
                    a: 0.16,
                    b: 0.1,
                },
                Paint::Solid([0.35, 0.3, 0.6]),
                0.8,
            );
        }
        c.fill(
            &frame,
            Shape::Ellipse {
                cx: ex,
                cy: -0.15,
                a: 0.12,
                b: eye_h,
            },
            Paint::Solid([0.97, 0.97, 0.97]),
            1.0,
        );
        c.fill(
            &frame,
            Shape::Ellipse {
                cx: ex,
                cy: -0.15,
                a: 0.045,
                b: eye_h.min(0.045),
            },
            Paint::Solid([0.1, 0.08, 0.05]),
            1.0,
        );
        if has("Bags_Under_Eyes") {
            c.fill(
                &frame,
                Shape::Arc {
                    cx: ex,
                    cy: -0.06,
                    hw: 0.11,
                    bend: 0.03,
                    t: f.bags_t,
                },
                Paint::Solid([0.45, 0.32, 0.4]),
                1.0,
            );
        }
        let thick = if has("Bushy_Eyebrows") {
            f.bushy_t
        } else {
            f.brow_t
        };
        let bend = if has("Arched_Eyebrows") {
            f.arched_bend
        } else {
            -0.01
        };
        c.fill(
            &frame,
            Shape::Arc {
                cx: ex,
                cy: f.brow_cy,
                hw: 0.15,
                bend,
                t: thick,
            },
            Paint::Solid(dark(hair, 0.6)),
            1.0,
        );
        if has("Eyeglasses") {
            c.fill(
                &frame,
                Shape::Ring {
                    cx: ex,
                    cy: -0.15,
                    a: 0.17,
                    b: 0.13,
                    t: f.glasses_t,
                },
                Paint::Solid([0.05, 0.05, 0.05]),
                1.0,
            );
        }
        if has("High_Cheekbones") {
            c.fill(
                &frame,
                Shape::Ellipse {
                    cx: side * 0.46,
                    cy: 0.1,
                    a: 0.12,
                    b: 0.06,
                },
                Paint::Solid(skin.map(|x| (x * 1.25).min(1.0))),
                1.0,
            );
        }
        if has("Rosy_Cheeks") {
            c.fill(
                &frame,
                Shape::Ellipse {
                    cx: side * 0.45,
                    cy: 0.26,
                    a: 0.11,
                    b: 0.09,
                },
                Paint::Solid([0.9, 0.35, 0.4]),
                0.9,
            );
        }
        if has("Sideburns") {
            c.fill(
                &frame,
                Shape::Rect {
                    cx: side * (width - 0.06),
                    cy: 0.05,
                    hw: 0.05,
                    hh: 0.25,
                },
                Paint::Solid(dark(hair, 0.8)),
                1.0,
            );
        }
        if has("Wearing_Earrings") {
            c.fill(
                &frame,
                Shape::Ellipse {
                    cx: side * (width + 0.06),
                    cy: 0.28,
                    a: f.earring_r,
                    b: f.earring_r,
                },
                Paint::Solid([1.0, 0.85, 0.1]),
                1.0,
            );
        }
    }
    if has("Eyeglasses") {
        c.fill(
            &frame,
            Shape::Rect {
                cx: 0.0,
                cy: -0.17,
                hw: 0.13,
                hh: f.bridge_hh,
            },
            Paint::Solid([0.05, 0.05, 0.05]),
            1.0,
        );
    }
    let (nw, nh) = if has("Big_Nose") {
        (0.17, 0.36)
    } else {
        (0.09, 0.24)
    };
    c.fill(
        &frame,
        Shape::Triangle {
            cx: 0.0,
            cy: 0.1,
            hw: nw,
            h: nh,
        },
        Paint::Solid(dark(skin, 0.72)),
        1.0,
    );
    if has("Pointy_Nose") {
        c.fill(
            &frame,
            Shape::Triangle {
                cx: 0.0,
                cy: 0.2,
                hw: f.pointy_hw,
                h: 0.16,
            },
            Paint::Solid(dark(skin, 0.45)),
            1.0,
        );
    }
    if has("5_o_Clock_Shadow") {
        c.fill(
            &frame,
            Shape::Ellipse {
                cx: 0.0,
                cy: 0.62,
                a: 0.55,
                b: 0.38,
            },
            Paint::Speckle {
                color: [0.15, 0.13, 0.12],
                density: 0.45,
                seed: index as u32,
            },
            1.0,
        );
    }
    let lips = if has("Wearing_Lipstick") {
        [0.85, 0.05, 0.15]
    } else {
        dark(skin, 0.7)
    };
    let lip_t = if has("Big_Lips") {
        f.big_lip_t
    } else {
        f.lip_t
    };
    let mouth_w = if has("Smiling") { 0.26 } else { 0.2 };
    let bend = if has("Smiling") { f.smile_bend } else { 0.0 };
    let open = has("Mouth_Slightly_Open");
    // Later versions: thicker lips grow away from the mouth's centre line.
    let spread = if version == 1 {
        0.0
    } else {
        (lip_t - f.lip_t) / 2.0
    };
    let upper_cy = 0.38 - spread;
    let lower_cy = 0.5 + spread + if open { f.open_drop } else { 0.0 };
    if open {
        // Version 1: a dark ellipse mostly hidden by the lips. Later: the
        // lower lip drops and the dark gap fills the space between the lips.
        let (cy, b) = if version == 1 {
            (0.44, 0.07)
        } else {
            let upper = upper_cy + bend + lip_t / 2.0;
            let lower = lower_cy + bend * 0.5 - lip_t / 2.0;
            ((upper + lower) / 2.0, (lower - upper) / 2.0 + lip_t / 2.0)
        };
        c.fill(
            &frame,
            Shape::Ellipse {
                cx: 0.0,
                cy,
                a: mouth_w * 0.8,
                b,
            },
            Paint::Solid([0.2, 0.02, 0.05]),
            1.0,
        );
    }
    c.fill(
        &frame,
        Shape::Arc {
            cx: 0.0,
            cy: upper_cy,
            hw: mouth_w,
            bend,
            t: lip_t,
        },
        Paint::Solid(lips),
        1.0,
    );
    c.fill(
        &frame,
        Shape::Arc {
            cx: 0.0,
            cy: lower_cy,
            hw: mouth_w * 0.85,
            bend: bend * 0.5,
            t: lip_t,
        },
        Paint::Solid(lips),
        1.0,
    );
    if has("Mustache") {
        c.fill(
            &frame,
            Shape::Arc {
                cx: 0.0,
                cy: 0.3,
                hw: 0.24,
                bend: -0.04,
                t: 0.06,
            },
            Paint::Solid(dark(hair, 0.5)),
            1.0,
        );
    }
    if has("Goatee") {
        c.fill(
            &frame,
            Shape::Ellipse {
                cx: 0.0,
                cy: f.goatee_cy,
                a: 0.14,
                b: 0.13,
            },
            Paint::Solid(dark(hair, 0.5)),
            1.0,
        );
    }
    // 5. Accessories.
    if has("Wearing_Hat") {
        let hat = rand_color(&mut rng);
        c.fill(
            &frame,
            Shape::Ellipse {
                cx: 0.0,
                cy: -1.05,
                a: 0.78,
                b: 0.38,
            },
            Paint::Solid(hat),
            1.0,
        );
        c.fill(
            &frame,
            Shape::Rect {
                cx: 0.0,
                cy: -0.72,
                hw: 1.0,
                hh: 0.06,
            },
            Paint::Solid(dark(hat, 0.6)),
            1.0,
        );
    }
    if has("Wearing_Necklace") {
        c.fill(
            &frame,
            Shape::Arc {
                cx: 0.0,
                cy: 1.2,
                hw: 0.33,
                bend: 0.14,
                t: 0.05,
            },
            Paint::Solid([1.0, 0.85, 0.2]),
            1.0,
        );
    }
    if has("Wearing_Necktie") {
        c.fill(
            &frame,
            Shape::Triangle {
                cx: 0.0,
                cy: 1.55,
                hw: 0.14,
                h: 0.5,
            },
            Paint::Solid([0.1, 0.15, 0.55]),
            1.0,
        );
    }
    // 6. Occluders on some faces, blur on Blurry ones.
    if rng.random_bool(0.12) {
        let (x, y) = (
            frame.cx + (rng.random::<f32>() - 0.5) * frame.scale * 2.0,
            frame.cy + (rng.random::<f32>() - 0.5) * frame.scale * 2.0,
        );
        let r = frame.scale * rng.random_range(0.2..0.45);
        c.rect(x - r, y - r, x + r, y + r, rand_color(&mut rng));
    }
    if has("Blurry") {
        c.blur((size / 32).max(2));
    }

    let face = frame.image_box(region_box(Region::Global, version));
    let lm = [
        (-0.3, -0.15),
        (0.3, -0.15),
        (0.0, 0.2),
        (-0.2, 0.44),
        (0.2, 0.44),
    ]
    .map(|(u, v)| frame.to_image(u, v));
    let regions = std::array::from_fn(|j| {
        let b = frame.image_box(region_box(region(j), version));
        [b[0].max(0.0), b[1].max(0.0), b[2].min(s), b[3].min(s)]
    });
    Face {
        rgb: c.to_rgb8(),
        size,
        labels,
        bbox: [face[0], face[1], face[2] - face[0], face[3] - face[1]],
        landmarks: lm,
        regions,
    }
}

/// The smallest change, in 8-bit levels of any channel, that counts as
/// visible in [`legibility`].
pub const MIN_CHANGE: u8 = 24;

/// How legible each attribute is: over faces `0..n` of seed `seed`, the
/// fraction in which switching the attribute on rather than off (pose,
/// colours and every other attribute unchanged) changes all pixels of some
/// 3×3 block by at least [`MIN_CHANGE`]. Occluders and `Blurry` hide a few.
pub fn legibility(version: u32, size: usize, seed: u64, n: u64, attributes: &[usize]) -> Vec<f64> {
    use rayon::prelude::*;
    attributes
        .iter()
        .map(|&j| {
            let seen = (0..n)
                .into_par_iter()
                .filter(|&i| {
                    let on = render(seed, i, size, version, |l| l[j] = true).rgb;
                    let off = render(seed, i, size, version, |l| l[j] = false).rgb;
                    has_changed_block(&on, &off, size)
                })
                .count();
            seen as f64 / n as f64
        })
        .collect()
}

/// Whether two RGB images differ by at least [`MIN_CHANGE`] at every pixel
/// of some 3×3 block.
pub(crate) fn has_changed_block(a: &[u8], b: &[u8], size: usize) -> bool {
    let changed: Vec<bool> = a
        .chunks_exact(3)
        .zip(b.chunks_exact(3))
        .map(|(p, q)| (0..3).any(|c| p[c].abs_diff(q[c]) >= MIN_CHANGE))
        .collect();
    (1..size.saturating_sub(1)).any(|y| {
        (1..size - 1)
            .any(|x| (y - 1..=y + 1).all(|yy| (x - 1..=x + 1).all(|xx| changed[yy * size + xx])))
    })
}

/// Prevalence of each attribute over `n` samples (for tests and docs).
pub fn prevalence(seed: u64, n: usize) -> [f64; 40] {
    let mut counts = [0usize; 40];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..n {
        let a = sample_attributes(&mut rng);
        for j in 0..40 {
            counts[j] += a[j] as usize;
        }
    }
    counts.map(|c| c as f64 / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions_and_correlations_hold() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (mut smile_cheek, mut smile, mut nosmile_cheek, mut nosmile) = (0, 0, 0, 0);
        for _ in 0..4000 {
            let a = sample_attributes(&mut rng);
            let hair = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]
                .iter()
                .filter(|n| a[idx(n)])
                .count();
            assert!(hair <= 1, "hair colours are exclusive");
            let beard = a[idx("Goatee")] || a[idx("Mustache")] || a[idx("5_o_Clock_Shadow")];
            assert_eq!(a[idx("No_Beard")], !beard);
            assert!(!(a[idx("Male")] && a[idx("Heavy_Makeup")]));
            assert!(!(a[idx("Straight_Hair")] && a[idx("Wavy_Hair")]));
            if a[idx("Smiling")] {
                smile += 1;
                smile_cheek += a[idx("High_Cheekbones")] as i32
            } else {
                nosmile += 1;
                nosmile_cheek += a[idx("High_Cheekbones")] as i32
            }
        }
        assert!(
            smile_cheek as f64 / smile as f64 > 0.6
                && (nosmile_cheek as f64 / nosmile as f64) < 0.25
        );
    }

    #[test]
    fn independent_parts_keep_prevalence_pose_and_the_rest_but_lose_correlations() {
        let n = 1500;
        let (mut rate, mut rate_ind) = ([0.0f64; 40], [0.0f64; 40]);
        // Earrings on men, earrings on women; open mouth with and without a smile.
        let (mut ear, mut open) = ([[0.0f64; 2]; 2], [[0.0f64; 2]; 2]);
        for i in 0..n {
            let (a, b) = (
                generate(5, i, 32, 2),
                generate_independent_parts(5, i, 32, 2),
            );
            assert_eq!(a.bbox, b.bbox, "the pose is generate()'s");
            for k in 0..40 {
                if matches!(region(k), Region::Global | Region::Hair | Region::HeadTop) {
                    let name = crate::attributes::CELEBA[k];
                    assert_eq!(a.labels[k], b.labels[k], "{name} is generate()'s");
                }
            }
            assert!(!(b.labels[idx("Big_Nose")] && b.labels[idx("Pointy_Nose")]));
            let beard = b.labels[idx("Goatee")]
                || b.labels[idx("Mustache")]
                || b.labels[idx("5_o_Clock_Shadow")];
            assert_eq!(b.labels[idx("No_Beard")], !beard);
            for j in 0..40 {
                rate[j] += a.labels[j] as u8 as f64 / n as f64;
                rate_ind[j] += b.labels[j] as u8 as f64 / n as f64;
            }
            let l = |name: &str| b.labels[idx(name)];
            ear[l("Male") as usize][0] += 1.0;
            ear[l("Male") as usize][1] += l("Wearing_Earrings") as u8 as f64;
            open[l("Smiling") as usize][0] += 1.0;
            open[l("Smiling") as usize][1] += l("Mouth_Slightly_Open") as u8 as f64;
        }
        for (j, name) in crate::attributes::CELEBA.iter().enumerate() {
            // The two derived attributes (see generate_independent_parts) move.
            if ["No_Beard", "Pointy_Nose"].contains(name) {
                continue;
            }
            assert!(
                (rate[j] - rate_ind[j]).abs() < 0.04,
                "{name}: {:.3} vs {:.3}",
                rate[j],
                rate_ind[j]
            );
        }
        let p = |c: [f64; 2]| c[1] / c[0];
        assert!(
            (p(ear[0]) - p(ear[1])).abs() < 0.05,
            "earrings as often on men as on women: {ear:?}"
        );
        assert!(
            (p(open[0]) - p(open[1])).abs() < 0.06,
            "open mouths regardless of smiles: {open:?}"
        );
    }

    #[test]
    fn prevalence_is_imbalanced_like_celeba() {
        let p = prevalence(1, 5000);
        let get = |n: &str| p[idx(n)];
        assert!((get("Male") - 0.42).abs() < 0.03);
        assert!(get("No_Beard") > 0.75 && get("No_Beard") < 0.9);
        assert!(get("Bald") < 0.05 && get("Young") > 0.7);
        assert!((0..40).all(|j| p[j] > 0.0 && p[j] < 1.0));
    }

    /// The attributes the paper's specs evaluate that live in one region.
    const LOCAL: [&str; 8] = [
        "Eyeglasses",
        "Bushy_Eyebrows",
        "Arched_Eyebrows",
        "Smiling",
        "Mouth_Slightly_Open",
        "Wearing_Lipstick",
        "Goatee",
        "Wearing_Earrings",
    ];

    #[test]
    fn version_2_draws_each_evaluated_local_attribute_at_3x3_px_at_128_px() {
        let attrs: Vec<usize> = LOCAL.iter().map(|n| idx(n)).collect();
        let seen = legibility(2, 128, 11, 60, &attrs);
        for (name, s) in LOCAL.iter().zip(&seen) {
            assert!(
                *s >= 0.9,
                "{name}: a 3×3 px change in only {:.0}% of faces",
                s * 100.0
            );
        }
    }

    #[test]
    fn version_1_at_64_px_hides_local_attributes_below_3x3_px() {
        let attrs: Vec<usize> = ["Bushy_Eyebrows", "Mouth_Slightly_Open"]
            .iter()
            .map(|n| idx(n))
            .collect();
        let seen = legibility(1, 64, 11, 60, &attrs);
        assert!(seen.iter().all(|s| *s < 0.5), "{seen:?}");
    }

    #[test]
    fn a_changed_block_needs_all_nine_pixels() {
        let size = 5;
        let a = vec![0u8; size * size * 3];
        let mut b = a.clone();
        for y in 1..4 {
            for x in 1..4 {
                b[(y * size + x) * 3 + 1] = MIN_CHANGE;
            }
        }
        assert!(has_changed_block(&a, &b, size));
        b[(2 * size + 2) * 3 + 1] = MIN_CHANGE - 1;
        assert!(!has_changed_block(&a, &b, size));
    }

    #[test]
    fn version_1_images_are_frozen() {
        // sha256 of faces 0..4 of seed 1 at 64 px, as generated before
        // versions existed: cached data sets of version 1 stay valid.
        let mut all = Vec::new();
        for i in 0..4 {
            all.extend(generate(1, i, 64, 1).rgb);
        }
        assert_eq!(crate::digest::sha256_hex(&all), V1_DIGEST);
    }

    const V1_DIGEST: &str = "d0f3495cc3a56ce6a7ba25670b07363415f189a0d205ecbb881d9eabd8f42bb4";

    #[test]
    fn version_2_images_and_regions_are_frozen() {
        // A cached data set's key holds the version, not the drawing code:
        // once a version has results, its pixels and boxes must not move.
        let mut all = Vec::new();
        for i in 0..4 {
            let face = generate(1, i, 128, 2);
            all.extend(face.rgb);
            all.extend(face.regions.iter().flatten().flat_map(|v| v.to_le_bytes()));
        }
        assert_eq!(crate::digest::sha256_hex(&all), V2_DIGEST);
    }

    const V2_DIGEST: &str = "8e4fb3eb68ab1953d9e49ec506c8a026a765a2089e76b57714944ee321ce9e83";

    #[test]
    fn deterministic_by_seed_and_index() {
        let a = generate(7, 3, 48, 1);
        let b = generate(7, 3, 48, 1);
        let c = generate(7, 4, 48, 1);
        assert_eq!(a.rgb, b.rgb);
        assert_ne!(a.rgb, c.rgb);
        assert_eq!(a.rgb.len(), 48 * 48 * 3);
    }
}
