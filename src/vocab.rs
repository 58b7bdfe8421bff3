//! Values shared by the spec, the nets and the stages, without burn: a
//! leaf that any module may import.

use serde::{Deserialize, Serialize};

/// Compute precision of the libtorch convolutions: fp32, or bf16 compute
/// with fp32 master weights and fp32 everything else (what PyTorch's
/// autocast does for convolutions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
    }
}
