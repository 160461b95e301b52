//! # atomic-io
//!
//! A file written through this crate is, at every instant and after a crash at any point, either
//! absent or the old content, or the complete new content: never partial. Orphaned temp files can be
//! swept without ever touching a live writer's temp. Reads with hard size limits.
//!
//! **Status: not implemented yet** — issue #3 fills this crate. Nothing here works today, and
//! nothing pretends to: the crate exports no items until its guarantee is backed by tests.
#![forbid(unsafe_code)]
