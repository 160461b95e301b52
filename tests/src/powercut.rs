//! A power-cut file system: a FUSE file system in memory that keeps every change pending until it
//! is synced, and on command drops everything pending, as a disk's volatile cache loses it when
//! the power goes (the model of the LazyFS research tool).
//!
//! Two images of the tree are kept: the *live* one that processes see, and the *durable* one that
//! would be found after a reboot. What moves a change from live to durable:
//!
//! - `fsync`/`fdatasync` of a file: its data, size and attributes (not its name in any directory);
//! - `fsync` of a directory: its entries (create, rename, unlink, link, mkdir, symlink in it). An
//!   entry made durable for a file whose data never was shows that file empty: the 0-byte file
//!   that ext4's delayed allocation leaves after a rename without a data sync.
//!
//! `sync(2)` and `syncfs(2)` make nothing durable here, as on every FUSE file system but virtiofs:
//! the kernel sends no request for them. A [`PowerCut::cut`] replaces the live image with the
//! durable one. A cut of the other kind ([`Cut::NamesCommitted`]) first commits every pending
//! directory change but no unsynced data, as a journal commit just before the power went would:
//! that is how a rename without a data sync becomes a 0-byte file. To cut *during* an operation, [`PowerCut::arm`] freezes the file system at the
//! N-th request it receives (the request is held, unanswered); the test then cuts, kills the
//! writer and thaws: the held request fails with `EIO` and is never applied, and every request
//! until [`PowerCut::resume`] fails the same way, so a dying writer cannot change the image after
//! the cut. [`Campaign`] does all of this at many N.
//!
//! The kernel is told to cache nothing (entry and attribute lifetimes of zero, direct I/O), so
//! what a reader sees after a cut is the durable image, not a cached page.
//!
//! Mounting needs `/dev/fuse` and the right to mount (root here); [`PowerCut::mount`] returns
//! `None` (loudly) on a developer machine without them and fails when `CI=true`.
#![allow(clippy::too_many_arguments)] // the signatures are fuser's

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    TimeOrNow, WriteFlags,
};

/// The kernel caches nothing: every lookup and stat asks the file system, so a cut shows at once.
const TTL: Duration = Duration::ZERO;
const ROOT: u64 = 1;

#[derive(Clone, Debug)]
enum Content {
    File(Vec<u8>),
    Dir(BTreeMap<OsString, u64>),
    Symlink(PathBuf),
}

#[derive(Clone, Debug)]
struct Inode {
    content: Content,
    perm: u16,
    uid: u32,
    gid: u32,
    nlink: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
}

impl Inode {
    fn new(content: Content, perm: u16, req: &Request) -> Inode {
        let now = SystemTime::now();
        let nlink = if matches!(content, Content::Dir(_)) { 2 } else { 1 };
        Inode {
            content,
            perm,
            uid: req.uid(),
            gid: req.gid(),
            nlink,
            atime: now,
            mtime: now,
            ctime: now,
        }
    }

    fn attr(&self, ino: u64) -> FileAttr {
        let (kind, size) = match &self.content {
            Content::File(data) => (FileType::RegularFile, data.len() as u64),
            Content::Dir(entries) => (FileType::Directory, entries.len() as u64),
            Content::Symlink(target) => (FileType::Symlink, target.as_os_str().len() as u64),
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: self.atime,
            mtime: self.mtime,
            ctime: self.ctime,
            crtime: self.ctime,
            kind,
            perm: self.perm,
            nlink: self.nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn kind(&self) -> FileType {
        self.attr(0).kind
    }

    /// What a directory sync records for an entry whose inode was never synced itself: the inode
    /// as created (a file without its data, a directory without its entries).
    fn as_created(&self) -> Inode {
        let mut created = self.clone();
        match &mut created.content {
            Content::File(data) => data.clear(),
            Content::Dir(entries) => entries.clear(),
            Content::Symlink(_) => {} // written whole by the symlink call that creates it
        }
        created
    }
}

/// One image of the tree: inode number to inode; the root is inode 1.
#[derive(Clone, Debug)]
struct Image {
    nodes: HashMap<u64, Inode>,
}

impl Image {
    /// Keeps only what the root reaches and recounts links: what a reboot (and fsck) would find.
    fn reachable(&self) -> Image {
        let mut nodes = HashMap::new();
        let mut links: HashMap<u64, u32> = HashMap::new();
        let mut stack = vec![ROOT];
        while let Some(ino) = stack.pop() {
            if nodes.contains_key(&ino) {
                continue;
            }
            let Some(node) = self.nodes.get(&ino) else { continue };
            if let Content::Dir(entries) = &node.content {
                for child in entries.values() {
                    *links.entry(*child).or_default() += 1;
                    stack.push(*child);
                }
            }
            nodes.insert(ino, node.clone());
        }
        for (ino, node) in &mut nodes {
            let entries = links.get(ino).copied().unwrap_or(1);
            let subdirs = match &node.content {
                Content::Dir(entries) => entries
                    .values()
                    .filter(|c| {
                        matches!(self.nodes.get(c).map(|n| &n.content), Some(Content::Dir(_)))
                    })
                    .count() as u32,
                _ => 0,
            };
            node.nlink =
                if matches!(node.content, Content::Dir(_)) { 2 + subdirs } else { entries };
        }
        // Entries naming an inode this image lacks (never happens through `sync_dir`, which
        // records such inodes as created) are dropped rather than shown dangling.
        let known: std::collections::HashSet<u64> = nodes.keys().copied().collect();
        for node in nodes.values_mut() {
            if let Content::Dir(entries) = &mut node.content {
                entries.retain(|_, child| known.contains(child));
            }
        }
        Image { nodes }
    }
}

/// A durable image to go back to between the cuts of a campaign.
#[derive(Clone, Debug)]
pub struct Snapshot(Image);

#[derive(Debug)]
struct State {
    live: Image,
    durable: Image,
    next_ino: u64,
    /// Requests received since the last [`PowerCut::arm`].
    requests: u64,
    freeze_at: Option<u64>,
    frozen: bool,
    /// Set by a cut: requests fail with `EIO` and change nothing until [`PowerCut::resume`].
    quarantined: bool,
    /// `fsync`/`fdatasync` calls on files and directories since the last arm.
    syncs: u64,
    /// When set, every `fsync` and `fsyncdir` fails with this errno and makes nothing durable.
    fail_sync: Option<i32>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every request passes here first: counts it, freezes at the armed request, and refuses
    /// requests after a cut. The guard it returns is held while the request is applied.
    fn enter(&self) -> Result<MutexGuard<'_, State>, Errno> {
        let mut state = self.lock();
        if state.quarantined {
            return Err(Errno::EIO);
        }
        state.requests += 1;
        if state.freeze_at == Some(state.requests) {
            state.frozen = true;
            self.changed.notify_all();
            while state.frozen {
                state = self.changed.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        }
        if state.quarantined {
            return Err(Errno::EIO);
        }
        Ok(state)
    }
}

struct Fs(Arc<Shared>);

/// A mounted power-cut file system and the handle that cuts its power.
pub struct PowerCut {
    shared: Arc<Shared>,
    mountpoint: tempfile::TempDir,
    session: Option<BackgroundSession>,
}

impl PowerCut {
    /// Mounts an empty power-cut file system on a fresh temporary directory.
    ///
    /// `None` (said loudly) where FUSE is unavailable on a developer machine; a failure on CI.
    pub fn mount() -> Option<PowerCut> {
        let on_ci = std::env::var("CI").is_ok_and(|v| v == "true");
        if !Path::new("/dev/fuse").exists() {
            assert!(!on_ci, "/dev/fuse is required on CI for the power-cut tests");
            eprintln!("\n!!! SKIPPED: /dev/fuse is missing; the power-cut tests need FUSE !!!\n");
            return None;
        }
        let now = SystemTime::now();
        let root = Inode {
            content: Content::Dir(BTreeMap::new()),
            perm: 0o755,
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
            nlink: 2,
            atime: now,
            mtime: now,
            ctime: now,
        };
        let image = Image { nodes: HashMap::from([(ROOT, root)]) };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                live: image.clone(),
                durable: image,
                next_ino: ROOT + 1,
                requests: 0,
                freeze_at: None,
                frozen: false,
                quarantined: false,
                syncs: 0,
                fail_sync: None,
            }),
            changed: Condvar::new(),
        });
        let mountpoint = tempfile::Builder::new().prefix("powercut-").tempdir().unwrap();
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("powercut".into()),
            MountOption::Subtype("powercut".into()),
            MountOption::DefaultPermissions,
            MountOption::RW,
        ];
        match fuser::spawn_mount(Fs(Arc::clone(&shared)), mountpoint.path(), &config) {
            Ok(session) => Some(PowerCut { shared, mountpoint, session: Some(session) }),
            Err(err) => {
                assert!(!on_ci, "cannot mount the power-cut file system on CI: {err}");
                eprintln!("\n!!! SKIPPED: cannot mount the power-cut file system: {err} !!!\n");
                None
            }
        }
    }

    /// Where the file system is mounted.
    pub fn path(&self) -> &Path {
        self.mountpoint.path()
    }

    /// A clean shutdown: everything live becomes durable (the way tests lay out a starting tree).
    pub fn sync_all(&self) {
        let mut state = self.shared.lock();
        state.durable = state.live.reachable();
    }

    /// The durable image, to [`restore`](Self::restore) later.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot(self.shared.lock().durable.reachable())
    }

    /// Makes `snapshot` both the live and the durable image (the file system must be idle).
    pub fn restore(&self, snapshot: &Snapshot) {
        let mut state = self.shared.lock();
        state.live = snapshot.0.clone();
        state.durable = snapshot.0.clone();
    }

    /// Counts requests from zero again, and freezes at the `at`-th one from now (`None`: never).
    pub fn arm(&self, at: Option<u64>) {
        let mut state = self.shared.lock();
        state.requests = 0;
        state.syncs = 0;
        state.freeze_at = at;
    }

    /// Requests received since the last [`arm`](Self::arm).
    pub fn requests(&self) -> u64 {
        self.shared.lock().requests
    }

    /// File and directory syncs received since the last [`arm`](Self::arm).
    pub fn syncs(&self) -> u64 {
        self.shared.lock().syncs
    }

    /// From now on every `fsync` fails with `errno` (`None`: syncs work again), as on a file
    /// system that cannot sync.
    pub fn fail_syncs(&self, errno: Option<i32>) {
        self.shared.lock().fail_sync = errno;
    }

    /// Waits until the armed request arrives (true) or every child has exited first (false).
    pub fn wait_frozen(&self, children: &mut [Child]) -> bool {
        let start = std::time::Instant::now();
        let mut state = self.shared.lock();
        loop {
            if state.frozen {
                return true;
            }
            if children.iter_mut().all(|child| child.try_wait().unwrap().is_some()) {
                return false;
            }
            assert!(start.elapsed() < crate::DEADLINE, "writers neither froze nor ended in time");
            // A bounded wait so the children's exit is noticed too; the freeze itself notifies.
            state = self
                .shared
                .changed
                .wait_timeout(state, Duration::from_millis(5))
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// The power goes: the live image becomes the durable one, and every request fails until
    /// [`resume`](Self::resume) (a held request too, once [`thaw`](Self::thaw)ed).
    pub fn cut(&self) {
        self.cut_with(Cut::DropPending);
    }

    /// [`cut`](Self::cut) in the given manner.
    pub fn cut_with(&self, how: Cut) {
        let mut state = self.shared.lock();
        if how == Cut::NamesCommitted {
            let dirs: Vec<u64> = state
                .live
                .reachable()
                .nodes
                .iter()
                .filter(|(_, node)| matches!(node.content, Content::Dir(_)))
                .map(|(ino, _)| *ino)
                .collect();
            for dir in dirs {
                sync_dir(&mut state, dir);
            }
        }
        state.live = state.durable.reachable();
        state.durable = state.live.clone();
        state.quarantined = true;
    }

    /// Lets a held request go on (it fails if the power was cut meanwhile) and freezes no more.
    pub fn thaw(&self) {
        let mut state = self.shared.lock();
        state.frozen = false;
        state.freeze_at = None;
        self.shared.changed.notify_all();
    }

    /// After the cut writer is gone: the file system serves requests again ("rebooted").
    pub fn resume(&self) {
        self.shared.lock().quarantined = false;
    }

    /// Cut the power while `children` run, at the armed request: freeze there, cut, SIGKILL
    /// every child, thaw, reap them, resume. False if all ended before the request came (then
    /// the power is cut after they ended).
    pub fn cut_during(&self, children: &mut [Child], how: Cut) -> bool {
        let froze = self.wait_frozen(children);
        self.cut_with(how);
        for child in children.iter_mut() {
            // The child's whole process group (see [`quiet`]), then the child itself.
            if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = child.kill();
        }
        self.thaw();
        for child in children.iter_mut() {
            let _ = child.wait();
        }
        self.resume();
        froze
    }
}

impl Drop for PowerCut {
    fn drop(&mut self) {
        self.thaw();
        self.resume();
        if let Some(session) = self.session.take() {
            let _ = session.umount_and_join();
        }
        // Still mounted (a leftover process kept it busy): detach it, so no stale mount of a
        // dead server is left behind.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let path = self.mountpoint.path().to_string_lossy().into_owned();
        if mounts.lines().any(|l| l.split(' ').nth(1) == Some(path.as_str())) {
            let _ = Command::new("umount").arg("-l").arg(&path).status();
        }
    }
}

/// What a power cut keeps of the changes still pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Nothing: only what was synced survives (the disk cache lost everything else).
    DropPending,
    /// Every pending directory change (a journal commit just before the cut), but no unsynced
    /// data: a file renamed or created without a data sync is empty, as ext4's delayed
    /// allocation leaves it.
    NamesCommitted,
}

/// A campaign of power cuts against one operation, started afresh from one snapshot each time.
pub struct Campaign<'a> {
    /// The mounted file system.
    pub fs: &'a PowerCut,
    /// The state every run starts from.
    pub start: Snapshot,
}

/// What a campaign did.
#[derive(Debug, Default, Clone, Copy)]
pub struct CampaignReport {
    /// Requests an uncut run sends.
    pub requests: u64,
    /// Cuts made during the operation.
    pub cuts_during: u64,
    /// Cuts made right after it returned.
    pub cuts_after: u64,
}

impl Campaign<'_> {
    /// Runs `spawn`'s process uncut to count its requests, then cuts at up to `max_cuts` request
    /// numbers spread over that run (each once, the first and last included, alternating the
    /// two kinds of [`Cut`]), and after two complete runs (one cut of each kind). Each run starts from the snapshot, then `prepare` (e.g. files written
    /// but not synced, which a snapshot cannot hold), then `spawn`. `check(after_return,
    /// exit_code)` judges the image after each cut (`exit_code` is that of the complete run when
    /// `after_return`).
    pub fn run(
        &self,
        max_cuts: u64,
        mut prepare: impl FnMut(),
        mut spawn: impl FnMut() -> Child,
        mut check: impl FnMut(bool, Option<i32>),
    ) -> CampaignReport {
        let mut report = CampaignReport::default();
        // Uncut runs: how many requests the operation sends, and a cut of each kind after it
        // returned.
        for how in [Cut::DropPending, Cut::NamesCommitted] {
            self.fs.restore(&self.start);
            prepare();
            self.fs.arm(None);
            let mut child = spawn();
            let code = crate::wait_within(&mut child);
            report.requests = report.requests.max(self.fs.requests());
            self.fs.cut_with(how);
            self.fs.resume();
            check(true, code);
            report.cuts_after += 1;
        }
        let total = report.requests.max(1);
        let step = total.div_ceil(max_cuts.max(1)).max(1);
        let mut at = 1;
        while at <= total {
            self.fs.restore(&self.start);
            prepare();
            self.fs.arm(Some(at));
            let mut child: Child = spawn();
            // Alternately drop everything pending and commit the names without the data.
            let how =
                if report.cuts_during % 2 == 0 { Cut::DropPending } else { Cut::NamesCommitted };
            if !self.fs.cut_during(std::slice::from_mut(&mut child), how) {
                // Ended before request `at` (runs differ a little): the cut came after the end.
                let code = child.wait().ok().and_then(|s| s.code());
                check(true, code);
                report.cuts_after += 1;
            } else {
                check(false, None);
                report.cuts_during += 1;
            }
            at = if at < total && at + step > total { total } else { at + step };
        }
        self.fs.restore(&self.start);
        report
    }
}

/// A command with stdin closed and its output discarded, for a campaign's writer.
/// Each runs in a process group of its own, so that a cut kills what it started too (the
/// producer `once` runs, say), as a power cut would.
pub fn quiet(mut cmd: Command) -> Command {
    use std::os::unix::process::CommandExt as _;
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    cmd
}

impl Fs {
    /// unlink and rmdir alike: the entry goes from the live image; the durable one keeps it until
    /// the directory is synced.
    fn remove(&self, parent: INodeNo, name: &OsStr, dir: bool, reply: ReplyEmpty) {
        let mut state = match self.0.enter() {
            Ok(state) => state,
            Err(errno) => return reply.error(errno),
        };
        match remove_entry(&mut state, parent.0, name, dir) {
            Ok(()) => reply.ok(),
            Err(errno) => reply.error(errno),
        }
    }

    /// fsync and fsyncdir alike: a directory makes its entries durable, a file its data and size
    /// (fdatasync is treated as fsync: the model keeps no metadata that only fsync would flush).
    fn sync(&self, ino: INodeNo, reply: ReplyEmpty) {
        let mut state = match self.0.enter() {
            Ok(state) => state,
            Err(errno) => return reply.error(errno),
        };
        state.syncs += 1;
        if let Some(errno) = state.fail_sync {
            return reply.error(Errno::from_i32(errno));
        }
        match state.live.nodes.get(&ino.0).cloned() {
            Some(node) if matches!(node.content, Content::Dir(_)) => {
                sync_dir(&mut state, ino.0);
                reply.ok();
            }
            Some(node) => {
                state.durable.nodes.insert(ino.0, node);
                reply.ok();
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn new_inode(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        content: Content,
        perm: u16,
        reply: impl FnOnce(Result<(u64, FileAttr), Errno>),
    ) {
        let mut state = match self.0.enter() {
            Ok(state) => state,
            Err(errno) => return reply(Err(errno)),
        };
        let ino = state.next_ino;
        let result = (|| {
            let is_dir = matches!(content, Content::Dir(_));
            let dir = dir_mut(&mut state.live, parent.0)?;
            if dir.contains_key(name) {
                return Err(Errno::EEXIST);
            }
            dir.insert(name.to_owned(), ino);
            let node = Inode::new(content, perm, req);
            let attr = node.attr(ino);
            state.live.nodes.insert(ino, node);
            touch(&mut state.live, parent.0, is_dir as i32);
            state.next_ino += 1;
            Ok((ino, attr))
        })();
        reply(result);
    }
}

fn dir_mut(image: &mut Image, ino: u64) -> Result<&mut BTreeMap<OsString, u64>, Errno> {
    match image.nodes.get_mut(&ino).map(|n| &mut n.content) {
        Some(Content::Dir(entries)) => Ok(entries),
        Some(_) => Err(Errno::ENOTDIR),
        None => Err(Errno::ENOENT),
    }
}

/// A directory's entries changed: its times, and its link count by `subdirs`.
fn touch(image: &mut Image, ino: u64, subdirs: i32) {
    if let Some(node) = image.nodes.get_mut(&ino) {
        let now = SystemTime::now();
        node.mtime = now;
        node.ctime = now;
        node.nlink = node.nlink.saturating_add_signed(subdirs);
    }
}

fn lookup_in(image: &Image, parent: u64, name: &OsStr) -> Result<u64, Errno> {
    match image.nodes.get(&parent).map(|n| &n.content) {
        Some(Content::Dir(entries)) => entries.get(name).copied().ok_or(Errno::ENOENT),
        Some(_) => Err(Errno::ENOTDIR),
        None => Err(Errno::ENOENT),
    }
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

/// Removes `name` from `parent`: one link fewer for its inode (kept while open: it may be).
fn remove_entry(state: &mut State, parent: u64, name: &OsStr, want_dir: bool) -> Result<(), Errno> {
    let ino = lookup_in(&state.live, parent, name)?;
    let node = state.live.nodes.get(&ino).ok_or(Errno::ENOENT)?;
    match (&node.content, want_dir) {
        (Content::Dir(entries), true) if !entries.is_empty() => return Err(Errno::ENOTEMPTY),
        (Content::Dir(_), false) => return Err(Errno::EISDIR),
        (Content::Dir(_), true) => {}
        (_, true) => return Err(Errno::ENOTDIR),
        (_, false) => {}
    }
    dir_mut(&mut state.live, parent)?.remove(name);
    touch(&mut state.live, parent, -(want_dir as i32));
    if let Some(node) = state.live.nodes.get_mut(&ino) {
        node.nlink = node.nlink.saturating_sub(1);
        node.ctime = SystemTime::now();
    }
    Ok(())
}

impl Filesystem for Fs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let state = match self.0.enter() {
            Ok(state) => state,
            Err(errno) => return reply.error(errno),
        };
        match lookup_in(&state.live, parent.0, name)
            .and_then(|ino| state.live.nodes.get(&ino).map(|n| n.attr(ino)).ok_or(Errno::ENOENT))
        {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(errno) => reply.error(errno),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let state = match self.0.enter() {
            Ok(state) => state,
            Err(errno) => return reply.error(errno),
        };
        match state.live.nodes.get(&ino.0) {
            Some(node) => reply.attr(&TTL, &node.attr(ino.0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut state = match self.0.enter() {
            Ok(state) => state,
            Err(errno) => return reply.error(errno),
        };
        let Some(node) = state.live.nodes.get_mut(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        if let Some(size) = size {
            match &mut node.content {
                Content::File(data) => data.resize(size as usize, 0),
                Content::Dir(_) => return reply.error(Errno::EISDIR),
                Content::Symlink(_) => return reply.error(Errno::EINVAL),
            }
            node.mtime = SystemTime::now();
        }
        if let Some(mode) = mode {
            node.perm = (mode & 0o7777) as u16;
        }
        if let Some(uid) = uid {
            node.uid = uid;
        }
        if let Some(gid) = gid {
            node.gid = gid;
        }
        if let Some(atime) = atime {
            node.atime = time(atime);
        }
        if let Some(mtime) = mtime {
            node.mtime = time(mtime);
        }
        node.ctime = SystemTime::now();
        reply.attr(&TTL, &node.attr(ino.0));
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let state = match self.0.enter() {
            Ok(state) => state,
            Err(errno) => return reply.error(errno),
        };
        match state.live.nodes.get(&ino.0).map(|n| &n.content) {
            Some(Content::Symlink(target)) => reply.data(target.as_os_str().as_encoded_bytes()),
            Some(_) => reply.error(Errno::EINVAL),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let perm = (mode & !umask & 0o7777) as u16;
        self.new_inode(req, parent, name, Content::Dir(BTreeMap::new()), perm, |r| match r {
            Ok((_, attr)) => reply.entry(&TTL, &attr, Generation(0)),
            Err(errno) => reply.error(errno),
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, false, reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, true, reply);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        self.new_inode(req, parent, link_name, Content::Symlink(target.to_owned()), 0o777, |r| {
            match r {
                Ok((_, attr)) => reply.entry(&TTL, &attr, Generation(0)),
                Err(errno) => reply.error(errno),
            }
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut state = match self.0.enter() {
            Ok(state) => state,
            Err(errno) => return reply.error(errno),
        };
        let result = (|| {
            let ino = lookup_in(&state.live, parent.0, name)?;
            let replaced = match lookup_in(&state.live, newparent.0, newname) {
                Ok(old) => Some(old),
                Err(Errno::ENOENT) => None,
                Err(errno) => return Err(errno),
            };
            let is_dir =
                matches!(state.live.nodes.get(&ino).map(|n| &n.content), Some(Content::Dir(_)));
            if flags.contains(RenameFlags::RENAME_EXCHANGE) {
                let other = replaced.ok_or(Errno::ENOENT)?;
                dir_mut(&mut state.live, parent.0)?.insert(name.to_owned(), other);
                dir_mut(&mut state.live, newparent.0)?.insert(newname.to_owned(), ino);
                touch(&mut state.live, parent.0, 0);
                touch(&mut state.live, newparent.0, 0);
                return Ok(());
            }
            if replaced == Some(ino) {
                return Ok(()); // two names of one inode: rename(2) does nothing
            }
            if replaced.is_some() {
                if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                    return Err(Errno::EEXIST);
                }
                remove_entry(&mut state, newparent.0, newname, is_dir)?;
            }
            dir_mut(&mut state.live, parent.0)?.remove(name);
            touch(&mut state.live, parent.0, -(is_dir as i32));
            dir_mut(&mut state.live, newparent.0)?.insert(newname.to_owned(), ino);
            touch(&mut state.live, newparent.0, is_dir as i32);
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(errno) => reply.error(errno),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let mut state = match self.0.enter() {
            Ok(state) => state,
            Err(errno) => return reply.error(errno),
        };
        let result = (|| {
            let node = state.live.nodes.get(&ino.0).ok_or(Errno::ENOENT)?;
            if matches!(node.content, Content::Dir(_)) {
                return Err(Errno::EPERM);
            }
            let dir = dir_mut(&mut state.live, newparent.0)?;
            if dir.contains_key(newname) {
                return Err(Errno::EEXIST);
            }
            dir.insert(newname.to_owned(), ino.0);
            touch(&mut state.live, newparent.0, 0);
            let node = state.live.nodes.get_mut(&ino.0).ok_or(Errno::ENOENT)?;
            node.nlink += 1;
            node.ctime = SystemTime::now();
            Ok(node.attr(ino.0))
        })();
        match result {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(errno) => reply.error(errno),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let state = match self.0.enter() {
            Ok(state) => state,
            Err(errno) => return reply.error(errno),
        };
        if state.live.nodes.contains_key(&ino.0) {
            reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let state = match self.0.enter() {
            Ok(state) => state,
            Err(errno) => return reply.error(errno),
        };
        match state.live.nodes.get(&ino.0).map(|n| &n.content) {
            Some(Content::File(data)) => {
                let start = (offset as usize).min(data.len());
                let end = start.saturating_add(size as usize).min(data.len());
                reply.data(&data[start..end]);
            }
            Some(_) => reply.error(Errno::EISDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut state = match self.0.enter() {
            Ok(state) => state,
            Err(errno) => return reply.error(errno),
        };
        let Some(node) = state.live.nodes.get_mut(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let Content::File(content) = &mut node.content else { return reply.error(Errno::EISDIR) };
        let end = offset as usize + data.len();
        if content.len() < end {
            content.resize(end, 0);
        }
        content[offset as usize..end].copy_from_slice(data);
        let now = SystemTime::now();
        node.mtime = now;
        node.ctime = now;
        reply.written(data.len() as u32);
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) makes nothing durable.
        match self.0.enter() {
            Ok(_) => reply.ok(),
            Err(errno) => reply.error(errno),
        }
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.sync(ino, reply);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let state = match self.0.enter() {
            Ok(state) => state,
            Err(errno) => return reply.error(errno),
        };
        match state.live.nodes.get(&ino.0).map(|n| &n.content) {
            Some(Content::Dir(_)) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Some(_) => reply.error(Errno::ENOTDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let state = match self.0.enter() {
            Ok(state) => state,
            Err(errno) => return reply.error(errno),
        };
        let Some(Content::Dir(entries)) = state.live.nodes.get(&ino.0).map(|n| &n.content) else {
            return reply.error(Errno::ENOTDIR);
        };
        let listing = [
            (ino.0, FileType::Directory, OsStr::new(".")),
            (ino.0, FileType::Directory, OsStr::new("..")),
        ]
        .into_iter()
        .chain(entries.iter().map(|(name, child)| {
            let kind = state.live.nodes.get(child).map_or(FileType::RegularFile, Inode::kind);
            (*child, kind, name.as_os_str())
        }));
        for (i, (child, kind, name)) in listing.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.sync(ino, reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.0.enter() {
            // 64 GiB free in 4 KiB blocks: room for any test tree.
            Ok(_) => reply.statfs(1 << 24, 1 << 24, 1 << 24, 1 << 20, 1 << 20, 4096, 255, 4096),
            Err(errno) => reply.error(errno),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let perm = (mode & !umask & 0o7777) as u16;
        self.new_inode(req, parent, name, Content::File(Vec::new()), perm, |r| match r {
            Ok((_, attr)) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(errno) => reply.error(errno),
        });
    }
}

/// A directory's entries become durable; an entry's inode that never was durable is recorded
/// as created (empty), as a journal records the inode with the entry.
fn sync_dir(state: &mut State, ino: u64) {
    let Some(dir) = state.live.nodes.get(&ino).cloned() else { return };
    if let Content::Dir(entries) = &dir.content {
        for child in entries.values() {
            if !state.durable.nodes.contains_key(child)
                && let Some(node) = state.live.nodes.get(child)
            {
                state.durable.nodes.insert(*child, node.as_created());
            }
        }
    }
    state.durable.nodes.insert(ino, dir);
}
