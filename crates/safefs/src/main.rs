//! `safefs <verb>`: the installable command (`cargo install --path crates/safefs`).

fn main() -> std::process::ExitCode {
    safefs::main_with(std::env::args_os(), "safefs", None)
}
