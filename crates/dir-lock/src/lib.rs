//! # dir-lock
//!
//! Advisory locks (fs4) that the kernel frees when the holder dies and that a timeout never steals;
//! who holds a lock; a single-instance guard for daemons; produce an artifact exactly once.
//!
//! **Status: not implemented yet** — issue #4 fills this crate. Nothing here works today, and
//! nothing pretends to: the crate exports no items until its guarantee is backed by tests.
#![forbid(unsafe_code)]
