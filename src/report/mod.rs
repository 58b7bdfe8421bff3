//! Reports over finished runs. [`claims`] checks the paper's claims on the
//! runs of the paper's specs.

pub mod claims;
