//! CelebA's 40 attribute names in the dataset's own column order, and the
//! face region each one lives in (used by the synthetic generator and by the
//! localisation scores).

/// The 40 CelebA attributes, in `list_attr_celeba.txt` column order.
pub const CELEBA: [&str; 40] = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
];

/// Where an attribute shows on a face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Region {
    Eyes,
    Brows,
    Nose,
    Mouth,
    Chin,
    Cheeks,
    Hair,
    HeadTop,
    Ears,
    Neck,
    /// The whole face: skin tone, blur, age, face shape.
    Global,
}

/// The region of a CelebA attribute, by index into [`CELEBA`].
pub fn region(index: usize) -> Region {
    use Region::*;
    match CELEBA[index] {
        "Arched_Eyebrows" | "Bushy_Eyebrows" => Brows,
        "Bags_Under_Eyes" | "Eyeglasses" | "Narrow_Eyes" => Eyes,
        "Big_Nose" | "Pointy_Nose" => Nose,
        "Big_Lips" | "Mouth_Slightly_Open" | "Smiling" | "Wearing_Lipstick" | "Mustache" => Mouth,
        "5_o_Clock_Shadow" | "Goatee" | "No_Beard" | "Double_Chin" => Chin,
        "High_Cheekbones" | "Rosy_Cheeks" | "Sideburns" => Cheeks,
        "Black_Hair" | "Blond_Hair" | "Brown_Hair" | "Gray_Hair" | "Straight_Hair"
        | "Wavy_Hair" | "Bangs" => Hair,
        "Bald" | "Receding_Hairline" | "Wearing_Hat" => HeadTop,
        "Wearing_Earrings" => Ears,
        "Wearing_Necklace" | "Wearing_Necktie" => Neck,
        _ => Global,
    }
}

/// Whether attribute `index` lives in one face region, not the whole face:
/// the pointing game's averages and the RSL's local side are over these.
pub fn is_local(index: usize) -> bool {
    region(index) != Region::Global
}

/// Index of an attribute name, if it is one of CelebA's 40.
pub fn index_of(name: &str) -> Option<usize> {
    CELEBA.iter().position(|a| *a == name)
}

/// CelebA's landmarks tied to an attribute (datasets.md): indices into the
/// five points (0 left eye, 1 right eye, 2 nose, 3 left and 4 right mouth
/// corner), for the pointing game on real CelebA.
pub fn landmarks_of(index: usize) -> Option<&'static [usize]> {
    const EYES: &[usize] = &[0, 1];
    const NOSE: &[usize] = &[2];
    const MOUTH: &[usize] = &[3, 4];
    match CELEBA[index] {
        "Arched_Eyebrows" | "Bushy_Eyebrows" | "Bags_Under_Eyes" | "Narrow_Eyes" | "Eyeglasses" => {
            Some(EYES)
        }
        "Big_Nose" | "Pointy_Nose" => Some(NOSE),
        "Big_Lips"
        | "Mustache"
        | "Mouth_Slightly_Open"
        | "Smiling"
        | "Wearing_Lipstick"
        | "Goatee" => Some(MOUTH),
        _ => None,
    }
}
