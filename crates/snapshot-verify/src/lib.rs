//! # snapshot-verify
//!
//! Seal a directory with an xxh128 manifest, verify it (every problem reported by path and kind),
//! and find the newest snapshot under a root that still verifies.
//!
//! **Status: not implemented yet** — issue #6 fills this crate. Nothing here works today, and
//! nothing pretends to: the crate exports no items until its guarantee is backed by tests.
#![forbid(unsafe_code)]
