//! One module per verb: its flags (`Args`, clap derive) and `run`, which maps the library's result
//! onto terminal output and an exit code.

pub(crate) mod check;
pub(crate) mod copy;
pub(crate) mod demo;
pub(crate) mod fuzz;
pub(crate) mod hash;
pub(crate) mod jsonl;
pub(crate) mod latest;
pub(crate) mod lock;
pub(crate) mod once;
pub(crate) mod seal;
pub(crate) mod soak;
pub(crate) mod sweep;
pub(crate) mod verify;
pub(crate) mod write;

/// The error of a verb whose issue has not landed yet: said plainly, exit code 2, no pretending.
pub(crate) fn not_yet(verb: &str, issue: u32) -> anyhow::Error {
    anyhow::anyhow!("`{verb}` is not implemented yet (issue #{issue}); nothing was done")
}
