//! The interop tests' network: a server namespace and N client namespaces
//! joined by a bridge that lives in a namespace of its own, a temp
//! directory for configs and logs, and the traffic the tests drive through
//! the tunnel (ping, a bulk TCP transfer with a SHA-256 check, UDP garbage,
//! a stateless NAT that makes a client float).
//!
//! ```text
//!   ns srv 10.200.0.1 ──veth──┐
//!   ns c0  10.200.0.10 ──veth─┤ br0 (ns sw)
//!   ns c1  10.200.0.11 ──veth─┘
//!   tunnel 10.8.0.0/24, server 10.8.0.1
//! ```
//!
//! Every address lives inside these namespaces, so parallel tests reuse
//! the same numbers without seeing each other. Drop deletes the namespaces
//! and the temp directory (kept, with its path printed, when the test
//! panicked, so the logs can be read).

use std::{
    fs,
    io::{self, Read, Write},
    net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

use crate::{
    Netns,
    openvpn::{Impl, Peer, Pki, SERVER_TUN_ADDR, TunnelSpec, client_config, server_config},
    run, unique_name,
};

/// The server's underlay address.
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);

/// Underlay address of client `i`.
pub fn client_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 200, 0, 10 + i as u8)
}

/// A temp directory removed on drop unless the thread is panicking.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/<prefix><pid>x<n>`.
    pub fn new(prefix: &str) -> Self {
        let p = std::env::temp_dir().join(unique_name(prefix));
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        Self(p)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test failed: configs and logs kept in {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Server, clients and the switch between them.
pub struct Topology {
    /// Client namespaces, client `i` at [`client_addr`]`(i)`.
    pub clients: Vec<Netns>,
    /// The server's namespace, at [`SERVER_ADDR`].
    pub server: Netns,
    /// Holds the bridge; declared after the others so it goes last.
    _switch: Netns,
    /// Configs, logs, keys.
    pub dir: TempDir,
}

fn attach(switch: &Netns, ns: &Netns, addr: Ipv4Addr) {
    let outer = unique_name("so");
    assert!(outer.len() <= 15, "interface name {outer} too long");
    run(Command::new("ip")
        .args(["link", "add", &outer, "netns", switch.name()])
        .args(["type", "veth", "peer", "name", "eth0", "netns", ns.name()]));
    switch.ip(&["link", "set", &outer, "master", "br0", "up"]);
    ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
    ns.ip(&["link", "set", "eth0", "up"]);
}

impl Topology {
    /// A server and `n` clients on one bridge.
    pub fn new(n: usize) -> Self {
        let dir = TempDir::new("vpnit");
        let switch = Netns::new("sw");
        switch.ip(&["link", "add", "br0", "type", "bridge"]);
        switch.ip(&["link", "set", "br0", "up"]);
        let server = Netns::new("srv");
        attach(&switch, &server, SERVER_ADDR);
        let clients: Vec<Netns> = (0..n)
            .map(|i| {
                let ns = Netns::new("cli");
                attach(&switch, &ns, client_addr(i));
                ns
            })
            .collect();
        Self {
            clients,
            server,
            _switch: switch,
            dir,
        }
    }

    /// The temp directory's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Pings `dst` from `ns`: `count` echo requests 0.2 s apart; true when at
/// least one reply came back.
pub fn ping(ns: &Netns, dst: &str, count: u32) -> bool {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            "ping",
            "-n",
            "-q",
            "-i",
            "0.2",
            "-W",
            "1",
        ])
        .args(["-c", &count.to_string(), dst])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Pings until one reply arrives or `timeout` passes.
pub fn ping_until(ns: &Netns, dst: &str, timeout: Duration) -> bool {
    let end = vpn_daemon::io::clock::now() + timeout;
    while vpn_daemon::io::clock::now() < end {
        if ping(ns, dst, 1) {
            return true;
        }
    }
    false
}

/// Average RTT in ms of `count` pings, when any came back.
pub fn ping_rtt_ms(ns: &Netns, dst: &str, count: u32) -> Option<f64> {
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            "ping",
            "-n",
            "-q",
            "-i",
            "0.2",
            "-W",
            "1",
        ])
        .args(["-c", &count.to_string(), dst])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&o.stdout);
    // "rtt min/avg/max/mdev = 0.052/0.061/0.075/0.008 ms"
    let line = text.lines().find(|l| l.contains("min/avg/max"))?;
    line.split('=')
        .nth(1)?
        .trim()
        .split('/')
        .nth(1)?
        .parse()
        .ok()
}

/// The IPv4 address on `dev` in `ns` (a client's pool address on tun0).
pub fn iface_addr(ns: &Netns, dev: &str) -> Option<Ipv4Addr> {
    let o = Command::new("ip")
        .args(["-n", ns.name(), "-4", "-o", "addr", "show", "dev", dev])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&o.stdout);
    // "5: tun0    inet 10.8.0.2/24 scope global tun0"
    let word = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)?;
    word.split('/').next()?.parse().ok()
}

/// Deterministic, incompressible bytes: xorshift64 keyed by `seed`.
fn fill(buf: &mut [u8], state: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let b = state.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// What a bulk transfer measured.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// Bytes the receiver got.
    pub bytes: u64,
    /// SHA-256 of what was sent.
    pub sent_sha256: Vec<u8>,
    /// SHA-256 of what arrived.
    pub received_sha256: Vec<u8>,
    /// Time from connect to the receiver's end of stream.
    pub elapsed: Duration,
}

impl Transfer {
    /// Whether every byte arrived intact.
    pub fn intact(&self, expected: u64) -> bool {
        self.bytes == expected && self.sent_sha256 == self.received_sha256
    }

    /// Throughput in Mbit/s.
    pub fn mbit_s(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.elapsed.as_secs_f64().max(1e-9) / 1e6
    }
}

/// What a bulk transfer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// Incompressible pseudo-random bytes.
    Random,
    /// English-like text that LZO and LZ4 shrink several times over.
    Text,
}

/// Lines cycled through by [`Payload::Text`], each numbered so that no two
/// packets are alike.
fn fill_text(buf: &mut [u8], pos: &mut u64) {
    const LINE: &[u8] =
        b"The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\n";
    for b in buf.iter_mut() {
        let i = (*pos % LINE.len() as u64) as usize;
        let line = *pos / LINE.len() as u64;
        *b = if i < 8 {
            b'0' + ((line >> (4 * i)) & 7) as u8
        } else {
            LINE[i]
        };
        *pos += 1;
    }
}

/// Sends `bytes` of pseudo-random data over TCP from `from` to
/// `to_addr:port`, where a receiver runs in `to`; both hash what they
/// see. `pace` spreads the sending over at least that long (the
/// renegotiation test). Every socket operation has a 30 s timeout.
pub fn bulk_transfer(
    from: &Netns,
    to: &Netns,
    to_addr: Ipv4Addr,
    port: u16,
    bytes: u64,
    pace: Option<Duration>,
) -> io::Result<Transfer> {
    bulk_transfer_payload(from, to, to_addr, port, bytes, pace, Payload::Random)
}

/// [`bulk_transfer`] of the given [`Payload`].
pub fn bulk_transfer_payload(
    from: &Netns,
    to: &Netns,
    to_addr: Ipv4Addr,
    port: u16,
    bytes: u64,
    pace: Option<Duration>,
    payload: Payload,
) -> io::Result<Transfer> {
    let timeout = Some(Duration::from_secs(30));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
    std::thread::scope(|s| {
        let receiver = s.spawn(move || {
            to.run(move || -> io::Result<(u64, Vec<u8>, Instant)> {
                let listener = match TcpListener::bind(SocketAddrV4::new(to_addr, port)) {
                    Ok(l) => {
                        let _ = ready_tx.send(Ok(()));
                        l
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                        return Err(e);
                    }
                };
                listener.set_nonblocking(true)?;
                let end = vpn_daemon::io::clock::now() + Duration::from_secs(30);
                let (mut conn, _) = loop {
                    match listener.accept() {
                        Ok(c) => break c,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if vpn_daemon::io::clock::now() >= end {
                                return Err(io::Error::new(io::ErrorKind::TimedOut, "no sender"));
                            }
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(e) => return Err(e),
                    }
                };
                conn.set_nonblocking(false)?;
                conn.set_read_timeout(timeout)?;
                let mut hash = Sha256::new();
                let mut buf = vec![0u8; 1 << 16];
                let mut total = 0u64;
                loop {
                    let n = conn.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    hash.update(&buf[..n]);
                    total += n as u64;
                }
                Ok((
                    total,
                    hash.finalize().to_vec(),
                    vpn_daemon::io::clock::now(),
                ))
            })
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "receiver did not start"))??;
        let sent = from.run(move || -> io::Result<(Vec<u8>, Instant)> {
            let mut conn = TcpStream::connect_timeout(
                &SocketAddrV4::new(to_addr, port).into(),
                Duration::from_secs(10),
            )?;
            conn.set_write_timeout(timeout)?;
            let start = vpn_daemon::io::clock::now();
            let mut hash = Sha256::new();
            let mut buf = vec![0u8; 1 << 16];
            let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ bytes;
            let mut pos = 0u64;
            let mut left = bytes;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                match payload {
                    Payload::Random => fill(&mut buf[..n], &mut state),
                    Payload::Text => fill_text(&mut buf[..n], &mut pos),
                }
                conn.write_all(&buf[..n])?;
                hash.update(&buf[..n]);
                left -= n as u64;
                if let Some(p) = pace {
                    // Keep the sent fraction no ahead of the elapsed fraction.
                    let due = p.mul_f64((bytes - left) as f64 / bytes as f64);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
            }
            conn.shutdown(std::net::Shutdown::Write)?;
            Ok((hash.finalize().to_vec(), start))
        });
        let received = receiver
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let (sent_sha256, start) = sent?;
        let (total, received_sha256, end) = received?;
        Ok(Transfer {
            bytes: total,
            sent_sha256,
            received_sha256,
            elapsed: end.saturating_duration_since(start),
        })
    })
}

/// Sends `count` random-looking UDP datagrams (1 to 1400 bytes, varied
/// first bytes so every opcode shows up) from `ns` to `dst`, spread over
/// about `over`.
pub fn udp_garbage(ns: &Netns, dst: SocketAddrV4, count: u32, over: Duration) {
    ns.run(|| {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let mut state = 0xDEAD_BEEF_u64;
        let mut buf = vec![0u8; 1400];
        let gap = over / count.max(1);
        for i in 0..count {
            fill(&mut buf, &mut state);
            let len = 1 + (state as usize % buf.len());
            // The first byte is opcode << 3 | key_id: walk all 32 opcodes.
            buf[0] = i as u8;
            // Unreachable ports answer ICMP; an error here is not the test.
            let _ = sock.send_to(&buf[..len], dst);
            if i % 64 == 0 {
                std::thread::sleep(gap * 64);
            }
        }
    });
}

/// Makes a UDP client in `ns` (at `old`) appear from `new` without the
/// client knowing: a second address plus stateless nftables rewrites
/// (outgoing source `old` → `new`, incoming destination `new` → `old`),
/// so the server sees its peer float to a new address.
pub fn float_client(ns: &Netns, old: Ipv4Addr, new: Ipv4Addr) {
    ns.ip(&["addr", "add", &format!("{new}/24"), "dev", "eth0"]);
    let rules = format!(
        "table ip float {{\n\
         chain out {{ type filter hook output priority raw; ip saddr {old} notrack ip saddr set {new}; }}\n\
         chain inp {{ type filter hook prerouting priority raw; ip daddr {new} notrack ip daddr set {old}; }}\n\
         }}\n"
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns.name(), "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("nft: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(rules.as_bytes())
            .unwrap_or_else(|e| panic!("nft stdin: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("nft: {e}"));
    assert!(
        out.status.success(),
        "nft failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running tunnel: one server and its clients on a [`Topology`], all
/// ready. Fields drop in order: the peers end before the namespaces go.
pub struct Tunnel {
    /// The clients, client `i` in `topo.clients[i]`.
    pub clients: Vec<Peer>,
    /// The server.
    pub server: Peer,
    /// The description both sides were configured from.
    pub spec: TunnelSpec,
    /// Keys and certificates.
    pub pki: Pki,
    /// Namespaces and the temp directory.
    pub topo: Topology,
}

/// How long a peer may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

impl Tunnel {
    /// Starts a `server` and one client per entry of `clients`, waiting
    /// until every one is ready (panics with the log otherwise).
    pub fn start(spec: TunnelSpec, server: Impl, clients: &[Impl]) -> Self {
        let mut t = Self::start_server(spec, server, clients.len());
        for (i, imp) in clients.iter().enumerate() {
            let text = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
            t.add_client(i, *imp, &text).wait_ready(READY_TIMEOUT);
        }
        t
    }

    /// Starts only the server (ready), with `n` client namespaces prepared.
    pub fn start_server(spec: TunnelSpec, server: Impl, n: usize) -> Self {
        let topo = Topology::new(n);
        let pki = Pki::new(&topo.path().join("pki"));
        let text = server_config(
            &spec,
            &pki,
            &SERVER_ADDR.to_string(),
            &topo.path().join("status.txt"),
        );
        let mut srv = Peer::start_with_args(
            server,
            &topo.server,
            topo.path(),
            "server",
            &text,
            &spec.server_args,
        );
        srv.wait_ready(READY_TIMEOUT);
        Self {
            clients: Vec::new(),
            server: srv,
            spec,
            pki,
            topo,
        }
    }

    /// Starts a client in namespace `i` on `config_text` without waiting.
    pub fn add_client(&mut self, i: usize, imp: Impl, config_text: &str) -> &mut Peer {
        let peer = Peer::start_with_args(
            imp,
            &self.topo.clients[i],
            self.topo.path(),
            &format!("client{i}"),
            config_text,
            &self.spec.client_args,
        );
        self.clients.push(peer);
        let last = self.clients.len() - 1;
        &mut self.clients[last]
    }

    /// Client `i`'s tunnel address (read from its tun0).
    pub fn client_tun_addr(&self, i: usize) -> Ipv4Addr {
        iface_addr(&self.topo.clients[i], "tun0")
            .unwrap_or_else(|| panic!("client {i} has no address on tun0"))
    }

    /// The server's status file's text.
    pub fn status(&self) -> String {
        fs::read_to_string(self.topo.path().join("status.txt")).unwrap_or_default()
    }

    /// Asserts pings through the tunnel both ways between client `i` and
    /// the server.
    pub fn assert_ping_both_ways(&self, i: usize) {
        let ns = &self.topo.clients[i];
        assert!(
            ping_until(ns, SERVER_TUN_ADDR, Duration::from_secs(10)),
            "client {i} cannot ping the server through the tunnel; logs in {}",
            self.topo.path().display()
        );
        let addr = self.client_tun_addr(i).to_string();
        assert!(
            ping(&self.topo.server, &addr, 3),
            "the server cannot ping client {i} at {addr} through the tunnel"
        );
    }

    /// A bulk transfer of `bytes` from client `i` to the server's tunnel
    /// address, asserted intact.
    pub fn assert_bulk(&self, i: usize, bytes: u64, pace: Option<Duration>) -> Transfer {
        let t = bulk_transfer(
            &self.topo.clients[i],
            &self.topo.server,
            SERVER_TUN_ADDR.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
            5001,
            bytes,
            pace,
        )
        .unwrap_or_else(|e| panic!("bulk transfer from client {i} failed: {e}"));
        assert!(
            t.intact(bytes),
            "bulk transfer damaged: {} of {bytes} bytes, sha256 {:x?} vs {:x?}",
            t.bytes,
            t.sent_sha256,
            t.received_sha256
        );
        t
    }
}

/// 50 MiB, the bulk size of the interop matrix.
pub const BULK: u64 = 50 << 20;

/// One matrix cell: `server` and one `client` on `spec`, pings both ways
/// and, when `bulk`, a [`BULK`] transfer with its hash checked.
pub fn check_cell(spec: TunnelSpec, server: Impl, client: Impl, bulk: bool) {
    let t = Tunnel::start(spec, server, &[client]);
    t.assert_ping_both_ways(0);
    if bulk {
        let x = t.assert_bulk(0, BULK, None);
        eprintln!(
            "{} {}->{}: {:.0} Mbit/s",
            t.spec.label(),
            client.label(),
            server.label(),
            x.mbit_s()
        );
    }
}
