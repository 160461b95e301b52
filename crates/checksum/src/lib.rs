//! # checksum
//!
//! Streaming xxh3-64, xxh3-128 and xxh64 hashes of bytes, files and trees, and manifest lines read
//! and written in xxhsum's formats (GNU, BSD `--tag`, escaped names).
//!
//! **Status: not implemented yet** — issue #2 fills this crate. Nothing here works today, and
//! nothing pretends to: the crate exports no items until its guarantee is backed by tests.
#![forbid(unsafe_code)]
