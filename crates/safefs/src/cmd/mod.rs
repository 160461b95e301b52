//! One module per verb: its flags (`Args`, clap derive) and `run`, which maps the library's result
//! onto terminal output and an exit code.

pub(crate) mod check;
pub(crate) mod completions;
pub(crate) mod copy;
pub(crate) mod demo;
pub(crate) mod hash;
pub(crate) mod jsonl;
pub(crate) mod latest;
pub(crate) mod lock;
pub(crate) mod once;
pub(crate) mod remote;
pub(crate) mod seal;
pub(crate) mod sweep;
pub(crate) mod verify;
pub(crate) mod write;
