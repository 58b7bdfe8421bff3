//! `--device cpu|tch-cpu|cuda:N` → a burn [`Device`], and the backend string
//! that goes into cache keys of backend-dependent stages. Several GPUs
//! (`cuda:0,cuda:1`, `cuda:all`) form a [`Devices`] pool: the scheduler
//! gives each stage one free device.

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
    #[error(
        "device `{device}` asked, but libtorch sees {count} CUDA device(s): check `nvidia-smi` and that the torch this build links is a CUDA build (`python3 -c 'import torch; print(torch.cuda.is_available())'`)"
    )]
    NoCuda { device: String, count: usize },
    #[error("devices `{0}` mix backends; their numbers would differ, so one run uses one backend")]
    Mixed(String),
    #[error(
        "stage `{stage}`: precision = \"{precision}\" needs a libtorch device (`--device tch-cpu` or `cuda:N`); burn's flex CPU backend computes in fp32"
    )]
    Precision { stage: String, precision: String },
}

/// CUDA devices libtorch can see (0 without the `tch` feature).
pub fn cuda_count() -> usize {
    #[cfg(feature = "tch")]
    {
        tch::Cuda::device_count().max(0) as usize
    }
    #[cfg(not(feature = "tch"))]
    0
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

    /// Fails early when the build or the machine cannot serve the device.
    pub fn check(&self) -> Result<(), DeviceError> {
        match self {
            Self::Cpu => Ok(()),
            _ if !cfg!(feature = "tch") => Err(DeviceError::NoLibtorch(self.to_string())),
            Self::Cuda(n) if *n >= cuda_count() => Err(DeviceError::NoCuda {
                device: self.to_string(),
                count: cuda_count(),
            }),
            _ => Ok(()),
        }
    }

    /// The plain (inference) burn device.
    #[allow(deprecated)] // burn-tch: deprecated upstream, our only CUDA path offline
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

/// `--device`: one device, a comma-separated list of GPUs, or `cuda:all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Devices(Vec<DeviceChoice>);

impl FromStr for Devices {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, DeviceError> {
        if s == "cuda:all" {
            let n = cuda_count();
            if !cfg!(feature = "tch") {
                return Err(DeviceError::NoLibtorch(s.into()));
            }
            if n == 0 {
                return Err(DeviceError::NoCuda {
                    device: s.into(),
                    count: 0,
                });
            }
            return Ok(Devices((0..n).map(DeviceChoice::Cuda).collect()));
        }
        let list: Vec<DeviceChoice> = s
            .split(',')
            .map(|d| d.trim().parse())
            .collect::<Result<_, _>>()?;
        if list.iter().any(|d| d.backend() != list[0].backend()) {
            return Err(DeviceError::Mixed(s.into()));
        }
        let mut unique = list.clone();
        unique.dedup();
        Ok(Devices(unique))
    }
}

impl fmt::Display for Devices {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<String> = self.0.iter().map(|d| d.to_string()).collect();
        write!(f, "{}", names.join(","))
    }
}

impl Devices {
    pub fn one(d: DeviceChoice) -> Devices {
        Devices(vec![d])
    }

    pub fn list(&self) -> &[DeviceChoice] {
        &self.0
    }

    /// The backend they share (keys record it).
    pub fn first(&self) -> DeviceChoice {
        self.0[0]
    }

    pub fn check(&self) -> Result<(), DeviceError> {
        self.0.iter().try_for_each(|d| d.check())
    }
}

/// Free devices; a stage takes one and gives it back when done.
pub struct Pool {
    free: std::sync::Mutex<Vec<DeviceChoice>>,
    wake: std::sync::Condvar,
}

impl Pool {
    pub fn new(devices: &Devices) -> Pool {
        Pool {
            free: std::sync::Mutex::new(devices.0.iter().rev().copied().collect()),
            wake: std::sync::Condvar::new(),
        }
    }

    /// Block until a device is free; it returns to the pool when the guard drops.
    pub fn take(&self) -> Lease<'_> {
        let mut free = self.free.lock().expect("pool lock");
        loop {
            if let Some(d) = free.pop() {
                return Lease {
                    pool: self,
                    device: d,
                };
            }
            free = self.wake.wait(free).expect("pool lock");
        }
    }
}

pub struct Lease<'a> {
    pool: &'a Pool,
    pub device: DeviceChoice,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.pool.free.lock().expect("pool lock").push(self.device);
        self.pool.wake.notify_one();
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
        } else if cuda_count() == 0 {
            assert!(
                DeviceChoice::Cuda(0)
                    .check()
                    .unwrap_err()
                    .to_string()
                    .contains("sees 0 CUDA device")
            );
        }
    }

    #[test]
    fn device_lists_and_the_pool() {
        let two: Devices = "cuda:0,cuda:1".parse().unwrap();
        assert_eq!(two.list(), [DeviceChoice::Cuda(0), DeviceChoice::Cuda(1)]);
        assert_eq!(two.to_string(), "cuda:0,cuda:1");
        assert!(matches!(
            "cpu,cuda:0".parse::<Devices>(),
            Err(DeviceError::Mixed(_))
        ));
        // Each lease holds a distinct device until dropped.
        let pool = Pool::new(&two);
        let a = pool.take();
        let b = pool.take();
        assert_ne!(a.device, b.device);
        drop(a);
        assert_eq!(pool.take().device, DeviceChoice::Cuda(0));
    }
}
