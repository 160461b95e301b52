//! A real one-host Ceph cluster for tests: a monitor, a manager, one OSD on an in-memory store,
//! an MDS serving CephFS, and an RGW answering S3, with authentication off. CephFS is mounted
//! twice through `ceph-fuse` under two client names, so a test sees two "hosts" sharing one file
//! system: locks, caches and sessions behave as between two machines.
//!
//! Everything lives under a fresh temporary directory (configuration, monitor store, sockets,
//! logs, mount points), and the monitor and RGW ports are chosen free when the cluster starts,
//! so clusters of several test binaries or engineers never collide. The daemons run in the
//! foreground as children of the test, their output in `log/` of that directory. [`Cluster::start`]
//! returns once the MDS is active, both mounts answer and RGW serves S3 requests, polling with
//! deadlines rather than sleeping. Dropping the [`Cluster`], a panicking test included, unmounts
//! both mounts (lazily if busy) and kills every daemon.
//!
//! The daemons are started through `setpriv --pdeathsig KILL`, so the kernel kills them when the
//! *thread* that called [`Cluster::start`] ends, even if the test process is killed before it can
//! drop the cluster. Start the cluster in the thread that uses it (a test's own thread, or
//! `main` of a `harness = false` binary), not in a short-lived helper thread.
//!
//! Starting a cluster takes seconds, not milliseconds: start one per test binary and run the
//! scenarios against it in turn. `cargo xtask bench` starts one too, for its `cephfs` and `s3`
//! groups when the user names no store of their own.
//!
//! Needs the Debian packages ceph-mon, ceph-osd, ceph-mgr, ceph-mds, radosgw, ceph-fuse and
//! ceph-common, plus curl, util-linux (`setpriv`), root and `/dev/fuse`. Without them
//! [`Cluster::start`] returns `None` after saying so loudly on a developer's machine, and fails the
//! test under `CI=true` (`.ci/run` installs the packages).
//!
//! ```no_run
//! use e2e::ceph::Cluster;
//!
//! let Some(cluster) = Cluster::start() else { return }; // skipped loudly, or failed on CI
//! // Two hosts sharing one CephFS.
//! std::fs::write(cluster.host_a().path().join("hello"), b"from a").unwrap();
//! assert_eq!(std::fs::read(cluster.host_b().path().join("hello")).unwrap(), b"from a");
//! // S3 through RGW, the way AWS tools take it.
//! let s3 = cluster.s3();
//! s3.create_bucket("models");
//! let status = std::process::Command::new("some-s3-tool").envs(s3.env()).status();
//! # drop(status);
//! ```

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::require_tool;

/// How long starting the cluster, or one step of a test's cluster command, may take before the
/// test fails: generous, since the machine may be shared and loaded.
pub const CLUSTER_DEADLINE: Duration = Duration::from_secs(180);

/// The Ceph programs [`Cluster::start`] runs.
const TOOLS: [&str; 9] = [
    "ceph-mon",
    "ceph-mgr",
    "ceph-osd",
    "ceph-mds",
    "radosgw",
    "radosgw-admin",
    "ceph-fuse",
    "ceph",
    "monmaptool",
];

/// A running one-host Ceph cluster with CephFS mounted twice and RGW serving S3; see the
/// [module documentation](self).
pub struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    /// Daemons in start order, killed in reverse order.
    daemons: Vec<Daemon>,
    hosts: [Host; 2],
    s3: S3,
    commands: AtomicUsize,
}

struct Daemon {
    name: String,
    child: Child,
}

/// One CephFS mount through its own `ceph-fuse` client: a "host" of the shared file system.
pub struct Host {
    client: String,
    mount: PathBuf,
    fuse: Option<Child>,
    mounted: bool,
}

/// Where and how to reach the cluster's RGW with S3 requests.
#[derive(Clone, Debug)]
pub struct S3 {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The access key of the RGW user created for the tests.
    pub access_key: String,
    /// Its secret key.
    pub secret_key: String,
    /// The region to sign requests for (RGW accepts any; AWS tools need one).
    pub region: String,
}

impl Cluster {
    /// Starts a cluster in a fresh temporary directory and returns once CephFS is mounted on both
    /// hosts and RGW answers; `None` (said loudly) when this machine lacks Ceph, curl, root or
    /// `/dev/fuse`, and a failed test then under `CI=true`.
    ///
    /// # Panics
    /// When a step fails or does not finish within [`CLUSTER_DEADLINE`]; the message names the
    /// step, and the daemons' logs are in the cluster's directory (kept when `CEPH_KEEP_DIR`
    /// is set, see [`Cluster::dir`]).
    pub fn start() -> Option<Cluster> {
        for tool in TOOLS.iter().chain(&["curl", "setpriv"]) {
            require_tool(tool)?;
        }
        if let Some(why) = crate::card::missing_privilege(&["/dev/fuse"]) {
            let on_ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!on_ci, "a Ceph cluster needs root and /dev/fuse on CI: {why}");
            eprintln!("\n!!! SKIPPED: cannot mount CephFS here: {why} !!!\n");
            return None;
        }
        let keep = std::env::var_os("CEPH_KEEP_DIR").is_some();
        let dir = tempfile::Builder::new()
            .prefix("ceph-")
            .disable_cleanup(keep)
            .tempdir()
            .expect("the cluster's temp dir");
        let started = Instant::now();
        let cluster = Cluster::boot(dir);
        eprintln!(
            "ceph cluster up in {:.1} s at {} (S3 at {})",
            started.elapsed().as_secs_f64(),
            cluster.dir().display(),
            cluster.s3.endpoint
        );
        Some(cluster)
    }

    fn boot(dir: tempfile::TempDir) -> Cluster {
        let root = dir.path().to_owned();
        for sub in
            ["run", "log", "mon", "mgr/ceph-x", "osd/ceph-0", "mds/ceph-a", "host-a", "host-b"]
        {
            std::fs::create_dir_all(root.join(sub)).expect("the cluster's directories");
        }
        let mon_port = free_port();
        let rgw_port = free_port();
        let fsid = uuid();
        let conf = root.join("ceph.conf");
        std::fs::write(&conf, config(&root, &fsid, mon_port)).expect("ceph.conf");
        let s3 = S3 {
            endpoint: format!("http://127.0.0.1:{rgw_port}"),
            access_key: format!("TEST{}", &fsid[..8]).to_uppercase(),
            secret_key: fsid.replace('-', ""),
            region: "us-east-1".to_owned(),
        };
        let host = |name: &str| Host {
            client: name.to_owned(),
            mount: root.join(name),
            fuse: None,
            mounted: false,
        };
        let mut cluster = Cluster {
            dir,
            conf,
            daemons: Vec::new(),
            hosts: [host("host-a"), host("host-b")],
            s3,
            commands: AtomicUsize::new(0),
        };

        let monmap = root.join("monmap");
        cluster.run(
            Command::new("monmaptool")
                .args(["--create", "--fsid", &fsid, "--addv", "a"])
                .arg(format!("[v2:127.0.0.1:{mon_port}]"))
                .arg(&monmap),
        );
        cluster.run(
            Command::new("ceph-mon")
                .args(["--mkfs", "-i", "a", "--monmap"])
                .arg(&monmap)
                .args(["-c"])
                .arg(&cluster.conf),
        );
        cluster.daemon("mon.a", "ceph-mon", &["-i", "a"]);
        cluster.daemon("mgr.x", "ceph-mgr", &["-i", "x"]);
        cluster.ceph(&["status"]);

        let osd_uuid = uuid();
        let id = cluster.ceph(&["osd", "new", &osd_uuid]);
        assert_eq!(id.trim(), "0", "the first OSD's id");
        let mkfs_osd = &mut Command::new("ceph-osd");
        mkfs_osd.args(["-c"]).arg(&cluster.conf).args([
            "-i",
            "0",
            "--mkfs",
            "--osd-uuid",
            &osd_uuid,
        ]);
        cluster.run(mkfs_osd);
        cluster.daemon("osd.0", "ceph-osd", &["-i", "0"]);

        cluster.ceph(&["osd", "pool", "create", "cephfs_metadata"]);
        cluster.ceph(&["osd", "pool", "create", "cephfs_data"]);
        cluster.ceph(&["fs", "new", "cephfs", "cephfs_metadata", "cephfs_data"]);
        cluster.daemon("mds.a", "ceph-mds", &["-i", "a"]);
        let frontend = format!("beast endpoint=127.0.0.1:{rgw_port}");
        cluster.daemon(
            "client.rgw",
            "radosgw",
            &["-n", "client.rgw", "--rgw_frontends", &frontend],
        );

        cluster.until("the MDS is active", || {
            cluster.ceph(&["mds", "stat"]).contains("up:active").then_some(())
        });
        for i in 0..2 {
            cluster.mount(i);
        }
        cluster.until("RGW answers HTTP", || rgw_answers(rgw_port).then_some(()));
        let (access, secret) = (cluster.s3.access_key.clone(), cluster.s3.secret_key.clone());
        let user = &mut Command::new("radosgw-admin");
        user.args(["-c"]).arg(&cluster.conf).args([
            "user",
            "create",
            "--uid",
            "tester",
            "--display-name",
            "tester",
            "--access-key",
            &access,
            "--secret-key",
            &secret,
        ]);
        cluster.run(user);
        cluster
    }

    /// Host A: the first `ceph-fuse` mount (client name `host-a`).
    pub fn host_a(&self) -> &Host {
        &self.hosts[0]
    }

    /// Host B: the second `ceph-fuse` mount (client name `host-b`) of the same file system.
    pub fn host_b(&self) -> &Host {
        &self.hosts[1]
    }

    /// The S3 endpoint and the credentials of an RGW user created for the tests.
    pub fn s3(&self) -> &S3 {
        &self.s3
    }

    /// The cluster's directory: `ceph.conf`, `log/` (each daemon's log and output), the mount
    /// points. Removed when the cluster is dropped, unless `CEPH_KEEP_DIR` is set in the
    /// environment (to read the logs after a failure).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The cluster's `ceph.conf`: pass it as `-c` to any Ceph tool.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// Runs `ceph ARGS...` against this cluster and returns its stdout; fails the test if the
    /// command fails or does not end within [`CLUSTER_DEADLINE`].
    ///
    /// ```no_run
    /// # let cluster = e2e::ceph::Cluster::start().unwrap();
    /// let clients = cluster.ceph(&["tell", "mds.a", "client", "ls"]);
    /// assert!(clients.contains("host-a"));
    /// ```
    pub fn ceph(&self, args: &[&str]) -> String {
        self.run(Command::new("ceph").arg("-c").arg(&self.conf).args(args))
    }

    /// Evicts `host`'s CephFS session at the MDS, as happens to a host that stopped answering:
    /// the MDS drops its locks and capabilities and blocklists the client, whose file operations
    /// then fail until it is mounted again.
    pub fn evict(&self, host: &Host) {
        let filter = format!("client_metadata.entity_id={}", host.client);
        self.ceph(&["tell", "mds.a", "client", "evict", &filter]);
    }

    /// Detaches `host`'s mount lazily (`umount -l`): open files stay usable for the processes
    /// that hold them until they close them, new lookups on the path no longer reach CephFS.
    pub fn unmount_lazily(&mut self, which: HostId) {
        let host = &mut self.hosts[which as usize];
        crate::card::run(Command::new("umount").arg("-l").arg(&host.mount));
        host.mounted = false;
    }

    /// Kills `host`'s `ceph-fuse` process (SIGKILL), as if the host crashed: its mount answers
    /// ENOTCONN from then on, and the MDS frees its locks only when its session times out.
    pub fn kill_client(&mut self, which: HostId) {
        let host = &mut self.hosts[which as usize];
        if let Some(mut fuse) = host.fuse.take() {
            let _ = fuse.kill();
            let _ = fuse.wait();
        }
    }

    /// Mounts `host` again after [`Cluster::unmount_lazily`], [`Cluster::kill_client`] or
    /// [`Cluster::evict`], with a fresh `ceph-fuse` under the same client name.
    pub fn remount(&mut self, which: HostId) {
        let i = which as usize;
        self.hosts[i].detach();
        self.mount(i);
    }

    fn mount(&mut self, i: usize) {
        let (client, mount) = (self.hosts[i].client.clone(), self.hosts[i].mount.clone());
        let parent_dev = std::fs::metadata(self.dir()).expect("the cluster's dir").dev();
        let log = self.dir().join(format!("log/{client}.out"));
        let fuse =
            self.spawn(Command::new("ceph-fuse").args(["-f", "--id", &client]).arg(&mount), &log);
        self.hosts[i].fuse = Some(fuse);
        self.hosts[i].mounted = true;
        let pid = self.hosts[i].fuse_pid();
        self.until(&format!("{client} mounts CephFS"), || {
            assert!(!pid.is_some_and(is_dead), "ceph-fuse of {client} died; see {}", log.display());
            let meta = std::fs::metadata(&mount).ok()?;
            (meta.dev() != parent_dev).then_some(())
        });
    }

    /// Spawns `program` with `args` and the cluster's configuration in the foreground, a child
    /// the kernel kills if the spawning thread ends first, output to `log/NAME.out`.
    fn daemon(&mut self, name: &str, program: &str, args: &[&str]) {
        let log = self.dir().join(format!("log/{name}.out"));
        let child = self.spawn(Command::new(program).args(args).arg("-f"), &log);
        self.daemons.push(Daemon { name: name.to_owned(), child });
    }

    fn spawn(&self, cmd: &mut Command, log: &Path) -> Child {
        let out = File::create(log).expect("a daemon's log file");
        let err = out.try_clone().expect("a daemon's log file");
        let mut wrapped = Command::new("setpriv");
        wrapped
            .args(["--pdeathsig", "KILL", "--"])
            .arg(cmd.get_program())
            .arg("-c")
            .arg(&self.conf)
            .args(cmd.get_args())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        wrapped.spawn().unwrap_or_else(|e| panic!("failed to start {cmd:?}: {e}"))
    }

    /// Runs a setup or control command to its end within [`CLUSTER_DEADLINE`]; its stdout.
    fn run(&self, cmd: &mut Command) -> String {
        let n = self.commands.fetch_add(1, Ordering::Relaxed);
        let out_path = self.dir().join(format!("log/command-{n}.out"));
        let err_path = self.dir().join(format!("log/command-{n}.err"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(&out_path).expect("a command's output file"))
            .stderr(File::create(&err_path).expect("a command's output file"))
            .spawn()
            .unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e}"));
        // Killed if the deadline passes or a daemon dies while it runs (the panic drops it).
        let mut child = KillOnDrop(child);
        let status = self.until(&format!("{cmd:?} ends"), || child.0.try_wait().ok().flatten());
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        assert!(status.success(), "{cmd:?} failed ({status}):\n{stdout}\n{stderr}");
        stdout
    }

    /// Polls `ready` until it gives a value; fails the test, naming `what`, when
    /// [`CLUSTER_DEADLINE`] passes first or a daemon has died meanwhile.
    fn until<T>(&self, what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(value) = ready() {
                return value;
            }
            self.assert_daemons_alive(what);
            assert!(
                start.elapsed() < CLUSTER_DEADLINE,
                "ceph: waited {CLUSTER_DEADLINE:?} for {what}; logs in {}",
                self.dir().display()
            );
            // Polling a condition under a deadline, not sleeping to synchronise.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn assert_daemons_alive(&self, during: &str) {
        for daemon in &self.daemons {
            assert!(
                !is_dead(daemon.child.id()),
                "ceph: {} died while waiting for {during}; see {}/log/{}.out and its .log",
                daemon.name,
                self.dir().display(),
                daemon.name
            );
        }
    }
}

/// Which of the two hosts, for the operations that change a mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostId {
    /// [`Cluster::host_a`].
    A = 0,
    /// [`Cluster::host_b`].
    B = 1,
}

impl Host {
    /// The mount point: CephFS's root directory as this host sees it.
    pub fn path(&self) -> &Path {
        &self.mount
    }

    /// The Ceph client name of this host's `ceph-fuse` (`host-a` or `host-b`, i.e. entity
    /// `client.host-a`).
    pub fn client(&self) -> &str {
        &self.client
    }

    /// The pid of this host's `ceph-fuse`, if it runs.
    pub fn fuse_pid(&self) -> Option<u32> {
        self.fuse.as_ref().map(Child::id)
    }

    fn detach(&mut self) {
        if std::mem::take(&mut self.mounted) {
            // A busy mount (a test's open file while it panics) or a dead client's mount
            // (ENOTCONN) is detached lazily instead.
            let ok = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.mount)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
            }
        }
        if let Some(mut fuse) = self.fuse.take() {
            let _ = fuse.kill();
            let _ = fuse.wait();
        }
    }
}

impl S3 {
    /// The environment AWS tools and the `object_store` crate read: `AWS_ENDPOINT_URL`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_DEFAULT_REGION` and
    /// `AWS_ALLOW_HTTP=true` (the endpoint is plain HTTP).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_DEFAULT_REGION", self.region.clone()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
    }

    /// Sends one S3 request signed with the test user's keys (`curl --aws-sigv4`) and returns
    /// the HTTP status and the body, e.g. `request("PUT", "/bucket", &[])`.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut curl = Command::new("curl");
        curl.args(["--silent", "--show-error", "--max-time", "60", "-X", method])
            .arg("--aws-sigv4")
            .arg(format!("aws:amz:{}:s3", self.region))
            .arg("--user")
            .arg(format!("{}:{}", self.access_key, self.secret_key))
            // curl 7.88 does not sign the payload hash RGW requires; declare it unsigned.
            .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
            .args(["--write-out", "\n%{http_code}"]);
        if !body.is_empty() {
            curl.args(["--data-binary", "@-", "-H", "Content-Type: application/octet-stream"]);
        }
        let mut child = curl
            .arg(format!("{}{path}", self.endpoint))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("failed to run curl");
        let mut stdin = child.stdin.take().expect("curl's stdin is piped");
        let body = body.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&body));
        let out = child.wait_with_output().expect("curl's output");
        let _ = writer.join();
        assert!(
            out.status.success(),
            "curl {method} {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut stdout = out.stdout;
        let split = stdout.iter().rposition(|&b| b == b'\n').expect("curl wrote the status line");
        let code = std::str::from_utf8(&stdout[split + 1..])
            .ok()
            .and_then(|c| c.trim().parse().ok())
            .expect("curl wrote an HTTP status");
        stdout.truncate(split);
        (code, stdout)
    }

    /// Creates `bucket` (an S3 `PUT /bucket`), failing the test unless RGW says 200.
    pub fn create_bucket(&self, bucket: &str) {
        let (code, body) = self.request("PUT", &format!("/{bucket}"), &[]);
        assert_eq!(code, 200, "creating bucket {bucket}: {}", String::from_utf8_lossy(&body));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for host in &mut self.hosts {
            host.detach();
        }
        for daemon in self.daemons.iter_mut().rev() {
            // Nothing of an in-memory test cluster is worth a clean shutdown.
            let _ = daemon.child.kill();
            let _ = daemon.child.wait();
        }
        if std::env::var_os("CEPH_KEEP_DIR").is_some() {
            eprintln!("ceph: cluster directory kept at {}", self.dir().display());
        }
    }
}

/// A command the cluster runs, killed if the test gives up on it.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Whether the child `pid` has ended (gone, or a zombie not yet waited for): `try_wait` would
/// need the `Child` mutably.
fn is_dead(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
    stat.map_or(true, |s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
}

/// The cluster's `ceph.conf`: no authentication (radosgw then needs the `crc` mode to talk to the
/// monitor), every path under `root`, one replica, few placement groups, an in-memory OSD whose
/// 4 GiB is only the size it reports (memory is taken as objects are written): room for the
/// benchmark's copy of the ROM-like tree beside the previous one that the MDS is still purging.
fn config(root: &Path, fsid: &str, mon_port: u16) -> String {
    let root = root.display();
    format!(
        "[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
keyring = /dev/null
run dir = {root}/run
log file = {root}/log/$name.log
mon data = {root}/mon/$cluster-$id
mgr data = {root}/mgr/$cluster-$id
osd data = {root}/osd/$cluster-$id
mds data = {root}/mds/$cluster-$id
osd objectstore = memstore
memstore device bytes = 4294967296
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 1
"
    )
}

/// A TCP port on the loopback that no one listens on now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("the bound address").port()
}

fn uuid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .expect("a uuid from the kernel")
        .trim()
        .to_owned()
}

/// Whether something answers `GET /` on the port with an HTTP status line.
fn rgw_answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
