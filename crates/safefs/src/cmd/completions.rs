//! `safefs completions SHELL` and `safefs man`: generated from the same clap definitions as the
//! verbs, so they cannot drift from the real flags. Both describe the installable `safefs`
//! command, the one a shell completes and `man` documents, also when `cargo xtask` prints them:
//! a script for `cargo xtask` would register a command no one types (`cargo` completes its own
//! subcommands).

use std::io::Write;
use std::process::ExitCode;

/// Flags of `completions`.
#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

const AFTER_HELP: &str = "\
The script completes the installed `safefs` command (also when `cargo xtask completions` prints it).

Exit codes:
  0  the script was printed
  2  usage error (an unknown shell)

Examples:
  safefs completions bash > ~/.local/share/bash-completion/completions/safefs
  safefs completions zsh > ~/.zfunc/_safefs";

/// Prints the script completing `command` (the `safefs` command line) under its own name.
pub(crate) fn run(args: Args, mut command: clap::Command) -> anyhow::Result<ExitCode> {
    let name = command.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The manual page in roff, on stdout.
pub(crate) fn man(command: clap::Command) -> anyhow::Result<ExitCode> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&page)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
