//! # toolkit
//!
//! The facade over the five crates: re-exports, a prelude and the composed workflows.
//!
//! **Status: not implemented yet** — issue #7 fills this crate. Nothing here works today, and
//! nothing pretends to: the crate exports no items until its guarantee is backed by tests.
#![forbid(unsafe_code)]
