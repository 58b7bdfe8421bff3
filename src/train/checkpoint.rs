//! Epoch checkpoints: a training phase saves its weights, optimizer state
//! and history after every epoch (and mid-epoch when asked to stop), and a
//! rerun of the same stage — the same cache key — resumes from there. The
//! batches are a function of (seed, epoch) and the learning rate of the
//! step, so a resumed phase ends bit for bit where an uninterrupted one
//! would. Checkpoints live in `<cache>/checkpoints/<key>/<phase>/` and are
//! removed when the stage's entry is saved.
//!
//! Parameter ids: the checkpoint keeps the live ids (not `stable_ids`), so
//! the optimizer state, keyed by id, matches the weights it is loaded with.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use super::EpochRecord;

thread_local! {
    // A stage computes on one thread, so its checkpoint folder is that thread's.
    static ROOT: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Set (by SIGUSR1, Slurm's warning before a time limit or preemption):
/// training checkpoints after the current batch and stops.
pub static STOP: AtomicBool = AtomicBool::new(false);

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Run `f` with training phases checkpointing under `root`.
pub fn with_root<T>(root: PathBuf, f: impl FnOnce() -> T) -> T {
    let before = ROOT.with(|r| r.replace(Some(root)));
    let out = f();
    ROOT.with(|r| *r.borrow_mut() = before);
    out
}

/// Where phase `name` checkpoints, if this thread checkpoints at all.
pub fn phase_dir(name: &str) -> Option<PathBuf> {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    ROOT.with(|r| r.borrow().as_ref().map(|root| root.join(safe)))
}

/// Where a phase stands.
#[derive(Debug, Clone)]
pub struct State {
    /// Epochs finished.
    pub epochs_done: u32,
    /// Batches of the next epoch already taken (a mid-epoch stop), with
    /// that epoch's running loss sum and example count.
    pub batches_done: usize,
    pub sum: f64,
    pub count: usize,
    pub history: Vec<EpochRecord>,
    /// Validation accuracy of `best.bpk` (`keep = "best"`).
    pub best: Option<f64>,
}

/// [`State`] on disk, floats as their bits: serde_json's default parser
/// may change the last bit of a float, and a resumed run must end equal.
#[derive(Serialize, Deserialize)]
struct Saved {
    epochs_done: u32,
    batches_done: usize,
    sum: u64,
    count: usize,
    /// `(phase, epoch, train_loss, val_accuracy, val_accuracy_mnl, seconds)`.
    history: Vec<(String, u32, u64, u64, Option<u64>, u64)>,
    best: Option<u64>,
    /// The exp build that wrote it (absent before 2026-12-08). Cache keys
    /// leave the code version out, so a rerun on another build resumes too;
    /// the log says so.
    #[serde(default)]
    build: Option<String>,
}

impl From<&State> for Saved {
    fn from(s: &State) -> Saved {
        Saved {
            epochs_done: s.epochs_done,
            batches_done: s.batches_done,
            sum: s.sum.to_bits(),
            count: s.count,
            history: s
                .history
                .iter()
                .map(|h| {
                    (
                        h.phase.clone(),
                        h.epoch,
                        h.train_loss.to_bits(),
                        h.val_accuracy.to_bits(),
                        h.val_accuracy_mnl.map(f64::to_bits),
                        h.seconds.to_bits(),
                    )
                })
                .collect(),
            best: s.best.map(f64::to_bits),
            build: Some(BUILD.to_string()),
        }
    }
}

impl From<Saved> for State {
    fn from(s: Saved) -> State {
        State {
            epochs_done: s.epochs_done,
            batches_done: s.batches_done,
            sum: f64::from_bits(s.sum),
            count: s.count,
            history: s
                .history
                .into_iter()
                .map(|(phase, epoch, loss, val, mnl, secs)| EpochRecord {
                    phase,
                    epoch,
                    train_loss: f64::from_bits(loss),
                    val_accuracy: f64::from_bits(val),
                    val_accuracy_mnl: mnl.map(f64::from_bits),
                    seconds: f64::from_bits(secs),
                })
                .collect(),
            best: s.best.map(f64::from_bits),
        }
    }
}

/// Save atomically: into `<dir>.tmp`, then swapped in.
pub fn save<M: Module>(
    dir: &Path,
    model: &M,
    optim: &ModuleOptimizer,
    state: &State,
    best: Option<&M>,
) -> Result<(), String> {
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("`{}`: {e}", tmp.display()))?;
    let err = |e: &dyn std::fmt::Display| format!("checkpoint `{}`: {e}", tmp.display());
    model
        .clone()
        .save_file(tmp.join("model.bpk"))
        .map_err(|e| err(&e))?;
    if let Some(b) = best {
        b.clone()
            .save_file(tmp.join("best.bpk"))
            .map_err(|e| err(&e))?;
    }
    optim
        .to_record()
        .save(tmp.join("optim.bpk"))
        .map_err(|e| err(&e))?;
    std::fs::write(
        tmp.join("state.json"),
        serde_json::to_vec(&Saved::from(state)).expect("state serializes"),
    )
    .map_err(|e| err(&e))?;
    let old = dir.with_extension("old");
    let _ = std::fs::remove_dir_all(&old);
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| err(&e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| err(&e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// The build writing checkpoints (`build.rs`; the run records' `exp_build`
/// is the same string).
pub const BUILD: &str = env!("EXP_BUILD_COMMIT");

/// What the resume message adds when the checkpoint came from another
/// build: nothing when `written_by` is `this`. Keys leave the code version
/// out (as they do for cache entries), so such a resume is allowed, but a
/// reader of the log should know the phase's epochs span two builds.
pub fn another_build(written_by: Option<&str>, this: &str) -> String {
    match written_by {
        Some(b) if b == this => String::new(),
        Some(b) => format!(" (written by exp build {b}; this is {this})"),
        None => format!(" (written by an exp build that did not record itself; this is {this})"),
    }
}

/// What a checkpoint restores.
pub struct Restored<M> {
    pub model: M,
    pub optim: burn::optim::OptimizerRecord,
    pub state: State,
    pub best: Option<M>,
    /// The build that wrote it (`None`: one that did not record itself).
    pub build: Option<String>,
}

/// Load the checkpoint in `dir` into `model`'s architecture, or `None` if
/// there is none (an unreadable one is reported through `warn` and
/// ignored: the phase starts over).
pub fn load<M: Module>(dir: &Path, model: &M, warn: impl Fn(&str)) -> Option<Restored<M>> {
    // A crash between the two renames of `save` leaves only `<phase>.old`.
    let old = dir.with_extension("old");
    let dir = if !dir.join("state.json").exists() && old.join("state.json").exists() {
        old.as_path()
    } else {
        dir
    };
    let saved: Saved = serde_json::from_slice(&std::fs::read(dir.join("state.json")).ok()?).ok()?;
    let build = saved.build.clone();
    let state = State::from(saved);
    let restored = (|| -> Result<Restored<M>, String> {
        let model = model
            .clone()
            .try_load_file(dir.join("model.bpk"))
            .map_err(|e| e.to_string())?;
        let best = if state.best.is_some() {
            Some(
                model
                    .clone()
                    .try_load_file(dir.join("best.bpk"))
                    .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        let optim =
            burn::optim::OptimizerRecord::load(dir.join("optim.bpk")).map_err(|e| e.to_string())?;
        Ok(Restored {
            model,
            optim,
            state: state.clone(),
            best,
            build,
        })
    })();
    match restored {
        Ok(r) => Some(r),
        Err(e) => {
            warn(&format!(
                "warning: checkpoint `{}` is unreadable ({e}); starting the phase over",
                dir.display()
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_checkpoint_records_this_build_and_older_files_read_as_unknown() {
        let state = State {
            epochs_done: 3,
            batches_done: 0,
            sum: 0.0,
            count: 0,
            history: Vec::new(),
            best: None,
        };
        let json = serde_json::to_vec(&Saved::from(&state)).unwrap();
        let back = serde_json::from_slice::<Saved>(&json).unwrap();
        assert_eq!(back.build.as_deref(), Some(BUILD));
        let older =
            r#"{"epochs_done":1,"batches_done":0,"sum":0,"count":0,"history":[],"best":null}"#;
        let back = serde_json::from_slice::<Saved>(older.as_bytes()).unwrap();
        assert_eq!(back.build, None);
    }

    #[test]
    fn the_resume_message_names_another_build_and_is_silent_for_this_one() {
        assert_eq!(another_build(Some("abc"), "abc"), "");
        assert_eq!(
            another_build(Some("abc"), "def"),
            " (written by exp build abc; this is def)"
        );
        assert!(another_build(None, "def").contains("did not record itself"));
    }
}
