//! `tunnel_point_to_point` in static-key mode (`secret`): no TLS, no
//! control channel; the tun device is up from the start and every packet
//! of the link is a [`StaticKeyChannel`] packet (tun data, ping or OCC).
//!
//! ```text
//!  link rx ──► open (HMAC, decrypt, replay) ──► unframe ──► ping: reset ping-restart
//!                                                          OCC: reply / compare / exit
//!                                                          else: mssfix ──► tun
//!  tun rx  ──► mssfix ──► frame ──► seal ──► link
//!  timers  ──► ping (after `ping` s without sending), ping-restart/exit, OCC request
//! ```
//!
//! As OpenVPN 2.6 in this mode: UDP without `remote` answers whoever sent
//! the last authenticated packet; with `remote`, packets from another
//! address are dropped unless `float` (then the peer moves after an
//! authenticated packet). `proto tcp-server` waits for one connection,
//! `tcp-client` connects to the `remote`. A ping-restart, an OCC_EXIT from
//! the peer, a closed TCP connection or SIGUSR1 restart the link (and,
//! without `persist-tun`, the tun device).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::{self as cfgt, Config, PingAction, Source, Transport as CfgTransport};
use crate::error::DaemonError;
use crate::host::process::Signal;
use crate::host::resolve::resolve_remote;
use crate::host::routes::{self, teardown};
use crate::host::scripts::{ScriptContext, ScriptEnv};
use crate::host::server_tun::configured_setup;
use crate::host::tun::{self as host_tun, TunSetup};
use crate::io::clock;
use crate::io::external::tcp::{self, TcpLinkReader, TcpLinkWriter, TcpServer};
use crate::io::external::udp::{RecvBatch, SendBatch, UdpLink};
use crate::io::files::write_atomic;
use crate::io::internal::tun::{Tun, TunQueue, TunRxBatch, TunTxBatch};
use crate::io::mssfix::{AEAD_DATA_V2_OVERHEAD, OuterTransport};
use crate::io::route::RouteTable;
use crate::io::wait::sleep_until;
use crate::mgmt::protocol::{Command, reply};
use crate::mgmt::status::{ClientStatus, LineEnd, SystemLocalTime, render_client};
use crate::proto::data::CompressFraming;
use crate::proto::data::hmac::Digest;
use crate::proto::data::payload::{OccOpcode, PING_MAGIC, Payload, classify, emit_occ};
use crate::proto::keys::{Key2, KeyDirection};
use crate::proto::replay::ReplayConfig;
use crate::proto::static_key::{StaticCipher, StaticDrop, StaticKeyChannel, StaticKeyParams};
use crate::tunnel::Outcome;
use crate::tunnel::input::{Input, Inputs};
use crate::tunnel::schedule::status_interval;
use crate::tunnel::setup;
use crate::tunnel::status::command_name;

/// Tun packets read per wake-up.
const TUN_BATCH: usize = 64;
/// OpenVPN's OCC_INTERVAL_SECONDS and OCC_N_TRIES.
const OCC_INTERVAL: Duration = Duration::from_secs(10);
const OCC_TRIES: u32 = 12;
/// Largest packet on the link we accept or build.
const LINK_MAX: usize = 65_535;

/// How one run of the link ended.
enum End {
    Restart,
    Stop(Outcome),
}

/// The link to the peer.
enum Link {
    Udp {
        link: UdpLink,
        /// Where we send; `None` until a peer without `remote` spoke.
        peer: Option<SocketAddr>,
        /// The `remote` we were told to use (packets from elsewhere need `float`).
        fixed: bool,
        rx: RecvBatch,
        tx: SendBatch,
    },
    Tcp {
        reader: TcpLinkReader,
        writer: TcpLinkWriter,
        peer: SocketAddr,
    },
}

impl Link {
    fn peer(&self) -> Option<SocketAddr> {
        match self {
            Link::Udp { peer, .. } => *peer,
            Link::Tcp { peer, .. } => Some(*peer),
        }
    }

    fn outer(&self) -> OuterTransport {
        let v6 = self.peer().is_some_and(|p| p.is_ipv6());
        match (self, v6) {
            (Link::Udp { .. }, false) => OuterTransport::Udp4,
            (Link::Udp { .. }, true) => OuterTransport::Udp6,
            (Link::Tcp { .. }, false) => OuterTransport::Tcp4,
            (Link::Tcp { .. }, true) => OuterTransport::Tcp6,
        }
    }

    async fn flush(&mut self) -> Result<(), DaemonError> {
        match self {
            Link::Udp { link, tx, .. } => {
                if !tx.is_empty() {
                    link.send_batch(tx)
                        .await
                        .map_err(|e| DaemonError::io("UDP send", e))?;
                }
                Ok(())
            }
            Link::Tcp { writer, .. } => Ok(writer.flush().await?),
        }
    }
}

/// Reads the key and builds the data-channel settings, failing as 2.6
/// fails at start (unknown cipher, BF-CBC without the legacy provider).
pub fn static_key_params(cfg: &Config) -> Result<(StaticKeyParams, Key2), DaemonError> {
    let Some(secret) = &cfg.secret else {
        return Err(DaemonError::Unsupported("no 'secret' configured".into()));
    };
    let text = match &secret.key {
        Source::Inline(s) => s.clone(),
        Source::File(p) => std::fs::read_to_string(p).map_err(|e| {
            DaemonError::io(format!("Read error on key file ('{}')", p.display()), e)
        })?,
    };
    let key = Key2::from_static_key_file(&text).map_err(|source| DaemonError::Key {
        what: "secret",
        source,
    })?;
    let cipher = StaticCipher::from_name(cfg.static_cipher())
        .map_err(|e| DaemonError::Unsupported(e.to_string()))?;
    let auth = Digest::from_name(&cfg.auth).ok_or_else(|| {
        DaemonError::Unsupported(format!(
            "HMAC '{}' is not supported in static-key mode (use SHA1, SHA256 or SHA512)",
            cfg.auth
        ))
    })?;
    if let StaticCipher::Cbc { name, .. } = &cipher
        && cipher.block_len() < 16
    {
        tracing::warn!(
            "WARNING: INSECURE cipher ({name}) with block size less than 128 bit ({} bit).  This allows attacks like SWEET32.  Mitigate by using a --cipher with a larger block size (e.g. AES-256-CBC). Support for these insecure ciphers will be removed in OpenVPN 2.7.",
            cipher.block_len() * 8
        );
    }
    if matches!(cipher, StaticCipher::None) {
        tracing::warn!(
            "******* WARNING *******: '--cipher none' was specified. This means NO encryption will be performed and tunnelled data WILL be transmitted in clear text over the network! PLEASE DO RECONSIDER THIS SETTING!"
        );
    }
    let direction = secret.direction.unwrap_or_default();
    let replay = (!cfg.no_replay)
        .then(|| ReplayConfig::new(cfg.replay_window.size, u64::from(cfg.replay_window.seconds)));
    Ok((
        StaticKeyParams {
            cipher,
            auth: Some(auth),
            direction,
            replay,
        },
        key,
    ))
}

/// The OCC options strings (ours, and the one we expect from the peer),
/// as 2.6 writes them in static-key mode.
pub fn options_strings(cfg: &Config, p: &StaticKeyParams) -> (String, String) {
    let tcp = cfg.proto.transport != CfgTransport::Udp;
    let v6 = cfg.proto.family == cfgt::AddrFamily::V6;
    let proto = |server: bool| match (tcp, v6, server) {
        (false, false, _) => "UDPv4",
        (false, true, _) => "UDPv6",
        (true, false, true) => "TCPv4_SERVER",
        (true, false, false) => "TCPv4_CLIENT",
        (true, true, true) => "TCPv6_SERVER",
        (true, true, false) => "TCPv6_CLIENT",
    };
    let we_serve = cfg.proto.transport == CfgTransport::TcpServer;
    let framing = setup::framing(cfg.compression);
    // 2.6 counts a 1-byte compression header; stub-v2 adds nothing to an
    // uncompressed packet.
    let comp = framing.mtu_overhead() as u32;
    let link_mtu = p.link_mtu(cfg.tun_mtu, if tcp { 2 } else { 0 }) + comp;
    let (cipher, keysize) = match &p.cipher {
        StaticCipher::None => ("[null-cipher]".to_string(), 0),
        c => (c.name().to_string(), c.key_len() * 8),
    };
    let auth = p.auth.map_or("[null-digest]", Digest::name);
    let one = |remote: bool| {
        let mut s = format!(
            "V4,dev-type tun,link-mtu {link_mtu},tun-mtu {},proto {}",
            cfg.tun_mtu,
            proto(we_serve != remote)
        );
        if cfg.ifconfig_ipv6.is_some() {
            s.push_str(",tun-ipv6");
        }
        if let Some(i) = cfg.ifconfig {
            // 2.6 writes its own string with the addresses swapped (what
            // the peer configures) and expects ours as configured.
            // With topology subnet both sides write the network and mask.
            let (a, b) = if cfg.topology == cfgt::Topology::Subnet {
                let mask = u32::from(i.remote_netmask);
                (
                    std::net::Ipv4Addr::from(u32::from(i.local) & mask),
                    i.remote_netmask,
                )
            } else if remote {
                (i.local, i.remote_netmask)
            } else {
                (i.remote_netmask, i.local)
            };
            s.push_str(&format!(",ifconfig {a} {b}"));
        }
        // 2.6's order: ifconfig, then comp-lzo, then keydir.
        if framing != CompressFraming::None {
            s.push_str(",comp-lzo");
        }
        match (p.direction, remote) {
            (KeyDirection::Normal, false) | (KeyDirection::Inverse, true) => {
                s.push_str(",keydir 0");
            }
            (KeyDirection::Inverse, false) | (KeyDirection::Normal, true) => {
                s.push_str(",keydir 1");
            }
            (KeyDirection::Bidirectional, _) => {}
        }
        s.push_str(&format!(
            ",cipher {cipher},auth {auth},keysize {keysize},secret"
        ));
        if p.replay.is_none() {
            s.push_str(",no-replay");
        }
        s
    };
    (one(false), one(true))
}

/// Runs the static-key tunnel until it should exit (or reload on SIGHUP).
pub async fn tunnel_static_key(cfg: &Config, signals: &mut Inputs) -> Result<Outcome, DaemonError> {
    let (params, key) = static_key_params(cfg)?;
    let (local_opts, remote_opts) = options_strings(cfg, &params);
    tracing::info!(
        "Static Encrypt: Cipher '{}' initialized, HMAC '{}'",
        params.cipher.name(),
        cfg.auth
    );
    tracing::debug!("Local Options String (VER=V4): '{local_opts}'");
    let runner = host_tun::script_runner(cfg);
    let mut tun: Option<(Tun, TunSetup)> = None;
    let mut restarts: u32 = 0;
    let mut attempt: usize = 0;
    let mut privileges_dropped = false;
    let mut routes = RouteTable::new().noexec(cfg.host.route_noexec);
    let outcome = loop {
        if tun.is_none() {
            let setup = configured_setup(cfg);
            if privileges_dropped {
                return Err(DaemonError::Unsupported(
                    "cannot re-open the tun device after dropping privileges (use persist-tun)"
                        .into(),
                ));
            }
            let t = host_tun::open_tun(cfg, &setup, 1)?;
            tracing::info!(dev = t.name(), ?setup, "tun device opened");
            let info = setup.tun_info(t.name(), None);
            let ctx = if restarts > 0 {
                ScriptContext::Restart
            } else {
                ScriptContext::Init
            };
            host_tun::run_up_down(cfg, &runner, false, &info, ctx, None, &ScriptEnv::new()).await;
            if !privileges_dropped {
                install_routes(cfg, t.name(), &setup, &mut routes);
            }
            tun = Some((t, setup));
        }
        let Some((t, setup)) = &tun else {
            break Outcome::Exit(1);
        };
        let Some(queue) = t.queues().first().cloned() else {
            return Err(DaemonError::Unsupported("tun device has no queue".into()));
        };
        let start_unix = u32::try_from(clock::unix_time()).unwrap_or(u32::MAX);
        let channel = StaticKeyChannel::new(params.clone(), &key, start_unix)
            .map_err(|e| DaemonError::Unsupported(e.to_string()))?;
        let remote = cfg.remotes.get(attempt % cfg.remotes.len().max(1));
        attempt += 1;
        let end = match open_link(cfg, remote, signals).await {
            Ok(Ok(mut link)) => {
                tracing::info!("Initialization Sequence Completed");
                if !privileges_dropped && (cfg.user.is_some() || cfg.group.is_some()) {
                    crate::host::process::drop_privileges(cfg)?;
                    privileges_dropped = true;
                }
                let mut run =
                    Run::new(cfg, channel, queue, setup, &link, &local_opts, &remote_opts);
                let r = run.drive(&mut link, signals).await;
                let _ = link.flush().await;
                r?
            }
            Ok(Err(end)) => end,
            Err(e) => {
                tracing::warn!(error = %e, "link set-up failed");
                End::Restart
            }
        };
        match end {
            End::Stop(o) => break o,
            End::Restart => {
                restarts += 1;
                if !cfg.persist_tun
                    && let Some((t, setup)) = tun.take()
                {
                    teardown(&mut routes);
                    let info = setup.tun_info(t.name(), None);
                    host_tun::run_up_down(
                        cfg,
                        &runner,
                        true,
                        &info,
                        ScriptContext::Restart,
                        Some("sigusr1"),
                        &ScriptEnv::new(),
                    )
                    .await;
                    drop(t);
                }
                let delay = Duration::from_secs(u64::from(cfg.connect_retry.initial.max(1)));
                tracing::info!(?delay, "Restart pause");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    s = signals.signal() => match s {
                        Signal::Term => break Outcome::Exit(0),
                        Signal::Hup => break Outcome::Reload,
                        Signal::Usr1 | Signal::Usr2 => {}
                    },
                }
            }
        }
    };
    teardown(&mut routes);
    if let Some((t, setup)) = tun.take() {
        let info = setup.tun_info(t.name(), None);
        host_tun::run_up_down(
            cfg,
            &runner,
            true,
            &info,
            ScriptContext::Init,
            Some("sigterm"),
            &ScriptEnv::new(),
        )
        .await;
    }
    Ok(outcome)
}

/// `route` / `route-ipv6` on the device (the default gateway of a tun
/// route is the device itself; no `route-metric` default, no `route-up`).
fn install_routes(cfg: &Config, dev: &str, setup: &TunSetup, rt: &mut RouteTable) {
    let remote_host = cfg
        .remotes
        .first()
        .and_then(|r| r.host.parse::<std::net::IpAddr>().ok());
    let target = routes::RouteTarget {
        dev,
        setup,
        remote_host,
        tap_gw: None,
        default_metric: None,
        gateways: None,
    };
    let mut errs = Vec::new();
    let v6 = routes::configured_v6(cfg);
    let mut added = routes::RoutesAdded::default();
    routes::install(rt, &target, &cfg.routes, v6, &mut added, &mut errs);
    routes::log_failures(errs);
}

fn local_addr(cfg: &Config, v6: bool) -> Result<SocketAddr, DaemonError> {
    let port = if cfg.nobind { 0 } else { cfg.lport };
    Ok(match &cfg.local {
        Some(l) => SocketAddr::new(
            l.parse()
                .map_err(|_| DaemonError::Unsupported(format!("local {l}: not an IP address")))?,
            port,
        ),
        None if v6 => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)),
        None => SocketAddr::from(([0, 0, 0, 0], port)),
    })
}

/// Binds, listens or connects; `Ok(Err(end))` when a signal came first.
async fn open_link(
    cfg: &Config,
    remote: Option<&cfgt::Remote>,
    signals: &mut Inputs,
) -> Result<Result<Link, End>, DaemonError> {
    let transport = remote.map_or(cfg.proto.transport, |r| r.proto.transport);
    let opts = setup::tcp_options(cfg);
    match transport {
        CfgTransport::Udp => {
            let peer = match remote {
                Some(r) => Some(resolve_remote(r).await?),
                None => None,
            };
            let v6 = peer.map_or(cfg.proto.family == cfgt::AddrFamily::V6, |p| p.is_ipv6());
            let uc = setup::udp_config(cfg, local_addr(cfg, v6)?);
            let link = UdpLink::bind(&uc)?;
            tracing::info!(local = %link.local_addr(), remote = ?peer, "UDP link");
            // Room for a whole packet of a large tun-mtu too.
            let slot = usize::try_from(cfg.tun_mtu)
                .unwrap_or(1500)
                .saturating_add(256)
                .max(2048);
            let rx = link.recv_batch_buffer(16, slot.min(LINK_MAX));
            Ok(Ok(Link::Udp {
                link,
                peer,
                fixed: peer.is_some(),
                rx,
                tx: SendBatch::with_capacity(64 * 1600),
            }))
        }
        CfgTransport::TcpServer => {
            let v6 = cfg.proto.family == cfgt::AddrFamily::V6;
            let server = TcpServer::bind(local_addr(cfg, v6)?, v6, opts)?;
            tracing::info!(local = ?server.local_addr().ok(), "Listening for incoming TCP connection");
            // With a `remote`, only that host may connect (2.6 resolves it
            // again for every attempt and compares addresses, not ports).
            let (l, peer) = loop {
                let (l, peer) = tokio::select! {
                    r = server.accept() => r?,
                    s = signals.signal() => return Ok(Err(on_signal(s))),
                };
                let Some(r) = remote else {
                    break (l, peer);
                };
                let allowed: Vec<std::net::IpAddr> =
                    match tokio::net::lookup_host((r.host.as_str(), r.port)).await {
                        Ok(a) => a.map(|a| a.ip()).collect(),
                        Err(_) => Vec::new(),
                    };
                if allowed.is_empty() || allowed.contains(&peer.ip()) {
                    break (l, peer);
                }
                tracing::warn!(
                    "TCP NOTE: Rejected connection attempt from {peer} due to --remote setting"
                );
                drop(l);
            };
            tracing::info!(%peer, "TCP connection established");
            let (reader, writer) = l.split();
            Ok(Ok(Link::Tcp {
                reader,
                writer,
                peer,
            }))
        }
        CfgTransport::TcpClient => {
            let Some(r) = remote else {
                return Err(DaemonError::Unsupported(
                    "'proto tcp-client' needs a 'remote'".into(),
                ));
            };
            let addr = resolve_remote(r).await?;
            let l = tokio::select! {
                r = tokio::time::timeout(Duration::from_secs(30), tcp::connect(addr, &opts)) => match r {
                    Ok(l) => l?,
                    Err(_) => return Err(DaemonError::io(format!("TCP connect to {addr}"), std::io::ErrorKind::TimedOut.into())),
                },
                s = signals.signal() => return Ok(Err(on_signal(s))),
            };
            tracing::info!(peer = %addr, "TCP connection established");
            let (reader, writer) = l.split();
            Ok(Ok(Link::Tcp {
                reader,
                writer,
                peer: addr,
            }))
        }
    }
}

fn on_signal(s: Signal) -> End {
    match s {
        Signal::Term => End::Stop(Outcome::Exit(0)),
        Signal::Hup => End::Stop(Outcome::Reload),
        Signal::Usr1 | Signal::Usr2 => End::Restart,
    }
}

/// Counters for SIGUSR2 and the `status` file.
#[derive(Default, Debug)]
struct Stats {
    link_read: u64,
    link_write: u64,
    /// Bytes of packets that authenticated.
    auth_read: u64,
    tun_read: u64,
    tun_write: u64,
    dropped: u64,
    replays: u64,
}

/// The data channel and what goes with it, apart from the batches so that
/// a batch can be walked while packets are sealed or opened.
struct Core<'a> {
    cfg: &'a Config,
    ch: StaticKeyChannel,
    framing: CompressFraming,
    mss: Option<host_tun::MssLimits>,
    /// Scratch: framed plaintext, sealed packet, opened packet.
    frame: Vec<u8>,
    seal: Vec<u8>,
    open: Vec<u8>,
    local_opts: &'a str,
    remote_opts: &'a str,
    /// Origin of the monotonic seconds the replay window wants.
    start: Instant,
    /// When we last sent / received an authenticated packet.
    last_sent: Instant,
    last_recv: Instant,
    occ_next: Option<Instant>,
    occ_tries: u32,
    /// `inactive N [BYTES]`: when the current period started and the tun
    /// bytes counted in it.
    inactive_since: Instant,
    inactive_bytes: u64,
    stats: Stats,
}

/// What one received packet asks of the loop.
enum Got {
    Nothing,
    /// Send this payload back (an OCC reply).
    Reply(Vec<u8>),
    /// The peer left (OCC_EXIT): restart.
    PeerExit,
}

impl Core<'_> {
    /// Frames and seals `payload`; the packet to send.
    fn seal(&mut self, payload: &[u8]) -> Option<&[u8]> {
        let framed = self.framing.frame(payload, &mut self.frame)?;
        let unix = u32::try_from(clock::unix_time()).unwrap_or(u32::MAX);
        match self.ch.seal(framed, unix, &mut self.seal) {
            Ok(p) => {
                self.stats.link_write += p.len() as u64;
                self.last_sent = clock::now();
                Some(p)
            }
            Err(e) => {
                tracing::debug!(error = %e, "packet not sealed");
                None
            }
        }
    }

    /// Seals `payload` and queues it on the link.
    fn send(&mut self, link: &mut Link, payload: &[u8]) {
        match link {
            Link::Udp {
                tx, peer: Some(p), ..
            } => {
                let p = *p;
                if let Some(pkt) = self.seal(payload) {
                    tx.push(p, None, pkt);
                }
            }
            Link::Udp { peer: None, .. } => {}
            Link::Tcp { writer, .. } => {
                if let Some(pkt) = self.seal(payload)
                    && let Err(e) = writer.queue(pkt)
                {
                    tracing::debug!(error = %e, "TCP queue full, packet dropped");
                }
            }
        }
    }

    /// Opens one packet of the link; tun packets go into `ttx`. `Err` is
    /// a drop (not authentic, replayed, malformed).
    fn receive(&mut self, data: &[u8], ttx: &mut TunTxBatch) -> Result<Got, ()> {
        self.stats.link_read += data.len() as u64;
        let now = clock::now();
        let mono = now.duration_since(self.start).as_secs();
        let plain = match self.ch.open(data, &mut self.open, mono) {
            Ok(p) => p,
            Err(StaticDrop::Replay(r)) => {
                self.stats.replays += 1;
                if !self.cfg.mute_replay_warnings {
                    tracing::warn!(
                        "Authenticate/Decrypt packet error: bad packet ID (may be a replay): {r:?} -- see the man page entry for --no-replay and --replay-window for more info or silence this warning with --mute-replay-warnings"
                    );
                }
                return Err(());
            }
            Err(e) => {
                self.stats.dropped += 1;
                tracing::debug!("{e}");
                return Err(());
            }
        };
        self.last_recv = now;
        self.stats.auth_read += data.len() as u64;
        let Ok(plain) = self.framing.unframe(plain) else {
            self.stats.dropped += 1;
            return Err(());
        };
        match classify(plain) {
            Payload::Ping => Ok(Got::Nothing),
            Payload::Occ(OccOpcode::Request, _) => {
                let mut body = self.local_opts.as_bytes().to_vec();
                body.push(0);
                let mut msg = vec![0u8; body.len() + 17];
                Ok(emit_occ(OccOpcode::Reply, &body, &mut msg)
                    .map_or(Got::Nothing, |m| Got::Reply(m.to_vec())))
            }
            Payload::Occ(OccOpcode::Reply, args) => {
                self.occ_next = None;
                let theirs =
                    String::from_utf8_lossy(args.split(|&b| b == 0).next().unwrap_or_default());
                if theirs == self.remote_opts {
                    tracing::info!("OCC: the peer's options string is the one expected");
                } else {
                    tracing::warn!(
                        "WARNING: options of the peer differ: local expects '{}', remote sent '{theirs}'",
                        self.remote_opts
                    );
                }
                Ok(Got::Nothing)
            }
            Payload::Occ(OccOpcode::Exit, _) => {
                tracing::info!("OCC exit message received by peer");
                Ok(Got::PeerExit)
            }
            Payload::Occ(..) => Ok(Got::Nothing),
            Payload::TunPacket(p) => {
                let n = p.len();
                self.stats.tun_write += n as u64;
                let mss = self.mss;
                ttx.push_with(n, |b| {
                    b[..n].copy_from_slice(p);
                    host_tun::clamp(&mut b[..n], mss);
                    n
                });
                self.tun_activity(n);
                Ok(Got::Nothing)
            }
        }
    }

    /// Tun traffic for `inactive`: enough bytes in a period start a new one.
    fn tun_activity(&mut self, n: usize) {
        if let Some(i) = self.cfg.inactive {
            self.inactive_bytes += n as u64;
            if self.inactive_bytes >= i.bytes {
                self.inactive_bytes = 0;
                self.inactive_since = clock::now();
            }
        }
    }

    fn inactive_due(&self) -> Option<Instant> {
        self.cfg
            .inactive
            .filter(|i| i.seconds > 0)
            .map(|i| self.inactive_since + Duration::from_secs(u64::from(i.seconds)))
    }

    /// OpenVPN's STATISTICS block for the status file and `status`.
    fn snapshot(&self) -> ClientStatus {
        ClientStatus {
            now: clock::unix_time(),
            tun_read_bytes: self.stats.tun_read,
            tun_write_bytes: self.stats.tun_write,
            link_read_bytes: self.stats.link_read,
            link_write_bytes: self.stats.link_write,
            auth_read_bytes: self.stats.auth_read,
            ..ClientStatus::default()
        }
    }

    /// Writes the `status` file.
    fn write_status(&self) {
        let Some(sf) = &self.cfg.status else {
            return;
        };
        let text = render_client(&self.snapshot(), LineEnd::Lf, &SystemLocalTime);
        if let Err(e) = write_atomic(&sf.path, text.as_bytes()) {
            tracing::warn!(error = %e, "status file");
        }
    }

    /// The answer to a management command this loop knows: `pid`, and
    /// `status` as the status file has it, with CRLF.
    fn mgmt_reply(&self, command: &Command) -> String {
        match command {
            Command::Pid => reply::pid(std::process::id()),
            Command::Status(_) => render_client(&self.snapshot(), LineEnd::CrLf, &SystemLocalTime),
            other => reply::error(&format!(
                "{} is not answered by the tunnel loop",
                command_name(other)
            )),
        }
    }

    fn ping_due(&self) -> Option<Instant> {
        self.cfg
            .ping
            .filter(|&p| p > 0)
            .map(|p| self.last_sent + Duration::from_secs(u64::from(p)))
    }

    /// `ping-timer-rem`: the timer only runs once there is a peer address.
    fn ping_rec_due(&self, have_peer: bool) -> Option<Instant> {
        if self.cfg.ping_timer_rem && !have_peer {
            return None;
        }
        self.cfg
            .ping_rec
            .filter(|r| r.timeout > 0)
            .map(|r| self.last_recv + Duration::from_secs(u64::from(r.timeout)))
    }

    fn on_timers(&mut self, link: &mut Link, now: Instant) -> Option<End> {
        if let Some(d) = self.inactive_due()
            && now >= d
        {
            tracing::info!("Inactivity timeout (--inactive), exiting");
            return Some(End::Stop(Outcome::Exit(0)));
        }
        if let Some(d) = self.ping_rec_due(link.peer().is_some())
            && now >= d
            && let Some(r) = self.cfg.ping_rec
        {
            return Some(match r.action {
                PingAction::Restart => {
                    tracing::info!("Inactivity timeout (--ping-restart), restarting");
                    End::Restart
                }
                PingAction::Exit => {
                    tracing::info!("Inactivity timeout (--ping-exit), exiting");
                    End::Stop(Outcome::Exit(0))
                }
            });
        }
        // Nothing to send to before a peer without `remote` spoke.
        link.peer()?;
        if let Some(d) = self.occ_next
            && now >= d
        {
            self.occ_tries += 1;
            if self.occ_tries > OCC_TRIES {
                tracing::info!("NOTE: failed to obtain options consistency info from peer");
                self.occ_next = None;
            } else {
                let mut msg = [0u8; 17];
                if let Some(m) = emit_occ(OccOpcode::Request, &[], &mut msg) {
                    let m = m.to_vec();
                    self.send(link, &m);
                }
                self.occ_next = Some(now + OCC_INTERVAL);
            }
        }
        if let Some(d) = self.ping_due()
            && now >= d
        {
            self.send(link, &PING_MAGIC);
        }
        None
    }
}

/// One run of the link.
struct Run<'a> {
    core: Core<'a>,
    queue: std::sync::Arc<TunQueue>,
    trx: TunRxBatch,
    ttx: TunTxBatch,
    /// TCP: the packets of the last read, back to back, and their lengths.
    rbuf: Vec<u8>,
    rlens: Vec<usize>,
}

enum Rx {
    Link,
    Closed,
}

impl<'a> Run<'a> {
    fn new(
        cfg: &'a Config,
        ch: StaticKeyChannel,
        queue: std::sync::Arc<TunQueue>,
        setup: &TunSetup,
        link: &Link,
        local_opts: &'a str,
        remote_opts: &'a str,
    ) -> Self {
        let now = clock::now();
        let framing = setup::framing(cfg.compression);
        let overhead = ch.params().overhead() + framing.max_overhead();
        let mss = host_tun::mss_limits(
            cfg,
            link.outer(),
            u16::try_from(overhead.saturating_sub(usize::from(AEAD_DATA_V2_OVERHEAD))).unwrap_or(0),
        );
        Run {
            core: Core {
                cfg,
                ch,
                framing,
                mss,
                frame: vec![0u8; LINK_MAX],
                seal: vec![0u8; LINK_MAX + 256],
                open: vec![0u8; LINK_MAX + 64],
                local_opts,
                remote_opts,
                start: now,
                last_sent: now,
                last_recv: now,
                // The first request once a peer is known, as 2.6 (then every 10 s).
                occ_next: Some(now),
                occ_tries: 0,
                inactive_since: now,
                inactive_bytes: 0,
                stats: Stats::default(),
            },
            trx: queue.rx_batch(TUN_BATCH, 0, setup.mtu),
            ttx: queue.tx_batch(TUN_BATCH),
            queue,
            rbuf: Vec::with_capacity(64 * 1024),
            rlens: Vec::with_capacity(64),
        }
    }

    async fn drive(&mut self, link: &mut Link, signals: &mut Inputs) -> Result<End, DaemonError> {
        let mut status = status_interval(self.core.cfg);
        loop {
            let now = clock::now();
            let timed_out = self.core.on_timers(link, now);
            link.flush().await?;
            if let Some(end) = timed_out {
                return Ok(end);
            }
            if !self.ttx.is_empty() {
                self.queue
                    .send_batch(&mut self.ttx)
                    .await
                    .map_err(|e| DaemonError::io("tun write", e))?;
            }
            let have_peer = link.peer().is_some();
            let deadline = [
                self.core.ping_due(),
                self.core.ping_rec_due(have_peer),
                self.core.occ_next,
                self.core.inactive_due(),
            ]
            .into_iter()
            .flatten()
            .min();
            let can_send = link.peer().is_some();
            tokio::select! {
                i = signals.recv() => match i {
                    Input::Signal(s) => if let Some(end) = self.on_signal(s, link).await? {
                        return Ok(end);
                    },
                    Input::Mgmt { command, reply } => {
                        let _ = reply.send(self.core.mgmt_reply(&command));
                    }
                    Input::Auth(_) => tracing::debug!("authentication result without a server: ignored"),
                },
                r = recv_link(link, &mut self.rbuf, &mut self.rlens) => match r? {
                    Rx::Link => {
                        if let Some(end) = self.on_link(link) {
                            return Ok(end);
                        }
                    }
                    Rx::Closed => {
                        tracing::info!("Connection reset, restarting");
                        return Ok(End::Restart);
                    }
                },
                r = self.queue.recv_batch(&mut self.trx), if can_send => {
                    r.map_err(|e| DaemonError::io("tun read", e))?;
                    let Run { core, trx, .. } = self;
                    let h = trx.headroom();
                    for (slot, len) in trx.iter_slots_mut() {
                        if let Some(p) = slot.get_mut(h..h + len) {
                            host_tun::clamp(p, core.mss);
                            core.stats.tun_read += p.len() as u64;
                            core.tun_activity(p.len());
                            core.send(link, p);
                        }
                    }
                }
                _ = status.tick() => self.core.write_status(),
                _ = sleep_until(deadline) => {}
            }
        }
    }

    /// A signal: statistics, or the end of this run (after OCC_EXIT with
    /// `explicit-exit-notify`).
    async fn on_signal(&mut self, s: Signal, link: &mut Link) -> Result<Option<End>, DaemonError> {
        match s {
            Signal::Usr2 => {
                tracing::info!(stats = ?self.core.stats, "statistics");
                Ok(None)
            }
            Signal::Term
                if self.core.cfg.explicit_exit_notify.is_some()
                    && matches!(link, Link::Udp { .. }) =>
            {
                // The peer restarts at once instead of waiting for
                // its ping-restart.
                let mut msg = [0u8; 17];
                if let Some(m) = emit_occ(OccOpcode::Exit, &[], &mut msg) {
                    let m = m.to_vec();
                    let n = self.core.cfg.explicit_exit_notify.unwrap_or(1).clamp(1, 5);
                    for _ in 0..n {
                        self.core.send(link, &m);
                    }
                }
                link.flush().await?;
                Ok(Some(End::Stop(Outcome::Exit(0))))
            }
            s => {
                tracing::info!(signal = s.name(), "signal received");
                Ok(Some(on_signal(s)))
            }
        }
    }

    /// The packets of one read from the link.
    fn on_link(&mut self, link: &mut Link) -> Option<End> {
        let Run {
            core,
            ttx,
            rbuf,
            rlens,
            ..
        } = self;
        let mut replies: Vec<Vec<u8>> = Vec::new();
        let mut end = None;
        match link {
            Link::Udp {
                rx, peer, fixed, ..
            } => {
                for d in rx.iter() {
                    let known = *peer == Some(d.peer);
                    // Without `float`, a `remote` pins the peer: 2.6 drops
                    // what comes from elsewhere before decrypting it.
                    if !known && *fixed && !core.cfg.float {
                        core.stats.dropped += 1;
                        tracing::debug!(from = %d.peer, "packet from an unexpected address dropped");
                        continue;
                    }
                    let Ok(got) = core.receive(d.data, ttx) else {
                        continue;
                    };
                    if !known {
                        tracing::info!(peer = %d.peer, "Peer Connection Initiated");
                        *peer = Some(d.peer);
                    }
                    match got {
                        Got::Nothing => {}
                        Got::Reply(m) => replies.push(m),
                        Got::PeerExit => end = Some(End::Restart),
                    }
                }
            }
            Link::Tcp { .. } => {
                let mut rest: &[u8] = rbuf;
                for &n in rlens.iter() {
                    let Some((p, tail)) = rest.split_at_checked(n) else {
                        break;
                    };
                    rest = tail;
                    match core.receive(p, ttx) {
                        Ok(Got::Reply(m)) => replies.push(m),
                        Ok(Got::PeerExit) => end = Some(End::Restart),
                        _ => {}
                    }
                }
            }
        }
        for m in replies {
            core.send(link, &m);
        }
        end
    }
}

async fn recv_link(
    link: &mut Link,
    rbuf: &mut Vec<u8>,
    rlens: &mut Vec<usize>,
) -> Result<Rx, DaemonError> {
    match link {
        Link::Udp { link, rx, .. } => {
            link.recv_batch(rx)
                .await
                .map_err(|e| DaemonError::io("UDP receive", e))?;
            Ok(Rx::Link)
        }
        Link::Tcp { reader, .. } => {
            rbuf.clear();
            rlens.clear();
            match reader
                .recv_with(|p| {
                    rbuf.extend_from_slice(p);
                    rlens.push(p.len());
                })
                .await
            {
                Ok(0) if rlens.is_empty() => Ok(Rx::Closed),
                Ok(_) => Ok(Rx::Link),
                Err(e) => {
                    tracing::info!(error = %e, "TCP link closed");
                    Ok(Rx::Closed)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Loader;

    fn cfg(text: &str) -> Config {
        Loader::new("/base")
            .check_files(false)
            .load_str("t.conf", text)
            .unwrap()
    }

    fn strings(text: &str) -> (String, String) {
        let c = cfg(text);
        let cipher = StaticCipher::from_name(c.static_cipher()).unwrap();
        let p = StaticKeyParams {
            cipher,
            auth: Digest::from_name(&c.auth),
            direction: c
                .secret
                .as_ref()
                .and_then(|s| s.direction)
                .unwrap_or_default(),
            replay: (!c.no_replay).then(ReplayConfig::default),
        };
        options_strings(&c, &p)
    }

    /// The strings openvpn 2.6.14 logs at verb 4 for the same options
    /// ("Local Options String" / "Expected Remote Options String").
    #[test]
    fn options_strings_match_openvpn_2_6_14() {
        assert_eq!(
            strings("dev tun\nsecret k 1\nifconfig 10.9.0.1 10.9.0.2\ncipher AES-256-CBC\n"),
            (
                "V4,dev-type tun,link-mtu 1560,tun-mtu 1500,proto UDPv4,ifconfig 10.9.0.2 10.9.0.1,keydir 1,cipher AES-256-CBC,auth SHA1,keysize 256,secret".into(),
                "V4,dev-type tun,link-mtu 1560,tun-mtu 1500,proto UDPv4,ifconfig 10.9.0.1 10.9.0.2,keydir 0,cipher AES-256-CBC,auth SHA1,keysize 256,secret".into(),
            )
        );
        let (l, r) = strings("dev tun\nsecret k\nproto tcp-server\ncipher AES-128-CBC\n");
        // 2 bytes of TCP length, 20 HMAC, 8 packet id, 16 IV, 16 padding.
        assert_eq!(
            l,
            "V4,dev-type tun,link-mtu 1562,tun-mtu 1500,proto TCPv4_SERVER,cipher AES-128-CBC,auth SHA1,keysize 128,secret"
        );
        assert!(r.contains("proto TCPv4_CLIENT"));
        let (l, _) = strings("dev tun\nsecret k\ncipher none\nno-replay\n");
        assert_eq!(
            l,
            "V4,dev-type tun,link-mtu 1520,tun-mtu 1500,proto UDPv4,cipher [null-cipher],auth SHA1,keysize 0,secret,no-replay"
        );
        let (l, r) = strings(
            "dev tun\nsecret k\ntopology subnet\nifconfig 10.9.0.1 255.255.255.0\ncipher AES-128-CBC\n",
        );
        assert_eq!(
            l,
            "V4,dev-type tun,link-mtu 1560,tun-mtu 1500,proto UDPv4,ifconfig 10.9.0.0 255.255.255.0,cipher AES-128-CBC,auth SHA1,keysize 128,secret"
        );
        assert_eq!(l, r);
        let (l, _) =
            strings("dev tun\nsecret k\nifconfig-ipv6 fd00::1/64 fd00::2\ncipher AES-128-CBC\n");
        assert_eq!(
            l,
            "V4,dev-type tun,link-mtu 1560,tun-mtu 1500,proto UDPv4,tun-ipv6,cipher AES-128-CBC,auth SHA1,keysize 128,secret"
        );
        let (l, _) = strings(
            "dev tun\nsecret k 0\nifconfig 10.9.0.1 10.9.0.2\ncipher AES-256-CBC\ncomp-lzo no\n",
        );
        assert!(
            l.contains("proto UDPv4,ifconfig 10.9.0.2 10.9.0.1,comp-lzo,keydir 0,"),
            "{l}"
        );
        for (comp, mtu) in [
            ("comp-lzo no", 1561),
            ("compress stub", 1561),
            ("compress stub-v2", 1560),
        ] {
            let (l, _) = strings(&format!("dev tun\nsecret k\ncipher AES-128-CBC\n{comp}\n"));
            assert!(
                l.contains(&format!(
                    "link-mtu {mtu},tun-mtu 1500,proto UDPv4,comp-lzo,cipher"
                )),
                "{comp}: {l}"
            );
        }
    }
}
