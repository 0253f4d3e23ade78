//! What the XDP end-to-end tests share: the fast-path mode a test forces
//! on our side(s) of a [`Tunnel`], and the evidence read back from the
//! kernel (the classifier on the underlay interface, its `PEERS` and
//! `STATS`), from the status files and from the logs.

use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    time::Duration,
};

use crate::{
    Netns,
    bpftool::{ClassifierMaps, LinkXdpMode},
    openvpn::{Impl, Peer, TunnelSpec},
    status::{ClientStatistics, ServerStatus},
    topology::Tunnel,
};

/// The underlay interface of every namespace of [`crate::topology`].
pub const UNDERLAY_IF: &str = "eth0";

/// How our daemon is told to run its UDP data plane in a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastPathMode {
    /// `xdp native` + `xdp-interface eth0` in the config.
    Native,
    /// `xdp generic` + `xdp-interface eth0` in the config.
    Generic,
    /// No XDP directive: the default (`auto`) finds the interface itself.
    Auto,
    /// `--xdp off` on the command line.
    Off,
}

impl FastPathMode {
    /// The attach mode the kernel must report, `None` for the plain path.
    pub fn expected(self) -> Option<LinkXdpMode> {
        match self {
            FastPathMode::Native | FastPathMode::Auto => Some(LinkXdpMode::Native),
            FastPathMode::Generic => Some(LinkXdpMode::Generic),
            FastPathMode::Off => None,
        }
    }

    /// Config lines for our daemon.
    pub fn config_lines(self) -> Vec<String> {
        let mode = match self {
            FastPathMode::Native => "native",
            FastPathMode::Generic => "generic",
            FastPathMode::Auto | FastPathMode::Off => return Vec::new(),
        };
        vec![
            format!("xdp {mode}"),
            format!("xdp-interface {UNDERLAY_IF}"),
        ]
    }

    /// Command-line arguments for our daemon.
    pub fn args(self) -> Vec<String> {
        match self {
            FastPathMode::Off => vec!["--xdp".into(), "off".into()],
            _ => Vec::new(),
        }
    }

    /// Puts this mode on the sides of `spec` that run our daemon.
    pub fn apply(self, spec: &mut TunnelSpec, server: Impl, client: Impl) {
        if server == Impl::Ours {
            spec.server_extra.extend(self.config_lines());
            spec.server_args.extend(self.args());
        }
        if client == Impl::Ours {
            spec.client_extra.extend(self.config_lines());
            spec.client_args.extend(self.args());
        }
    }
}

/// Polls `f` every 100 ms until it returns `Some`, at most `timeout`.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = vpn_daemon::io::clock::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if vpn_daemon::io::clock::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The classifier on the underlay interface of `ns`, asserted to be
/// attached in `mode`'s attach mode (or asserted absent for `Off`).
pub fn classifier(ns: &Netns, mode: FastPathMode, who: &str) -> Option<ClassifierMaps> {
    let found = ClassifierMaps::find(ns, UNDERLAY_IF);
    assert_eq!(
        found.map(|m| m.attachment.mode),
        mode.expected(),
        "{who}: XDP attachment on {UNDERLAY_IF} for {mode:?}"
    );
    found
}

/// The server's status file parsed, once it is complete and shows at
/// least `clients` clients (panics after 10 s with the file).
pub fn server_status(t: &Tunnel, clients: usize) -> ServerStatus {
    wait_for(Duration::from_secs(10), || {
        let s = ServerStatus::parse(&t.status());
        (s.complete && s.clients.len() >= clients).then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "the server's status file never listed {clients} client(s):\n{}",
            t.status()
        )
    })
}

/// Waits until a fresh server status satisfies `ok` (the file is rewritten
/// every second); panics with the last text after `timeout`.
pub fn server_status_until(
    t: &Tunnel,
    timeout: Duration,
    what: &str,
    mut ok: impl FnMut(&ServerStatus) -> bool,
) -> ServerStatus {
    wait_for(timeout, || {
        let s = ServerStatus::parse(&t.status());
        (s.complete && ok(&s)).then_some(s)
    })
    .unwrap_or_else(|| panic!("server status: {what} not seen:\n{}", t.status()))
}

/// A client's `OpenVPN STATISTICS` file, once complete and satisfying
/// `ok`; panics with the last text after `timeout`.
pub fn client_statistics_until(
    path: &std::path::Path,
    timeout: Duration,
    what: &str,
    mut ok: impl FnMut(&ClientStatistics) -> bool,
) -> ClientStatistics {
    wait_for(timeout, || {
        let s = ClientStatistics::parse(&std::fs::read_to_string(path).ok()?)?;
        (s.complete && ok(&s)).then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "client status {}: {what} not seen:\n{}",
            path.display(),
            std::fs::read_to_string(path).unwrap_or_default()
        )
    })
}

fn line_with_all(log: &str, words: &[&str]) -> bool {
    log.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        words.iter().all(|w| l.contains(&w.to_ascii_lowercase()))
    })
}

/// Asserts that one line of `peer`'s log mentions every word of `words`
/// (case-insensitive), waiting up to 20 s for it: our server prints its
/// ready line before the fast path has attached (loading and verifying
/// the program takes a moment, more in a debug build).
pub fn assert_log_line(peer: &Peer, words: &[&str]) {
    let hit = wait_for(Duration::from_secs(20), || {
        line_with_all(&peer.log_text(), words).then_some(())
    });
    assert!(
        hit.is_some(),
        "no line of {} mentions all of {words:?}:\n{}",
        peer.log.display(),
        peer.log_text()
    );
}

/// The log line our daemon must print for `mode` on `iface`; returns once
/// it is there, so the classifier can be looked for.
pub fn assert_logged_mode(peer: &Peer, mode: FastPathMode) {
    match mode {
        FastPathMode::Native | FastPathMode::Auto => {
            assert_log_line(peer, &["xdp fast path running", UNDERLAY_IF, "native"])
        }
        FastPathMode::Generic => {
            assert_log_line(peer, &["xdp fast path running", UNDERLAY_IF, "generic"])
        }
        FastPathMode::Off => assert_log_line(peer, &["xdp off"]),
    }
}

/// The fewest tunnel packets that can carry `bytes` of TCP payload: at
/// most 1500 bytes of inner packet each, so a count of redirected frames
/// below this means some of the transfer took another path.
pub fn min_packets(bytes: u64) -> u64 {
    bytes / 1500
}

/// Sends `count` P_DATA_V2 packets with random peer-ids (never one of
/// `avoid`, never the undefined 0xffffff) from `ns` to `dst`, in bursts
/// of 32 a millisecond apart so no queue on the way overflows; returns
/// how many the socket accepted.
pub fn data_v2_flood(ns: &Netns, dst: SocketAddrV4, count: u32, avoid: &[u32]) -> u32 {
    ns.run(|| {
        let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let mut state = 0x5EED_F100_D000_0001u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut sent = 0;
        for i in 0..count {
            let id = loop {
                let id = (next() as u32) & vpn_common::opcode::PEER_ID_MASK;
                if id != vpn_common::opcode::PEER_ID_UNDEF && !avoid.contains(&id) {
                    break id;
                }
            };
            let r = next();
            // opcode P_DATA_V2, key_id 0..7 | peer-id (24 bits) | packet_id | "ciphertext"
            let mut pkt = vec![(vpn_common::opcode::P_DATA_V2 << 3) | (r as u8 & 7)];
            pkt.extend_from_slice(&id.to_be_bytes()[1..]);
            pkt.extend_from_slice(&i.to_be_bytes());
            pkt.extend_from_slice(&r.to_le_bytes().repeat(6));
            if sock.send_to(&pkt, dst).is_ok() {
                sent += 1;
            }
            if i % 32 == 31 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        sent
    })
}
