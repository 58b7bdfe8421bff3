//! `--device cpu|tch-cpu|cuda:N` → a burn [`Device`], and the backend string
//! that goes into cache keys of backend-dependent stages.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// burn's pure-Rust `flex` CPU backend (the default).
    Cpu,
    /// libtorch on the CPU (`--features tch`).
    TchCpu,
    /// libtorch CUDA device N (`--features tch`).
    Cuda(usize),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DeviceError {
    #[error("unknown device `{0}`; expected `cpu`, `tch-cpu` or `cuda:N`")]
    Unknown(String),
    #[error(
        "device `{0}` needs libtorch, but this build has none: rebuild with `cargo build --release --features tch` (README, \"GPU users\")"
    )]
    NoLibtorch(String),
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, DeviceError> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "tch-cpu" => Ok(Self::TchCpu),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| DeviceError::Unknown(s.to_string())),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::TchCpu => write!(f, "tch-cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    /// What cache keys record: numerics differ between backends.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Cpu => "flex/f32",
            Self::TchCpu => "libtorch-cpu/f32",
            Self::Cuda(_) => "libtorch-cuda/f32",
        }
    }

    /// Fails early when the build cannot serve the device.
    pub fn check(&self) -> Result<(), DeviceError> {
        match self {
            Self::Cpu => Ok(()),
            _ if cfg!(feature = "tch") => Ok(()),
            _ => Err(DeviceError::NoLibtorch(self.to_string())),
        }
    }

    /// The plain (inference) burn device.
    pub fn device(&self) -> Device {
        match self {
            Self::Cpu => Device::flex(),
            #[cfg(feature = "tch")]
            Self::TchCpu => Device::libtorch(),
            #[cfg(feature = "tch")]
            Self::Cuda(n) => Device::libtorch_cuda(*n),
            #[cfg(not(feature = "tch"))]
            _ => unreachable!("checked by DeviceChoice::check"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda:1".parse(), Ok(DeviceChoice::Cuda(1)));
        assert_eq!(
            "gpu".parse::<DeviceChoice>(),
            Err(DeviceError::Unknown("gpu".into()))
        );
        if !cfg!(feature = "tch") {
            assert!(
                DeviceChoice::Cuda(0)
                    .check()
                    .unwrap_err()
                    .to_string()
                    .contains("--features tch")
            );
        }
    }
}
