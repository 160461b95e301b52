//! A TCP proxy in front of an S3 server, for faults a healthy server never shows: one that
//! ignores conditional writes, and a connection cut in the middle of an upload.
//!
//! It works at the HTTP layer without parsing more than it must: into each request it adds
//! `Connection: close` after the request line (a header the client did not sign, so the
//! signature still holds), so every connection carries exactly one request and one response.
//!
//! - [`Fault::IgnoreConditions`]: a `412 Precondition Failed` or `304 Not Modified` answer is
//!   turned into `200 OK`. The client then sees what a server that ignores `If-None-Match` and
//!   `If-Match` would answer: every create-if-absent and every compare-and-swap "succeeds". (The
//!   server behind still refused the write, so the stored object is not replaced: only what the
//!   client is told is simulated, with a made-up `ETag`, as such a server sends one. Headers
//!   cannot be stripped instead: the client signs them.)
//! - [`Fault::CutUploadsAfter`]: a request whose body goes past N bytes has both its sockets shut
//!   at that byte, as a dropped network or a killed server would.
//! - [`Fault::HoldUploadsAfter`]: a request whose body goes past N bytes stops there until the
//!   test calls [`Proxy::release`]; [`Proxy::wait_held`] returns once one is held, so a test
//!   can act in the middle of an upload without sleeping.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// What the proxy does to the traffic.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Pass everything through.
    None,
    /// Report refused conditional writes as successful.
    IgnoreConditions,
    /// Cut any connection once the client has sent this many bytes of one request.
    CutUploadsAfter(u64),
    /// Stop forwarding a request once the client has sent this many bytes of it, until
    /// [`Proxy::release`].
    HoldUploadsAfter(u64),
}

/// Requests held by [`Fault::HoldUploadsAfter`], and whether the test released them.
#[derive(Default)]
struct Gate {
    state: Mutex<(u64, bool)>,
    changed: Condvar,
}

/// A running proxy; stops accepting when dropped.
pub struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
    /// Connections cut by [`Fault::CutUploadsAfter`] so far.
    cuts: Arc<AtomicU64>,
    gate: Arc<Gate>,
}

impl Proxy {
    /// Listens on a free local port and forwards to `upstream` (`host:port`).
    pub fn start(upstream: &str, fault: Fault) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(Gate::default());
        let upstream = upstream.to_owned();
        let (stop2, cuts2, gate2) = (stop.clone(), cuts.clone(), gate.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (upstream, cuts, gate) = (upstream.clone(), cuts2.clone(), gate2.clone());
                std::thread::spawn(move || relay(client, &upstream, fault, &cuts, &gate));
            }
        });
        Proxy { port, stop, cuts, gate }
    }

    /// Waits until [`Fault::HoldUploadsAfter`] holds a request (failing the test after
    /// [`crate::DEADLINE`]).
    pub fn wait_held(&self) {
        let start = Instant::now();
        let mut state = self.gate.state.lock().unwrap();
        while state.0 == 0 {
            assert!(start.elapsed() < crate::DEADLINE, "the proxy held no upload");
            state = self.gate.changed.wait_timeout(state, crate::DEADLINE).unwrap().0;
        }
    }

    /// Lets every held request, and every later one, through.
    pub fn release(&self) {
        self.gate.state.lock().unwrap().1 = true;
        self.gate.changed.notify_all();
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many connections were cut.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.release();
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn relay(client: TcpStream, upstream: &str, fault: Fault, cuts: &AtomicU64, gate: &Arc<Gate>) {
    let Ok(server) = TcpStream::connect(upstream) else { return };
    let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let cut = Arc::new(AtomicBool::new(false));
    let cut2 = cut.clone();
    let (client2, server2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let gate = gate.clone();
    let up = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        let mut head = Vec::new();
        let mut sent_head = false;
        let mut total = 0u64;
        loop {
            let n = match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut chunk = &buf[..n];
            if !sent_head {
                head.extend_from_slice(chunk);
                let Some(eol) = head.windows(2).position(|w| w == b"\r\n") else { continue };
                let mut out = head[..eol + 2].to_vec();
                out.extend_from_slice(b"Connection: close\r\n");
                out.extend_from_slice(&head[eol + 2..]);
                if s_write.write_all(&out).is_err() {
                    break;
                }
                total += out.len() as u64;
                sent_head = true;
                chunk = &[];
            }
            if let Fault::CutUploadsAfter(limit) = fault
                && total + chunk.len() as u64 > limit
            {
                let keep = limit.saturating_sub(total) as usize;
                let _ = s_write.write_all(&chunk[..keep.min(chunk.len())]);
                cut2.store(true, Ordering::SeqCst);
                let _ = server2.shutdown(Shutdown::Both);
                let _ = client2.shutdown(Shutdown::Both);
                return;
            }
            if let Fault::HoldUploadsAfter(limit) = fault
                && total + chunk.len() as u64 > limit
                && !gate.state.lock().unwrap().1
            {
                let mut state = gate.state.lock().unwrap();
                state.0 += 1;
                gate.changed.notify_all();
                while !state.1 {
                    state = gate.changed.wait(state).unwrap();
                }
            }
            total += chunk.len() as u64;
            if s_write.write_all(chunk).is_err() {
                break;
            }
        }
        let _ = s_write.shutdown(Shutdown::Write);
    });
    let (mut s_read, mut c_write) = (server, client);
    let mut buf = vec![0u8; 64 << 10];
    let mut first = true;
    loop {
        let n = match s_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut chunk = buf[..n].to_vec();
        if first {
            first = false;
            if let Fault::IgnoreConditions = fault {
                for status in
                    [&b"HTTP/1.1 412 Precondition Failed"[..], b"HTTP/1.1 304 Not Modified"]
                {
                    if chunk.starts_with(status) {
                        // A server that ignored the condition stored the body and tagged it.
                        let mut out =
                            b"HTTP/1.1 200 OK\r\nETag: \"0123456789abcdef0123456789abcdef\""
                                .to_vec();
                        out.extend_from_slice(&chunk[status.len()..]);
                        chunk = out;
                    }
                }
            }
        }
        if c_write.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = c_write.shutdown(Shutdown::Both);
    let _ = up.join();
    if cut.load(Ordering::SeqCst) {
        cuts.fetch_add(1, Ordering::SeqCst);
    }
}
