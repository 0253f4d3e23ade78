//! Shared helpers of the integration tests: root checks, network namespaces
//! that clean up after themselves, veth pairs, the BPF object's location,
//! `BPF_PROG_TEST_RUN` and synthetic frames.
//!
//! Tests panic on set-up failures rather than return errors (the aya
//! integration tests do the same): a failed `ip` command is a test failure
//! with the command's stderr in the message.

use std::{
    env,
    ffi::CString,
    fs::File,
    io,
    os::fd::{AsRawFd, BorrowedFd},
    path::PathBuf,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

pub mod bpffs;
pub mod bpftool;
pub mod capture;
pub mod classifier;
pub mod corpus;
pub mod fastpath;
pub mod frame;
pub mod openvpn;
pub mod status;
pub mod topology;

/// Whether the test can run: true as root. Otherwise it panics in CI
/// (`CI=true`), where a skipped privileged test would hide a regression, and
/// elsewhere prints why it skips and returns false.
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let reason = "needs root (CAP_NET_ADMIN + CAP_BPF) for network namespaces and BPF";
    if env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason}, and CI=true forbids skipping");
    }
    eprintln!("skipped: {reason}");
    false
}

/// A name unique in this machine's run: prefix, process id and a counter,
/// so that tests running in parallel (threads or processes) never collide.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a command, panicking with its stderr when it fails.
pub fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace created for one test, deleted on drop (also when
/// the test panics), which also removes its interfaces.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `<tag><pid>x<n>` with `lo` up.
    pub fn new(tag: &str) -> Self {
        let name = unique_name(tag);
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name (as under `/var/run/netns`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) {
        run(Command::new("ip").args(["-n", &self.name]).args(args));
    }

    /// Runs a program inside the namespace (`ip netns exec`).
    pub fn exec(&self, program: &str, args: &[&str]) {
        run(Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args));
    }

    /// Turns IPv6 off, so no router solicitation or MLD report shows up in
    /// counters a test asserts.
    pub fn disable_ipv6(&self) {
        self.exec("sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        self.exec("sysctl", &["-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
    }

    /// Runs `f` on a thread that entered the namespace; sockets, interface
    /// lookups and XDP attachments made there belong to it. Panics in `f`
    /// propagate.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        std::thread::scope(|s| {
            let handle = s.spawn(|| {
                // SAFETY: setns on an open namespace fd only changes this
                // (fresh) thread's network namespace.
                let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns {path}: {}", io::Error::last_os_error());
                f()
            });
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Index of interface `name` inside the namespace.
    pub fn ifindex(&self, name: &str) -> u32 {
        let c = CString::new(name).expect("interface names have no NUL");
        // SAFETY: `c` is a valid C string for the duration of the call.
        let idx = self.run(|| unsafe { libc::if_nametoindex(c.as_ptr()) });
        assert_ne!(idx, 0, "no interface {name} in {}", self.name);
        idx
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Not `run()`: a failure here must not turn into a double panic.
        match Command::new("ip")
            .args(["netns", "del", &self.name])
            .output()
        {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "ip netns del {}: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("ip netns del {}: {e}", self.name),
        }
    }
}

/// One end of a veth pair: interface name and the address put on it.
pub struct VethEnd {
    /// Interface name (at most 15 bytes).
    pub name: String,
    /// IPv4 address without prefix length, when one was assigned.
    pub addr: Option<[u8; 4]>,
}

/// Builder of a veth pair between two namespaces (or inside one).
pub struct VethPair<'a> {
    a: (&'a Netns, Option<[u8; 4]>),
    b: (&'a Netns, Option<[u8; 4]>),
    queues: u32,
}

impl<'a> VethPair<'a> {
    /// A pair with end `a` in `ns_a` and end `b` in `ns_b`.
    pub fn new(ns_a: &'a Netns, ns_b: &'a Netns) -> Self {
        Self {
            a: (ns_a, None),
            b: (ns_b, None),
            queues: 1,
        }
    }

    /// Gives both ends `n` real RX/TX queues (veth starts with one), so a
    /// test can bind AF_XDP sockets to queues other than 0.
    pub fn queues(mut self, n: u32) -> Self {
        self.queues = n;
        self
    }

    /// Puts `addr`/24 on end a.
    pub fn addr_a(mut self, addr: [u8; 4]) -> Self {
        self.a.1 = Some(addr);
        self
    }

    /// Puts `addr`/24 on end b.
    pub fn addr_b(mut self, addr: [u8; 4]) -> Self {
        self.b.1 = Some(addr);
        self
    }

    /// Creates both ends with unique names, assigns the addresses and sets
    /// them up. The ends disappear with their namespaces.
    pub fn create(self) -> (VethEnd, VethEnd) {
        let name_a = unique_name("va");
        let name_b = unique_name("vb");
        assert!(name_a.len() <= 15 && name_b.len() <= 15);
        let q = self.queues.to_string();
        let qargs = ["numrxqueues", &q, "numtxqueues", &q];
        run(Command::new("ip")
            .args(["link", "add", &name_a, "netns", self.a.0.name()])
            .args(qargs)
            .args([
                "type",
                "veth",
                "peer",
                "name",
                &name_b,
                "netns",
                self.b.0.name(),
            ])
            .args(qargs));
        for ((ns, addr), name) in [(self.a, &name_a), (self.b, &name_b)] {
            if self.queues > 1 {
                ns.exec("ethtool", &["-L", name, "rx", &q, "tx", &q]);
            }
            if let Some([x, y, z, w]) = addr {
                ns.ip(&["addr", "add", &format!("{x}.{y}.{z}.{w}/24"), "dev", name]);
            }
            ns.ip(&["link", "set", name, "up"]);
        }
        (
            VethEnd {
                name: name_a,
                addr: self.a.1,
            },
            VethEnd {
                name: name_b,
                addr: self.b.1,
            },
        )
    }
}

/// Path of the vpn-ebpf object: `VPN_EBPF_OBJECT` (set by `cargo xtask
/// test`), else where `cargo xtask build-ebpf` puts it.
pub fn ebpf_object_path() -> PathBuf {
    match env::var_os("VPN_EBPF_OBJECT") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../vpn-ebpf/target/bpfel-unknown-none/release/vpn-ebpf"),
    }
}

/// The vpn-ebpf object's bytes; panics with the remedy when it is missing.
pub fn ebpf_object() -> Vec<u8> {
    let path = ebpf_object_path();
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the BPF object {}: {e}; run `cargo xtask build-ebpf` \
             (or `cargo xtask test`, which builds it and sets VPN_EBPF_OBJECT)",
            path.display()
        )
    })
}

/// `struct xdp_md` as `BPF_PROG_TEST_RUN` takes it in `ctx_in`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XdpMd {
    /// Offset of the packet start; must be 0 (no metadata).
    pub data: u32,
    /// Offset of the packet end; must equal the frame length.
    pub data_end: u32,
    /// Must be 0.
    pub data_meta: u32,
    /// Interface the frame pretends to arrive on (in the caller's netns).
    pub ingress_ifindex: u32,
    /// Receive queue, below the interface's real RX queue count.
    pub rx_queue_index: u32,
    /// Must be 0.
    pub egress_ifindex: u32,
}

/// The `test` member of `union bpf_attr` (linux/bpf.h).
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// Runs an XDP program once on `frame` with `BPF_PROG_TEST_RUN` (aya 0.14
/// has no wrapper) and returns its verdict. `ctx` sets the ingress interface
/// and queue; without it the kernel uses queue 0 of the netns's `lo`.
pub fn xdp_test_run(prog: BorrowedFd<'_>, frame: &[u8], ctx: Option<XdpMd>) -> io::Result<u32> {
    let md = ctx.map(|mut md| {
        md.data = 0;
        md.data_end = frame.len() as u32;
        md
    });
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: frame.len() as u32,
        data_in: frame.as_ptr() as u64,
        repeat: 1,
        ..Default::default()
    };
    if let Some(md) = &md {
        attr.ctx_size_in = size_of::<XdpMd>() as u32;
        attr.ctx_in = md as *const XdpMd as u64;
    }
    // SAFETY: attr points to a correctly laid out bpf_attr prefix whose
    // pointers (frame, md) outlive the call; the kernel only reads them
    // (data_out/ctx_out are null) and writes retval/duration into attr.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestRunAttr,
            size_of::<TestRunAttr>() as u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(attr.retval)
}

/// The `vpn-daemon` binary under test: `VPN_DAEMON_BIN` if set, else
/// `vpn-daemon` next to this test's target directory (`target/debug`).
///
/// Cargo builds a dependency's library but not its binaries for another
/// crate's tests (artifact dependencies are unstable), so the binary must
/// be built first: `cargo build -p vpn-daemon && cargo test -p tests`.
/// Panics with that hint when it is missing.
pub fn daemon_binary() -> PathBuf {
    if let Some(p) = env::var_os("VPN_DAEMON_BIN") {
        return PathBuf::from(p);
    }
    // target/debug/deps/<test>-<hash> -> target/debug/vpn-daemon
    let exe = env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(|d| {
            if d.ends_with("deps") {
                d.parent()
            } else {
                Some(d)
            }
        })
        .expect("test binary has a directory");
    let bin = dir.join("vpn-daemon");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build -p vpn-daemon` first (or set VPN_DAEMON_BIN)",
        bin.display()
    );
    bin
}

/// The workspace root (for `testdata/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A process started inside a namespace; SIGTERM (then SIGKILL) on drop.
pub struct NsProcess {
    child: std::process::Child,
    /// What it is, for messages.
    pub label: String,
}

impl NsProcess {
    /// Starts `program args` in `ns` (`ip netns exec`, which execs, so the
    /// child's pid is the program's), stdout+stderr to `log`.
    pub fn spawn(
        ns: &Netns,
        program: &std::path::Path,
        args: &[&str],
        log: &std::path::Path,
    ) -> Self {
        let out = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("dup log fd");
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(program)
            .args(args)
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        Self {
            child,
            label: format!("{} {}", program.display(), args.join(" ")),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited (and with what), without waiting.
    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `sig` and waits up to `timeout` for the exit.
    pub fn signal_and_wait(
        &mut self,
        sig: i32,
        timeout: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        let end = vpn_daemon::io::clock::now() + timeout;
        while vpn_daemon::io::clock::now() < end {
            if let Some(s) = self.try_exit() {
                return Some(s);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        if self.try_exit().is_some() {
            return;
        }
        if self
            .signal_and_wait(libc::SIGTERM, std::time::Duration::from_secs(5))
            .is_none()
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Pings `addr` from `ns` until one echo comes back, at most `tries`
/// one-second attempts; whether it succeeded.
pub fn ping_until(ns: &Netns, addr: &str, tries: u32) -> bool {
    (0..tries).any(|_| {
        let start = vpn_daemon::io::clock::now();
        let ok = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns.name(),
                "ping",
                "-c",
                "1",
                "-W",
                "1",
                addr,
            ])
            .output()
            .is_ok_and(|o| o.status.success());
        // "Network unreachable" returns at once: keep each try ~1 s long.
        if !ok {
            std::thread::sleep(std::time::Duration::from_secs(1).saturating_sub(start.elapsed()));
        }
        ok
    })
}

/// One interop scenario `fn(server, client)` as four tests: every pairing of
/// openvpn and our daemon on the two ends.
#[macro_export]
macro_rules! interop_scenario {
    ($f:ident) => {
        mod $f {
            use super::*;
            #[test]
            fn openvpn_server_openvpn_client() {
                if $crate::require_root() {
                    $f(
                        $crate::openvpn::Impl::OpenVpn,
                        $crate::openvpn::Impl::OpenVpn,
                    );
                }
            }
            #[test]
            fn ours_server_openvpn_client() {
                if $crate::require_root() {
                    $f($crate::openvpn::Impl::Ours, $crate::openvpn::Impl::OpenVpn);
                }
            }
            #[test]
            fn openvpn_server_ours_client() {
                if $crate::require_root() {
                    $f($crate::openvpn::Impl::OpenVpn, $crate::openvpn::Impl::Ours);
                }
            }
            #[test]
            fn ours_server_ours_client() {
                if $crate::require_root() {
                    $f($crate::openvpn::Impl::Ours, $crate::openvpn::Impl::Ours);
                }
            }
        }
    };
}
