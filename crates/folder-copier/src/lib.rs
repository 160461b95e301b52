//! # folder-copier
//!
//! Verified tree copy, one rayon task per source directory: every destination file is absent, the
//! previous version, or the complete new version whose size and xxh3 hash match the source.
//!
//! **Status: not implemented yet** — issue #5 fills this crate. Nothing here works today, and
//! nothing pretends to: the crate exports no items until its guarantee is backed by tests.
#![forbid(unsafe_code)]
