//! How long-running work reports to the user: a bar position, a message,
//! and log lines. The scheduler implements it with indicatif and a log file;
//! tests use [`Silent`].

pub trait Progress: Send + Sync {
    /// Total units of work (batches, images) for the current phase.
    fn set_total(&self, total: u64);
    fn set_position(&self, pos: u64);
    /// Short status shown beside the bar (`epoch 2/4 loss 0.41`).
    fn set_message(&self, msg: String);
    /// A line for the stage's log file.
    fn log(&self, line: &str);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn set_total(&self, _: u64) {}
    fn set_position(&self, _: u64) {}
    fn set_message(&self, _: String) {}
    fn log(&self, _: &str) {}
}
