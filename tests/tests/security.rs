//! Security cases of the reliability harness: temp files are created exclusively under names
//! nobody can predict and readable by the owner only until committed; lock files are never
//! world-writable, whatever the umask. (Symlinks planted in a copy destination or a snapshot are
//! covered by `folder-copier`'s and `snapshot-verify`'s own tests; see GUARANTEES.md.)

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use e2e::{assert_exit, require_tool, xtask_path};

#[test]
fn temps_are_created_exclusively_owner_only_with_unpredictable_names() {
    let Some(strace) = require_tool("strace") else { return };
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("secret.txt");
    fs::write(&target, b"old").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
    let mut names = HashSet::new();
    for _ in 0..10 {
        let out = Command::new(&strace)
            .env_remove("LD_LIBRARY_PATH")
            .args(["-qq", "-e", "trace=openat,fchmod,write", "-o", "/dev/stdout"])
            .arg(xtask_path())
            .arg("write")
            .arg(&target)
            .stdin(Stdio::from(fs::File::open("/etc/hostname").unwrap()))
            .output()
            .unwrap();
        assert_exit(&out, 0);
        let log = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = log.lines().collect();
        let create = lines
            .iter()
            .position(|l| l.contains(".secret.txt.atomic-"))
            .unwrap_or_else(|| panic!("no temp was opened:\n{log}"));
        let line = lines[create];
        assert!(line.contains("O_CREAT|O_EXCL"), "not exclusive: {line}");
        assert!(line.contains(", 0600) = "), "not created owner-only: {line}");
        let fd = line.rsplit("= ").next().unwrap();
        // The mode is settled before any byte of content is written into the temp: by an fchmod
        // before the first write, or already at creation when the final mode is the one it was
        // created with (0600 here; atomic-io makes no chmod that changes nothing).
        let first_write =
            lines[create..].iter().position(|l| l.starts_with(&format!("write({fd},")));
        let chmod = lines[create..].iter().position(|l| l.starts_with(&format!("fchmod({fd},")));
        assert!(
            matches!((chmod, first_write), (Some(c), Some(w)) if c < w)
                || (chmod.is_none() && first_write.is_some()),
            "the temp's mode must be set before it holds data:\n{log}"
        );
        let name = line.split('"').nth(1).unwrap().rsplit('/').next().unwrap().to_owned();
        let random = name.trim_start_matches(".secret.txt.atomic-").trim_end_matches(".tmp");
        assert_eq!(random.len(), 10, "{name}");
        assert!(random.chars().all(|c| c.is_ascii_alphanumeric()), "{name}");
        names.insert(random.to_owned());
    }
    assert_eq!(names.len(), 10, "temp names repeat: {names:?}");
    assert_eq!(fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn lock_files_are_not_world_writable_even_with_umask_0() {
    let dir = tempfile::tempdir().unwrap();
    let x = xtask_path().to_str().unwrap().to_owned();
    let script =
        "umask 000; \"$0\" lock held.lock -- true && \"$0\" once art -- sh -c 'echo x > {}'";
    let out = Command::new("sh").args(["-c", script, &x]).current_dir(dir.path()).output().unwrap();
    assert_exit(&out, 0);
    for name in ["held.lock", "art.lock"] {
        let mode = fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o022, 0, "{name} is writable by others: {mode:o}");
    }
    // The artifact itself is an ordinary new file: 0666 less the umask, as `>` would make it.
    let art = fs::metadata(dir.path().join("art")).unwrap().permissions().mode() & 0o777;
    assert_eq!(art, 0o666);
}
