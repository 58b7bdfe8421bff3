//! Values shared by the spec, the nets, the data and the stages, without
//! burn: a leaf that any module may import.

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

/// The architectures of the paper's Table 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Net {
    Tnet,
    Snet1,
    Snet2,
    Snet3,
}

impl Net {
    pub const ALL: [Net; 4] = [Net::Tnet, Net::Snet1, Net::Snet2, Net::Snet3];
    pub fn as_str(self) -> &'static str {
        match self {
            Net::Tnet => "tnet",
            Net::Snet1 => "snet1",
            Net::Snet2 => "snet2",
            Net::Snet3 => "snet3",
        }
    }
}

/// A data set's split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}
