//! The walk: every entry of a snapshot, classified with `lstat`. Nothing is followed, nothing is
//! opened; verification and sealing match what the manifest says against what this walk found, so
//! a path that goes through a symlink is never resolved by the file system on our behalf.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use checksum::FileKind;

/// What the walk found at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    /// A regular file, its length and its ctime (seconds, nanoseconds) at the time of the walk.
    File { len: u64, ctime: (i64, i64) },
    /// A real directory (descended into).
    Dir,
    /// A symbolic link (never followed).
    Symlink,
    /// A FIFO, socket or device (never opened).
    Special(FileKind),
}

/// Everything under a snapshot directory, by path relative to it.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    /// Every entry found, directories included.
    pub(crate) nodes: HashMap<PathBuf, Node>,
    /// Entries (usually directories) that could not be listed or examined, relative to the root.
    pub(crate) errors: Vec<(PathBuf, io::Error)>,
}

impl Tree {
    /// The walk error that explains why `rel` could not be seen, if one of its ancestors (or
    /// `rel` itself) could not be listed.
    pub(crate) fn error_above(&self, rel: &Path) -> Option<&(PathBuf, io::Error)> {
        self.errors.iter().find(|(path, _)| rel.starts_with(path))
    }
}

/// Walks `root` without following any symlink. An error listing `root` itself is returned; errors
/// further down are collected in [`Tree::errors`] and the walk goes on.
pub(crate) fn walk(root: &Path) -> io::Result<Tree> {
    let mut tree = Tree::default();
    for entry in walkdir::WalkDir::new(root).follow_links(false).min_depth(1) {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                let depth = err.depth();
                let path = err.path().map(Path::to_path_buf);
                let source = err
                    .into_io_error()
                    .unwrap_or_else(|| io::Error::other("file system loop found while walking"));
                match path {
                    Some(path) if depth > 0 || path != root => {
                        let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                        tree.errors.push((rel, source));
                    }
                    _ => return Err(source),
                }
                continue;
            }
        };
        // Proof the strip cannot fail: walkdir yields paths that start with the root it was given.
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path()).to_path_buf();
        let file_type = entry.file_type();
        let node = if file_type.is_dir() {
            Node::Dir
        } else if file_type.is_symlink() {
            Node::Symlink
        } else {
            // `metadata` is `lstat` here (links are not followed).
            match entry.metadata() {
                Ok(meta) => match FileKind::of(&meta) {
                    None => {
                        Node::File { len: meta.len(), ctime: (meta.ctime(), meta.ctime_nsec()) }
                    }
                    Some(kind) => Node::Special(kind),
                },
                Err(err) => {
                    let source = err.into_io_error().unwrap_or_else(|| io::Error::other("lstat"));
                    tree.errors.push((rel, source));
                    continue;
                }
            }
        };
        tree.nodes.insert(rel, node);
    }
    Ok(tree)
}

/// Where the symlink at `rel` points, and whether that target, read lexically from the link's own
/// directory, leaves the snapshot: an absolute target (which a copied or moved snapshot would not
/// contain) or one that climbs above the root with `..`. The target is never followed.
pub(crate) fn symlink_target(root: &Path, rel: &Path) -> (PathBuf, bool) {
    let target = match std::fs::read_link(root.join(rel)) {
        Ok(target) => target,
        // Vanished or unreadable since the walk: say so, and count it as leaving (it is not
        // something inside the snapshot that we can vouch for).
        Err(err) => return (PathBuf::from(format!("<unreadable: {err}>")), true),
    };
    let mut depth = rel.parent().map_or(0, |p| p.components().count()) as i64;
    let mut leaves = false;
    for component in target.components() {
        match component {
            Component::RootDir | Component::Prefix(_) => leaves = true,
            Component::CurDir => {}
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
        }
        if depth < 0 {
            leaves = true;
        }
    }
    (target, leaves)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn walk_classifies_without_following() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("d/f"), b"abc").unwrap();
        symlink(outside.path(), root.join("out")).unwrap();
        let tree = walk(root).unwrap();
        assert_eq!(tree.nodes[Path::new("d")], Node::Dir);
        assert!(matches!(tree.nodes[Path::new("d/f")], Node::File { len: 3, .. }));
        assert_eq!(tree.nodes[Path::new("out")], Node::Symlink);
        assert!(!tree.nodes.contains_key(Path::new("out/secret")), "followed a symlink");
        assert_eq!(tree.nodes.len(), 3);
    }

    #[test]
    fn symlink_targets_are_judged_lexically() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("d")).unwrap();
        for (rel, target, leaves) in [
            ("a", "/etc/passwd", true),
            ("b", "../x", true),
            ("d/c", "../x", false),
            ("d/e", "../../x", true),
            ("d/g", "./h/../../i", false),
            ("d/k", "h/../../../i", true),
            ("f", "d/c", false),
        ] {
            symlink(target, root.join(rel)).unwrap();
            let (found, left) = symlink_target(root, Path::new(rel));
            assert_eq!(found, Path::new(target));
            assert_eq!(left, leaves, "{rel} -> {target}");
        }
    }
}
