//! [`copy_and_seal`]: the ROM-collection story's whole job: copy verified, then seal the copy so
//! that any later reader can check it (`verify`, or plain `xxhsum -c`).

use folder_copier::{CopyOptions, CopyProgress, CopyReport};
use snapshot_verify::{SealSpec, Sealed, SnapshotProgress};
use std::path::Path;

use crate::{Error, Result};

/// What [`copy_and_seal`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct Mirrored {
    /// The copy: files copied, skipped, retried.
    pub copy: CopyReport,
    /// The seal of the destination: its manifest, and the verification run before it was renamed.
    pub sealed: Sealed,
}

/// What [`copy_and_seal`] tells while it works: the copy's progress, then the seal's. Every type
/// that follows both a copy and a snapshot has it, `()` among them.
pub trait MirrorProgress: CopyProgress + SnapshotProgress {}

impl<T: CopyProgress + SnapshotProgress + ?Sized> MirrorProgress for T {}

/// Copies the contents of `src` into `dst` ([`folder_copier::copy`]: one task per source
/// directory, each file hashed while written and read back), then, only if every entry was
/// copied or already up to date and the copy was not interrupted, seals `dst`
/// ([`snapshot_verify::seal`]: `dst/manifest.xxh128` and `dst/manifest.sizes`, written atomically
/// after the tree verifies against them).
///
/// An incomplete copy is [`Error::CopyIncomplete`] carrying the copy's report, and `dst` is not
/// sealed. The seal covers everything in `dst`, including files of its own that did not come from
/// `src`; a refused seal (an empty file, a symlink, ...) is [`Error::Snapshot`] listing every
/// reason. `progress` follows both: the copy, then the seal's two hashing passes (`&()` tells
/// nothing).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let root = dir.path();
/// use toolkit::prelude::*;
///
/// std::fs::create_dir_all(root.join("roms/snes"))?;
/// std::fs::write(root.join("roms/snes/game.sfc"), vec![7u8; 300_000])?;
/// let done = copy_and_seal(root.join("roms"), root.join("backup"), &CopyOptions::default(), &())?;
/// assert_eq!((done.copy.copied, done.sealed.files), (1, 1));
/// let report = verify(root.join("backup"), &VerifyOptions::default(), &())?;
/// assert!(report.problems.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn copy_and_seal(
    src: impl AsRef<Path>,
    dst: impl AsRef<Path>,
    opts: &CopyOptions,
    progress: &dyn MirrorProgress,
) -> Result<Mirrored> {
    let dst = dst.as_ref();
    let copy = folder_copier::copy(src, dst, opts, progress)?;
    if !copy.is_success() {
        return Err(Error::CopyIncomplete { dst: dst.to_owned(), report: Box::new(copy) });
    }
    let sealed = snapshot_verify::seal(dst, &SealSpec::default(), progress)?;
    Ok(Mirrored { copy, sealed })
}
