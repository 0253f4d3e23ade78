//! `tunnel_server_udp`: the UDP server loop. One socket; packets from
//! unknown addresses go through the stateless cookie front door
//! ([`StatelessResponder`]); known addresses go to their client's session;
//! a P_DATA_V2 from a new address whose peer-id authenticates floats that
//! client. Receives and sends are batched (`recvmmsg`+GRO, `sendmmsg`+GSO),
//! tun reads take every packet queued per wake-up.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{AddrFamily, Config};
use crate::daemon::Outcome;
use crate::daemon::error::DaemonError;
use crate::daemon::process::{Signal, Signals};
use crate::daemon::setup;
use crate::io::clock;
use crate::io::external::udp::{SendBatch, UdpConfig, UdpLink};
use crate::io::mssfix::OuterTransport;
use crate::proto::cookie::{CookieKey, FirstContact, StatelessResponder};
use crate::proto::session::Transport;
use crate::proto::wire::opcode::{Opcode, split_first_byte};
use crate::server::multi::{LinkOut, Multi};
use crate::server::peers::PeerId;

use super::tcp::{ServerTun, bring_up_server_tun};

/// How many datagram slots one receive fills.
const RX_SLOTS: usize = 32;

struct UdpOut<'a>(&'a mut SendBatch);

impl LinkOut for UdpOut<'_> {
    fn send(&mut self, to: SocketAddr, src: Option<IpAddr>, packet: &[u8]) {
        self.0.push(to, src, packet);
    }
    fn send_with(
        &mut self,
        to: SocketAddr,
        src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) {
        self.0.push_with(to, src, max, fill);
    }
}

/// The local address of `local`/`port`/`proto` (dual-stack by default).
pub(crate) fn bind_addr(cfg: &Config) -> Result<SocketAddr, DaemonError> {
    let ip: IpAddr = match &cfg.local {
        Some(l) => l
            .parse()
            .map_err(|_| DaemonError::Unsupported(format!("local {l}: not an IP address")))?,
        None => match cfg.proto.family {
            AddrFamily::V4 => IpAddr::from([0, 0, 0, 0]),
            AddrFamily::V6 | AddrFamily::Any => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        },
    };
    Ok(SocketAddr::new(ip, cfg.lport))
}

/// Runs the UDP server until a signal ends it.
pub async fn tunnel_server_udp(
    cfg: &Config,
    signals: &mut Signals,
) -> Result<Outcome, DaemonError> {
    let tls = Arc::new(setup::tls_context(cfg)?);
    let bind = bind_addr(cfg)?;
    let scfg = Arc::new(setup::session_config(
        cfg,
        tls,
        Transport::Udp,
        bind.is_ipv6(),
    )?);
    let cookie = CookieKey::generate(scfg.hand_window)
        .map_err(|e| DaemonError::Unsupported(format!("cookie key: {e}")))?;
    let mut responder =
        StatelessResponder::new(scfg.clone(), cookie).map_err(|source| DaemonError::Key {
            what: "control channel key",
            source,
        })?;
    let mut uc = UdpConfig::new(bind);
    uc.sndbuf = cfg.sndbuf.map(|b| b as usize);
    uc.rcvbuf = cfg.rcvbuf.map(|b| b as usize);
    let link = UdpLink::bind(&uc)?;
    tracing::info!(local = %link.local_addr(), "UDP server listening");
    let st: ServerTun = bring_up_server_tun(cfg).await?;
    let (mut multi, mut auth_rx) = Multi::new(Arc::new(cfg.clone()), scfg)?;
    let outer = if bind.is_ipv6() {
        OuterTransport::Udp6
    } else {
        OuterTransport::Udp4
    };
    multi.mss = crate::daemon::tunnel::mss_limits(
        cfg,
        outer,
        setup::framing(cfg.compression).max_overhead() as u16,
    );
    let q = st.queue.clone();
    let mtu = st.setup.mtu;
    let mut rx = link.recv_batch_buffer(RX_SLOTS, usize::from(mtu) + 256);
    let mut tx = SendBatch::with_capacity(64 * 1600);
    let mut trx = q.rx_batch(64, 0, mtu);
    let mut ttx = q.tx_batch(64);
    let mut reply = vec![0u8; 2048];
    let mut status = status_interval(cfg);
    let mut dirty: BTreeSet<PeerId> = BTreeSet::new();
    let mut first_contact_drops: u64 = 0;
    let outcome = loop {
        for id in std::mem::take(&mut dirty) {
            multi.drain(id, &mut UdpOut(&mut tx));
        }
        if !tx.is_empty()
            && let Err(e) = link.send_batch(&mut tx).await
        {
            tracing::warn!(error = %e, "UDP send");
            tx.clear();
        }
        if !ttx.is_empty()
            && let Err(e) = q.send_batch(&mut ttx).await
        {
            return Err(DaemonError::io("tun write", e));
        }
        let next = multi.next_timeout();
        let sleep = async {
            match next {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            s = signals.recv() => match s {
                Signal::Term => break Outcome::Exit(0),
                Signal::Hup => break Outcome::Reload,
                Signal::Usr1 => break Outcome::Reload,
                Signal::Usr2 => {
                    tracing::info!(clients = multi.peers.len(), first_contact_drops, route_drops = ?multi.route_drops, "statistics");
                }
            },
            r = link.recv_batch(&mut rx) => {
                if let Err(e) = r {
                    // ICMP errors of one peer surface here; the socket lives on.
                    tracing::debug!(error = %e, "UDP receive");
                    continue;
                }
                let now = clock::now();
                let unix = clock::unix_time();
                for d in rx.iter() {
                    let op = d.data.first().and_then(|b| split_first_byte(*b).ok()).map(|(o, _)| o);
                    // A client reset from a known address is a restarted
                    // client: it goes through the cookie like a new one.
                    let reset = op.is_some_and(Opcode::is_client_reset);
                    if let Some(id) = multi.peers.by_transport(d.peer).filter(|_| !reset) {
                        multi.link_packet(id, None, d.data, d.local_ip, now, unix, &mut UdpOut(&mut tx), &mut ttx);
                        dirty.insert(id);
                        continue;
                    }
                    if op == Some(Opcode::DataV2) {
                        // Float: the peer-id names the instance, the
                        // decryption proves it is that client.
                        let pid = d.data.get(1..4).map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]));
                        if let Some(id) = pid.filter(|id| multi.peers.get(*id).is_some()) {
                            multi.link_packet(id, Some(d.peer), d.data, d.local_ip, now, unix, &mut UdpOut(&mut tx), &mut ttx);
                            dirty.insert(id);
                        } else {
                            first_contact_drops += 1;
                        }
                        continue;
                    }
                    match responder.handle_initial(now, unix, d.peer, d.data, &mut reply) {
                        FirstContact::Reply(r) => {
                            // An authenticated reset from a known address:
                            // that client restarted, its old instance goes
                            // (else the rest of its handshake would reach
                            // the old session).
                            if reset && let Some(old) = multi.peers.by_transport(d.peer) {
                                multi.remove(old);
                            }
                            tx.push(d.peer, d.local_ip, r);
                        }
                        FirstContact::Accept(s) => {
                            if let Some(id) = multi.add_client(*s, d.peer, d.local_ip) {
                                dirty.insert(id);
                            }
                        }
                        FirstContact::Drop(r) => {
                            first_contact_drops += 1;
                            tracing::trace!(reason = ?r, from = %d.peer, "first contact dropped");
                        }
                    }
                }
            }
            r = q.recv_batch(&mut trx) => {
                r.map_err(|e| DaemonError::io("tun read", e))?;
                let now = clock::now();
                let h = trx.headroom();
                for (slot, len) in trx.iter_slots_mut() {
                    if let Some(p) = slot.get_mut(h..h + len) {
                        multi.tun_packet(p, now, &mut UdpOut(&mut tx));
                    }
                }
            }
            Some(r) = auth_rx.recv() => {
                if let Some(id) = multi.auth_done(r) {
                    dirty.insert(id);
                }
            }
            _ = sleep => {
                dirty.extend(multi.timeouts(clock::now(), clock::unix_time()));
            }
            _ = status.tick() => multi.write_status(),
        }
    };
    tracing::info!(?outcome, "server shutting down");
    // explicit-exit-notify: RESTART to every client, then leave.
    let now = clock::now();
    for id in multi.close_all(now) {
        multi.drain(id, &mut UdpOut(&mut tx));
    }
    if !tx.is_empty() {
        let _ = tokio::time::timeout(Duration::from_secs(1), link.send_batch(&mut tx)).await;
    }
    multi.write_status();
    st.shutdown(cfg).await;
    Ok(outcome)
}

/// The `status FILE N` timer (a never-ticking one without `status`).
pub(crate) fn status_interval(cfg: &Config) -> tokio::time::Interval {
    let secs = cfg.status.as_ref().map_or(3600, |s| s.interval.max(1));
    let mut i = tokio::time::interval(Duration::from_secs(u64::from(secs)));
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}
