//! End-to-end control channel without the byte layout: two endpoints made of
//! `Reliable` + `TlsSession` exchange hard resets, a TLS handshake cut into
//! control messages, key-method 2 and a multi-part PUSH_REPLY over a lossy,
//! duplicating, reordering link on a virtual clock. This is the glue a
//! `session.rs` will have, minus opcodes, session ids and tls-crypt.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::proto::control_msg::{self, ControlMessage};
use crate::proto::key_method::{IvProto, KeyMethod2, KeySource, OptionsString, PeerInfo};
use crate::proto::ncp::{self, CipherList};
use crate::proto::push::{
    PUSH_PART_MAX, PushProgress, PushReassembly, PushedOptions, Route, RouteAddr, Topology,
    build_push_reply,
};
use crate::proto::reliable::{MessageId, MessageKind, Reliable, ReliableConfig};
use crate::proto::tls::{
    EKM_LABEL_DATAKEYS, TlsContext, TlsRole, TlsSession,
    tests::{client_cfg, server_cfg},
};

/// Control-packet payload budget (1250 minus headers, roughly what 2.6 uses).
const MAX_PAYLOAD: usize = 1100;

#[derive(Clone, Debug)]
struct Packet {
    msg: Option<(MessageId, MessageKind, Vec<u8>)>,
    acks: Vec<MessageId>,
}

struct Endpoint {
    role: TlsRole,
    rel: Reliable,
    tls: TlsSession,
    got_reset: bool,
    peer_km: Option<KeyMethod2>,
    push: PushReassembly,
    pushed: Option<PushedOptions>,
    push_reply_parts: Vec<String>,
}

impl Endpoint {
    fn new(role: TlsRole, ctx: &TlsContext) -> Self {
        let mut rel = Reliable::new(ReliableConfig::default());
        let _ = rel.queue_send(MessageKind::HardReset, Vec::new());
        let mut tls = TlsSession::new(ctx).unwrap();
        if role == TlsRole::Client {
            // The client writes key-method 2 right away; TLS holds it until
            // the handshake is done (doc §4.4).
            let mut km = KeyMethod2::new(
                &KeySource::generate(role).unwrap(),
                OptionsString::default_udp(role).to_string(),
            );
            km.peer_info =
                PeerInfo::ours("2.6.14", &["AES-256-GCM", "AES-128-GCM"], 1600).to_string();
            tls.write_plaintext(&km.encode(role).unwrap()).unwrap();
        }
        Self {
            role,
            rel,
            tls,
            got_reset: false,
            peer_km: None,
            push: PushReassembly::new(),
            pushed: None,
            push_reply_parts: Vec::new(),
        }
    }

    /// Move TLS output into reliable messages while the send window allows,
    /// once the peer's reset arrived (the client starts TLS then).
    fn pump_tls_out(&mut self) {
        if !self.got_reset {
            return;
        }
        while self.rel.can_send() {
            let Some(chunk) = self.tls.poll_ciphertext(MAX_PAYLOAD) else {
                break;
            };
            self.rel.queue_send(MessageKind::Control, chunk).unwrap();
        }
    }

    fn handle(&mut self, now: Instant, p: &Packet) {
        self.rel.handle_acks(now, &p.acks);
        if let Some((id, kind, payload)) = &p.msg {
            let _ = self.rel.handle_message(*id, *kind, payload);
        }
        while let Some(d) = self.rel.poll_received() {
            match d.kind {
                MessageKind::HardReset => self.got_reset = true,
                MessageKind::SoftReset => unreachable!(),
                MessageKind::Control => self.tls.handle_ciphertext(&d.payload).unwrap(),
            }
        }
        while let Some(record) = self.tls.poll_plaintext() {
            self.handle_record(&record);
        }
    }

    fn handle_record(&mut self, record: &[u8]) {
        if self.peer_km.is_none() {
            let peer_role = match self.role {
                TlsRole::Client => TlsRole::Server,
                TlsRole::Server => TlsRole::Client,
            };
            let km = KeyMethod2::parse(record, peer_role).unwrap();
            if self.role == TlsRole::Server {
                let pi = PeerInfo::parse(&km.peer_info).unwrap();
                assert!(pi.proto.contains(IvProto::REQUEST_PUSH));
                let ours = KeyMethod2::new(
                    &KeySource::generate(TlsRole::Server).unwrap(),
                    OptionsString::default_udp(TlsRole::Server).to_string(),
                );
                self.tls
                    .write_plaintext(&ours.encode(TlsRole::Server).unwrap())
                    .unwrap();
                // REQUEST_PUSH: reply without waiting for PUSH_REQUEST.
                let choice = ncp::server_select(
                    &CipherList::parse(ncp::DEFAULT_DATA_CIPHERS),
                    &pi,
                    None,
                    None,
                )
                .unwrap();
                let mut opts = PushedOptions {
                    topology: Some(Topology::Subnet),
                    ifconfig: Some((
                        "10.8.0.2".parse().unwrap(),
                        "255.255.255.0".parse().unwrap(),
                    )),
                    peer_id: Some(0),
                    cipher: Some(choice.cipher),
                    ..PushedOptions::default()
                };
                for i in 0..120u8 {
                    opts.routes.push(Route {
                        network: RouteAddr::Addr([172, 16, i, 0].into()),
                        netmask: "255.255.255.0".parse().unwrap(),
                        gateway: None,
                        metric: None,
                    });
                }
                self.push_reply_parts = build_push_reply(&opts.to_lines(), PUSH_PART_MAX).unwrap();
                for part in &self.push_reply_parts {
                    self.tls
                        .write_plaintext(&control_msg::encode(part).unwrap())
                        .unwrap();
                }
            }
            self.peer_km = Some(km);
            return;
        }
        for msg in control_msg::split_record(record).messages {
            match ControlMessage::parse(&msg) {
                ControlMessage::PushReply { options } => {
                    match self.push.handle_part(&options).unwrap() {
                        PushProgress::NeedMore => {}
                        PushProgress::Complete(o) => self.pushed = Some(*o),
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn flush(&mut self, now: Instant, out: &mut Vec<Packet>) {
        self.pump_tls_out();
        while let Some(tx) = self.rel.poll_transmit(now) {
            out.push(Packet {
                msg: Some((tx.message_id, tx.kind, tx.payload.to_vec())),
                acks: tx.acks.as_slice().to_vec(),
            });
        }
        if let Some(acks) = self.rel.poll_ack() {
            out.push(Packet {
                msg: None,
                acks: acks.as_slice().to_vec(),
            });
        }
    }
}

struct Link {
    rng: u64,
    loss_pct: u64,
    dup_pct: u64,
    max_delay_ms: u64,
    seq: u64,
    inflight: Vec<(Instant, u64, usize, Packet)>,
}

impl Link {
    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn send(&mut self, now: Instant, dst: usize, p: Packet) {
        let copies = if self.rand() % 100 < self.dup_pct {
            2
        } else {
            1
        };
        for _ in 0..copies {
            if self.rand() % 100 < self.loss_pct {
                continue;
            }
            let at = now + Duration::from_millis(self.rand() % (self.max_delay_ms + 1));
            self.seq += 1;
            self.inflight.push((at, self.seq, dst, p.clone()));
        }
    }
}

#[allow(clippy::disallowed_methods)] // the virtual clock needs one origin
fn origin() -> Instant {
    Instant::now()
}

/// Run until the client has the full push and both sides are idle; returns
/// the virtual time it took.
fn run(seed: u64, loss_pct: u64, dup_pct: u64, max_delay_ms: u64) -> Duration {
    let cctx = TlsContext::new(&client_cfg()).unwrap();
    let sctx = TlsContext::new(&server_cfg()).unwrap();
    let mut eps = [
        Endpoint::new(TlsRole::Client, &cctx),
        Endpoint::new(TlsRole::Server, &sctx),
    ];
    let mut link = Link {
        rng: seed | 1,
        loss_pct,
        dup_pct,
        max_delay_ms,
        seq: 0,
        inflight: Vec::new(),
    };
    let start = origin();
    let mut now = start;
    for _ in 0..50_000 {
        for (side, ep) in eps.iter_mut().enumerate() {
            let mut out = Vec::new();
            ep.flush(now, &mut out);
            for p in out {
                link.send(now, 1 - side, p);
            }
        }
        let done = eps[0].pushed.is_some() && eps.iter().all(|e| e.rel.all_acked());
        if done {
            break;
        }
        let next_pkt = link.inflight.iter().map(|(t, s, _, _)| (*t, *s)).min();
        let next_rto = eps.iter().filter_map(|e| e.rel.poll_timeout()).min();
        match next_pkt.filter(|(t, _)| next_rto.is_none_or(|r| *t <= r)) {
            Some((t, s)) => {
                now = now.max(t);
                let i = link
                    .inflight
                    .iter()
                    .position(|(pt, ps, _, _)| (*pt, *ps) == (t, s))
                    .unwrap();
                let (_, _, dst, p) = link.inflight.swap_remove(i);
                eps[dst].handle(now, &p);
            }
            None => now = now.max(next_rto.expect("stalled: nothing in flight and no timer")),
        }
    }
    let [c, s] = &eps;
    let pushed = c
        .pushed
        .as_ref()
        .expect("client never got the full PUSH_REPLY");
    assert!(
        s.push_reply_parts.len() > 1,
        "the reply must exercise continuation"
    );
    assert_eq!(pushed.routes.len(), 120);
    assert_eq!(pushed.cipher.as_deref(), Some("AES-256-GCM"));
    assert_eq!(pushed.push_continuation, Some(1));
    assert_eq!(
        c.tls.export_keying_material(EKM_LABEL_DATAKEYS).unwrap(),
        s.tls.export_keying_material(EKM_LABEL_DATAKEYS).unwrap()
    );
    let client_km = s.peer_km.as_ref().unwrap();
    assert!(client_km.pre_master.is_some());
    assert!(c.peer_km.as_ref().unwrap().pre_master.is_none());
    now.duration_since(start)
}

#[test]
fn handshake_key_method_and_multi_part_push_over_a_clean_link() {
    let took = run(7, 0, 0, 20);
    // No loss: no retransmission timeout ever fires.
    assert!(took < Duration::from_secs(2), "{took:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn handshake_completes_over_a_lossy_reordering_link(
        seed in any::<u64>(),
        loss in 0u64..30,
        dup in 0u64..20,
        delay in 0u64..1500,
    ) {
        // Completion (asserted inside) is the property; how long unlucky
        // losses take under exponential backoff is not.
        let _ = run(seed, loss, dup, delay);
    }
}
