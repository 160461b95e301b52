//! The toolkit from a program of your own: a file replaced whole, a verified copy, and status
//! files that only the one running instance writes. `cargo run -p toolkit --example library`.

use toolkit::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("toolkit-example-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("roms"))?;

    // Replaced whole: a crash leaves the old or the new version, never a mix.
    write_atomic(dir.join("roms/game.sfc"), b"rom bytes")?;

    // A verified copy; its report prints as one line.
    let report = copy(dir.join("roms"), dir.join("backup"), &CopyOptions::default(), &())?;
    assert!(report.is_success() && report.copied == 1, "{report}");

    // One daemon at a time; its status files are always whole and stay inside `dir`.
    let status = StatusWriter::acquire(dir.join("daemon.pid"), &dir)?;
    status.write("status.json", br#"{"step": 1}"#)?;
    assert!(status.write("../elsewhere.json", b"{}").is_err());

    drop(status);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
