//! Deterministic example trees, for `demo` and the benchmarks (`cargo xtask bench`): the same spec
//! always gives the same names and bytes, on any machine.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// A tree to generate: `dirs` folders of `files_per_dir` files whose sizes are drawn log-uniformly
/// from `min_size..=max_size`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeSpec {
    /// The tree's folder name under the data directory.
    pub name: &'static str,
    /// How many folders.
    pub dirs: usize,
    /// How many files in each.
    pub files_per_dir: usize,
    /// Smallest file size in bytes.
    pub min_size: u64,
    /// Largest file size in bytes.
    pub max_size: u64,
    /// Seed of the names, sizes and contents.
    pub seed: u64,
}

/// Bump when the generator's output changes, so cached trees are regenerated.
const GENERATOR_VERSION: u32 = 1;

impl TreeSpec {
    /// The trees of the issue: many small files, a ROM-like collection, a few large files.
    /// `quick` shrinks them about 20x: a smoke test of the harness, not a measurement.
    pub fn standard(quick: bool) -> Vec<TreeSpec> {
        let (small_dirs, rom_files, large) =
            if quick { (10, 1, 12 << 20) } else { (200, 13, 256 << 20) };
        vec![
            TreeSpec {
                name: "small",
                dirs: small_dirs,
                files_per_dir: 50,
                min_size: 1 << 10,
                max_size: 16 << 10,
                seed: 1,
            },
            TreeSpec {
                name: "rom",
                dirs: 40,
                files_per_dir: rom_files,
                min_size: 16 << 10,
                max_size: 4 << 20,
                seed: 2,
            },
            TreeSpec {
                name: "large",
                dirs: 1,
                files_per_dir: 3,
                min_size: large,
                max_size: large,
                seed: 3,
            },
        ]
    }

    /// The trees for growth: 100,000 tiny files (100 folders of 1,000, 64 B–4 KiB), and the
    /// ROM-like tree ten times over (400 folders of 13 files, about 3.5 GiB). `quick` shrinks
    /// them about 20x.
    pub fn huge(quick: bool) -> Vec<TreeSpec> {
        let (tiny_dirs, rom_dirs) = if quick { (5, 20) } else { (100, 400) };
        vec![
            TreeSpec {
                name: "tiny100k",
                dirs: tiny_dirs,
                files_per_dir: 1000,
                min_size: 64,
                max_size: 4 << 10,
                seed: 5,
            },
            TreeSpec {
                name: "rom10x",
                dirs: rom_dirs,
                files_per_dir: 13,
                min_size: 16 << 10,
                max_size: 4 << 20,
                seed: 6,
            },
        ]
    }

    fn marker(&self) -> String {
        format!("generator {GENERATOR_VERSION} {self:?}\n")
    }

    /// Every file of the tree: relative path and size, in generation order.
    pub fn files(&self) -> Vec<(PathBuf, u64)> {
        let mut rng = SplitMix64(self.seed);
        let mut files = Vec::with_capacity(self.dirs * self.files_per_dir);
        // Log-uniform between the bounds; 1 stands in for 0 (ln 0 is not a number), so a tree of
        // empty files is `min_size: 0, max_size: 0`.
        let (lo, hi) = ((self.min_size.max(1) as f64).ln(), (self.max_size.max(1) as f64).ln());
        for d in 0..self.dirs {
            for f in 0..self.files_per_dir {
                let unit = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
                let size = (lo + unit * (hi - lo)).exp().round() as u64;
                let size = size.clamp(self.min_size, self.max_size);
                files.push((PathBuf::from(format!("dir{d:03}/file{f:04}.bin")), size));
            }
        }
        files
    }

    /// Total bytes of the tree.
    pub fn bytes(&self) -> u64 {
        self.files().iter().map(|(_, size)| size).sum()
    }
}

/// How a benchmark table names the tree: ``tree `rom` (520 files in 40 folders, 360 MiB)``.
impl std::fmt::Display for TreeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tree `{}` ({} files in {} folders, {} MiB)",
            self.name,
            self.dirs * self.files_per_dir,
            self.dirs,
            self.bytes() >> 20
        )
    }
}

/// The tree at `data_dir/<name>`, generated unless a marker says it already holds this spec.
pub fn ensure_tree(data_dir: &Path, spec: &TreeSpec) -> anyhow::Result<PathBuf> {
    let root = data_dir.join(spec.name);
    let marker = data_dir.join(format!("{}.spec", spec.name));
    if fs::read_to_string(&marker).is_ok_and(|m| m == spec.marker()) && root.is_dir() {
        return Ok(root);
    }
    say!(
        "bench: generating tree `{}` ({} MiB) in {}",
        spec.name,
        spec.bytes() >> 20,
        root.display()
    );
    let _ = fs::remove_file(&marker);
    if root.exists() {
        fs::remove_dir_all(&root).with_context(|| format!("cannot remove {}", root.display()))?;
    }
    generate(&root, spec)?;
    fs::write(&marker, spec.marker())
        .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(root)
}

/// Writes the tree of `spec` under `root` (created if missing), without a marker: files already
/// there under the same names are overwritten, others left alone.
pub fn generate(root: &Path, spec: &TreeSpec) -> anyhow::Result<()> {
    let mut rng = SplitMix64(spec.seed ^ 0x5eed);
    let mut buf = vec![0u8; 1 << 20];
    for (rel, size) in spec.files() {
        let path = root.join(&rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let mut file =
            fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            fill(&mut rng, &mut buf[..n]);
            file.write_all(&buf[..n])
                .with_context(|| format!("cannot write {}", path.display()))?;
            left -= n as u64;
        }
    }
    Ok(())
}

/// Incompressible bytes from the generator.
fn fill(rng: &mut SplitMix64, buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        let word = rng.next().to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// SplitMix64: tiny, fast, and good enough to make test data incompressible and reproducible.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_spec_same_tree_different_seed_different_tree() {
        let spec = TreeSpec {
            name: "t",
            dirs: 3,
            files_per_dir: 4,
            min_size: 10,
            max_size: 5000,
            seed: 7,
        };
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ra = ensure_tree(a.path(), &spec).unwrap();
        let rb = ensure_tree(b.path(), &spec).unwrap();
        for (rel, size) in spec.files() {
            let (x, y) = (fs::read(ra.join(&rel)).unwrap(), fs::read(rb.join(&rel)).unwrap());
            assert_eq!(x.len() as u64, size);
            assert_eq!(x, y, "{}", rel.display());
            assert!((10..=5000).contains(&size));
        }
        let other = TreeSpec { seed: 8, ..spec.clone() };
        assert_ne!(other.files(), spec.files());
    }

    #[test]
    fn a_cached_tree_is_reused_and_a_changed_spec_regenerated() {
        let dir = tempfile::tempdir().unwrap();
        let spec =
            TreeSpec { name: "t", dirs: 1, files_per_dir: 2, min_size: 1, max_size: 9, seed: 1 };
        let root = ensure_tree(dir.path(), &spec).unwrap();
        fs::write(root.join("sentinel"), b"kept while the spec is the same").unwrap();
        ensure_tree(dir.path(), &spec).unwrap();
        assert!(root.join("sentinel").exists());
        ensure_tree(dir.path(), &TreeSpec { files_per_dir: 3, ..spec }).unwrap();
        assert!(!root.join("sentinel").exists());
        assert_eq!(fs::read_dir(root.join("dir000")).unwrap().count(), 3);
    }

    #[test]
    fn a_tree_of_empty_files() {
        let spec =
            TreeSpec { name: "e", dirs: 1, files_per_dir: 3, min_size: 0, max_size: 0, seed: 1 };
        assert!(spec.files().iter().all(|(_, size)| *size == 0));
    }
}
