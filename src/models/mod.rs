//! burn modules for the paper's nets. One file per family:
//! [`attr_net`] holds TNet (the FRL net, with its optional MNL branch) and
//! the student nets SNet1–3 of Table 3; [`paw`] holds PaW (RSL, ARL).

pub mod attr_net;
pub mod paw;

pub use attr_net::{AttrNet, AttrNetConfig, Output};
pub use paw::{Fusion, Paw};
