//! The developer verbs' modules: flags (`Args`, clap derive) and `run`. The user verbs are the
//! `safefs` crate's.

pub(crate) mod fuzz;
pub(crate) mod soak;
