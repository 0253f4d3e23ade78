//! Session handshakes over the simulated network: wraps, TLS versions, key
//! derivation, loss, tampering, the stateless cookie and the TCP path.

use std::time::Duration;

use super::sim::{LinkCfg, Pair, SimOpts, Wrap, number_of, numbered};
use crate::proto::cookie::{CookieKey, FirstContact, StatelessResponder};
use crate::proto::error::DropReason;
use crate::proto::session::{Session, Transport};
use crate::proto::tls::TlsVersion;
use crate::proto::wire::control::{ControlRepr, SessionId};

/// Data flows both ways with the derived keys (proves both ends agree).
fn exchange_data(p: &mut Pair, n: u32) {
    for i in 0..n {
        p.client_send_data(&numbered(i));
        p.server_send_data(&numbered(1000 + i));
    }
    p.run_for(Duration::from_secs(1));
    let c2s: Vec<u32> = p.server_tun.iter().map(|t| number_of(t)).collect();
    let s2c: Vec<u32> = p.client_tun.iter().map(|t| number_of(t)).collect();
    assert_eq!(c2s, (0..n).collect::<Vec<_>>());
    assert_eq!(s2c, (1000..1000 + n).collect::<Vec<_>>());
}

fn handshake(wrap: Wrap, tls_max: Option<TlsVersion>, ekm: bool) -> Pair {
    let mut p = Pair::new(SimOpts {
        wrap,
        tls_max,
        ekm,
        ..SimOpts::default()
    });
    p.connect();
    // No loss: connected after a few round trips, no retransmission timeout.
    assert!(p.elapsed() < Duration::from_secs(1), "{:?}", p.elapsed());
    assert_eq!(p.client.uses_ekm(), ekm);
    assert_eq!(p.server().uses_ekm(), ekm);
    exchange_data(&mut p, 5);
    assert_eq!(p.client.drops().total(), 0, "{:?}", p.client.drops());
    assert_eq!(p.server().drops().total(), 0);
    // One stateless answer, then the cookie echo opened the session.
    assert_eq!(p.stateless_replies, 1);
    p
}

#[test]
fn handshake_completes_with_tls_crypt_tls13_ekm() {
    let mut p = handshake(Wrap::Crypt, None, true);
    let pushed = p.client.pushed_options().cloned().expect("pushed");
    assert_eq!(pushed.cipher.as_deref(), Some("AES-256-GCM"));
    assert_eq!(pushed.peer_id, Some(3));
    assert!(pushed.uses_tls_ekm());
    assert!(p.client.dyn_tls_crypt_active());
    assert!(p.server().dyn_tls_crypt_active());
}

#[test]
fn handshake_completes_with_tls_auth_tls12_prf() {
    handshake(Wrap::Auth, Some(TlsVersion::Tls12), false);
}

#[test]
fn handshake_completes_without_wrap_tls12_ekm() {
    handshake(Wrap::None, Some(TlsVersion::Tls12), true);
}

#[test]
fn handshake_completes_without_wrap_tls13_prf() {
    handshake(Wrap::None, None, false);
}

#[test]
fn handshake_completes_with_tls_crypt_v2_and_early_negotiation() {
    let mut p = Pair::new(SimOpts {
        wrap: Wrap::CryptV2,
        ..SimOpts::default()
    });
    p.connect();
    exchange_data(&mut p, 3);
    assert_eq!(p.stateless_replies, 1);
}

#[test]
fn tls_crypt_v2_client_without_early_negotiation_gets_a_stateful_server() {
    let mut p = Pair::new(SimOpts {
        wrap: Wrap::CryptV2,
        v2_early_negotiation: false,
        ..SimOpts::default()
    });
    p.connect();
    exchange_data(&mut p, 3);
    assert_eq!(p.stateless_replies, 0);
}

#[test]
fn handshake_completes_over_tcp_without_cookie() {
    let mut p = Pair::new(SimOpts {
        transport: Transport::Tcp,
        ..SimOpts::default()
    });
    p.connect();
    exchange_data(&mut p, 3);
    assert_eq!(p.stateless_replies, 0);
}

#[test]
fn handshake_completes_at_20_percent_loss_each_way() {
    for seed in 1..=6u64 {
        let link = LinkCfg {
            loss_pct: 20,
            jitter: Duration::from_millis(30),
            ..LinkCfg::default()
        };
        let mut p = Pair::new(SimOpts {
            seed,
            c2s: link,
            s2c: link,
            ..SimOpts::default()
        });
        let ok = p.run_until(Duration::from_secs(60), |p| p.both_connected());
        assert!(
            ok,
            "seed {seed}: not connected after {:?}: {:?} / {:?} drops {:?}",
            p.elapsed(),
            p.client_events,
            p.server_events,
            p.client.drops()
        );
    }
}

#[test]
fn handshake_survives_duplication_and_reordering() {
    for seed in 1..=4u64 {
        let link = LinkCfg {
            dup_pct: 30,
            jitter: Duration::from_millis(200),
            ..LinkCfg::default()
        };
        let mut p = Pair::new(SimOpts {
            seed,
            c2s: link,
            s2c: link,
            ..SimOpts::default()
        });
        let ok = p.run_until(Duration::from_secs(60), |p| p.both_connected());
        assert!(ok, "seed {seed}");
    }
}

#[test]
fn tampered_packets_are_dropped_and_counted_and_the_session_completes() {
    for seed in 1..=3u64 {
        let link = LinkCfg {
            tamper_pct: 25,
            ..LinkCfg::default()
        };
        let mut p = Pair::new(SimOpts {
            seed,
            c2s: link,
            s2c: link,
            ..SimOpts::default()
        });
        p.connect();
        for i in 0..40 {
            p.client_send_data(&numbered(i));
            p.server_send_data(&numbered(i));
            p.run_for(Duration::from_millis(5));
        }
        p.run_for(Duration::from_secs(1));
        assert!(p.tampered_delivered > 5, "seed {seed}: too few tampered");
        assert_eq!(
            p.tampered_accepted, 0,
            "seed {seed}: a tampered packet was accepted"
        );
        // Every delivered data packet is either intact or counted.
        let total = p.client.drops().total() + p.server().drops().total();
        assert!(total as usize + p.responder_drops >= p.tampered_delivered);
        let server_drops = p.server().drops().clone();
        let reasons: Vec<DropReason> = p
            .client
            .drops()
            .nonzero()
            .chain(server_drops.nonzero())
            .map(|(r, _)| r)
            .collect();
        assert!(
            reasons
                .iter()
                .any(|r| matches!(r, DropReason::BadTag | DropReason::Replay)),
            "{reasons:?}"
        );
        // Intact data arrived exactly once and in order.
        let got: Vec<u32> = p.server_tun.iter().map(|t| number_of(t)).collect();
        let mut sorted = got.clone();
        sorted.dedup();
        assert_eq!(got, sorted);
    }
}

/// Drive a client against a bare responder by hand.
struct Manual {
    client: Session,
    responder: StatelessResponder,
    pair: Pair,
}

fn manual() -> Manual {
    let pair = Pair::new(SimOpts::default());
    let responder = StatelessResponder::new(
        pair.server_cfg(),
        CookieKey::from_bytes([5; 32], Duration::from_secs(60)),
    )
    .expect("responder");
    let client = Session::new_client(pair.client_cfg(), pair.now, pair.unix()).expect("client");
    Manual {
        client,
        responder,
        pair,
    }
}

fn transmit(s: &mut Session, p: &Pair) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    while let Some(n) = s.poll_transmit(p.now, p.unix(), &mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

#[test]
fn cookie_server_keeps_no_state_until_the_echo_and_answers_replays_afresh() {
    let mut m = manual();
    let addr = "198.51.100.9:40000".parse().expect("addr");
    let reset = transmit(&mut m.client, &m.pair);
    assert_eq!(reset.len(), 1);
    let mut r1 = vec![0u8; 2048];
    let mut r2 = vec![0u8; 2048];
    let now = m.pair.now;
    let unix = m.pair.unix();
    let a = match m
        .responder
        .handle_initial(now, unix, addr, &reset[0], &mut r1)
    {
        FirstContact::Reply(r) => r.to_vec(),
        other => panic!("{other:?}"),
    };
    // The same reset again (a retransmission or a replay): a fresh stateless
    // answer, nothing remembered in between.
    let b = match m
        .responder
        .handle_initial(now, unix, addr, &reset[0], &mut r2)
    {
        FirstContact::Reply(r) => r.to_vec(),
        other => panic!("{other:?}"),
    };
    assert_eq!(a, b, "same bucket, same answer: nothing was kept");
    // The client takes the answer and opens with ack 0 + message id 1.
    m.client.handle_packet(now, unix, &a);
    let opening = transmit(&mut m.client, &m.pair);
    assert!(!opening.is_empty());
    // A forged cookie: a responder with another key refuses the echo.
    let mut other = StatelessResponder::new(
        m.pair.server_cfg(),
        CookieKey::from_bytes([6; 32], Duration::from_secs(60)),
    )
    .expect("responder");
    let mut r3 = vec![0u8; 2048];
    assert!(matches!(
        other.handle_initial(now, unix, addr, &opening[0], &mut r3),
        FirstContact::Drop(DropReason::BadCookie)
    ));
    // Expired: three buckets later the echo no longer counts.
    assert!(matches!(
        m.responder
            .handle_initial(now, unix + 3 * 30 + 1, addr, &opening[0], &mut r3),
        FirstContact::Drop(DropReason::BadCookie)
    ));
    // From another address the echo does not count either.
    let elsewhere = "198.51.100.10:40000".parse().expect("addr");
    assert!(matches!(
        m.responder
            .handle_initial(now, unix, elsewhere, &opening[0], &mut r3),
        FirstContact::Drop(DropReason::BadCookie)
    ));
    // 2.6.15+: an echo may only open with message id ≤ 1 and acks ≤ 1.
    let echoed = ControlRepr::parse_bytes(&m.pair.unwrap_client_packet(&opening[0]))
        .expect("parse")
        .acks;
    let mut cw = m
        .pair
        .client_cfg()
        .wrap
        .build(crate::proto::keys::Role::Client)
        .expect("wrap")
        .expect("wrap");
    for (acks, msg_id) in [(&[0u32][..], 2u32), (&[0, 2][..], 1)] {
        let forged = ControlRepr {
            opcode: crate::proto::wire::Opcode::ControlV1,
            key_id: crate::proto::wire::KeyId::ZERO,
            session_id: m.client.local_session_id(),
            acks: crate::proto::wire::AckBlock::new(acks, echoed.remote_session_id().expect("sid"))
                .expect("acks"),
            message_id: Some(msg_id),
            payload: b"tls",
        };
        let mut plain = vec![0u8; forged.buffer_len()];
        forged.emit(&mut plain).expect("emit");
        let mut wire = vec![0u8; plain.len() + 64];
        let pid = crate::proto::replay::PacketIdLong {
            id: 40,
            time: unix as u32,
        };
        let w = cw.wrap(&plain, pid, &mut wire).expect("wrap").to_vec();
        assert!(matches!(
            m.responder.handle_initial(now, unix, addr, &w, &mut r3),
            FirstContact::Drop(DropReason::BadCookie)
        ));
    }
    // The genuine echo creates the session, which processed the ClientHello.
    match m
        .responder
        .handle_initial(now, unix, addr, &opening[0], &mut r3)
    {
        FirstContact::Accept(s) => {
            assert_eq!(s.remote_session_id(), Some(m.client.local_session_id()));
            assert_eq!(m.client.remote_session_id(), Some(s.local_session_id()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn client_acks_the_server_reset_with_message_id_1_until_the_server_answers() {
    let mut m = manual();
    let addr = "198.51.100.9:40000".parse().expect("addr");
    let now = m.pair.now;
    let unix = m.pair.unix();
    let reset = transmit(&mut m.client, &m.pair);
    let mut r = vec![0u8; 2048];
    let answer = match m
        .responder
        .handle_initial(now, unix, addr, &reset[0], &mut r)
    {
        FirstContact::Reply(r) => r.to_vec(),
        other => panic!("{other:?}"),
    };
    m.client.handle_packet(now, unix, &answer);
    let first = transmit(&mut m.client, &m.pair);
    // Nothing answers; the retransmission after tls-timeout must still carry
    // ack 0 for the server's sid.
    let later = m.pair.now + Duration::from_secs(3);
    m.client.handle_timeout(later, unix + 3);
    let mut buf = vec![0u8; 4096];
    let n = m
        .client
        .poll_transmit(later, unix + 3, &mut buf)
        .expect("retransmission");
    for pkt in [&first[0][..], &buf[..n]] {
        let plain = m.pair.unwrap_client_packet(pkt);
        let repr = ControlRepr::parse_bytes(&plain).expect("parse");
        assert_eq!(repr.acks.ids(), &[0]);
        assert_eq!(repr.message_id, Some(1));
        let cookie: SessionId = repr.acks.remote_session_id().expect("sid");
        assert!(
            m.responder
                .cookie_key()
                .verify(unix, &addr, &repr.session_id, &cookie)
        );
    }
}

#[test]
fn control_packets_respect_the_tls_mtu_so_a_1300_byte_link_suffices() {
    for wrap in [Wrap::Crypt, Wrap::CryptV2] {
        let link = LinkCfg {
            mtu: 1300,
            ..LinkCfg::default()
        };
        let mut p = Pair::new(SimOpts {
            wrap,
            c2s: link,
            s2c: link,
            ..SimOpts::default()
        });
        p.connect();
        assert_eq!(p.mtu_drops, 0, "{wrap:?}");
    }
}

#[test]
fn data_before_keys_is_refused_and_unknown_key_ids_are_counted() {
    let mut p = Pair::new(SimOpts::default());
    let now = p.now;
    let mut dst = [0u8; 256];
    assert!(matches!(
        p.client.encrypt(now, &numbered(1), &mut dst),
        Err(crate::proto::session::SessionError::NoKey)
    ));
    p.connect();
    let mut pkt = vec![0u8; 128];
    let n = p
        .client
        .encrypt(now, &numbered(2), &mut pkt)
        .expect("encrypt")
        .len();
    pkt.truncate(n);
    pkt[0] = (pkt[0] & !7) | 5; // key_id 5: nothing installed there
    let mut out = [0u8; 256];
    assert_eq!(
        p.server().decrypt(now, &pkt, &mut out),
        Err(DropReason::UnknownKeyId)
    );
    assert_eq!(p.server().drops().get(DropReason::UnknownKeyId), 1);
}

mod garbage {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Arbitrary bytes, and valid packets with arbitrary bytes changed,
        /// never panic the session or the responder; they are dropped.
        #[test]
        fn arbitrary_packets_are_dropped_without_panicking(
            junk in proptest::collection::vec(any::<u8>(), 0..300),
            flips in proptest::collection::vec((any::<usize>(), 1u8..), 1..4),
        ) {
            let mut p = Pair::new(SimOpts { wrap: Wrap::None, ..SimOpts::default() });
            p.connect();
            let now = p.now;
            let unix = p.unix();
            p.client.handle_packet(now, unix, &junk);
            let mut out = vec![0u8; 512];
            let _ = p.server().decrypt(now, &junk, &mut out);
            let mut reply = vec![0u8; 2048];
            let addr = "192.0.2.1:1".parse().expect("addr");
            let _ = p.responder.handle_initial(now, unix, addr, &junk, &mut reply);
            // A valid data packet with changed bytes.
            let mut pkt = vec![0u8; 128];
            let n = p.client.encrypt(now, &numbered(9), &mut pkt).expect("encrypt").len();
            pkt.truncate(n);
            for (i, x) in &flips {
                let l = pkt.len();
                pkt[i % l] ^= x;
            }
            let _ = p.server().decrypt(now, &pkt, &mut out);
            p.server().handle_packet(now, unix, &pkt);
            prop_assert!(p.server().drops().total() >= 1);
        }
    }
}

#[test]
fn stateless_answers_are_rate_limited_per_window() {
    let mut m = manual();
    m.responder
        .set_connect_freq_initial(2, Duration::from_secs(10));
    let addr = "198.51.100.9:40000".parse().expect("addr");
    let reset = transmit(&mut m.client, &m.pair);
    let now = m.pair.now;
    let unix = m.pair.unix();
    let mut r = vec![0u8; 2048];
    let mut answer = |m: &mut Manual, at: Duration| {
        matches!(
            m.responder
                .handle_initial(now + at, unix, addr, &reset[0], &mut r),
            FirstContact::Reply(_)
        )
    };
    assert!(answer(&mut m, Duration::ZERO));
    assert!(answer(&mut m, Duration::from_secs(1)));
    assert!(
        !answer(&mut m, Duration::from_secs(2)),
        "third answer in the window"
    );
    assert!(answer(&mut m, Duration::from_secs(11)), "a new window");
}

#[test]
fn a_refused_server_certificate_closes_the_client_with_a_tls_reason() {
    // 2040: every testdata certificate has expired by then.
    let mut p = Pair::new(SimOpts {
        client_verify_time: Some(2_208_988_800),
        ..SimOpts::default()
    });
    p.run_until(Duration::from_secs(30), |p| p.client_closed().is_some());
    match p.client_closed() {
        Some(crate::proto::event::CloseReason::Tls(msg)) => {
            assert!(msg.to_lowercase().contains("expired"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!p.client.is_connected());
}

/// What an unauthenticated flood reaches, the responder and a session's
/// control input, costs no heap allocation per packet.
#[test]
fn forged_control_packets_allocate_nothing() {
    use crate::test_alloc::allocs;
    let mut m = manual();
    let addr = "198.51.100.9:40000".parse().expect("addr");
    let mut forged = transmit(&mut m.client, &m.pair).remove(0);
    let last = forged.len() - 1;
    forged[last] ^= 0x55;
    let (now, unix) = (m.pair.now, m.pair.unix());
    let mut reply = vec![0u8; 2048];
    // The first packet sizes the kept buffers.
    let _ = m
        .responder
        .handle_initial(now, unix, addr, &forged, &mut reply);
    m.client.handle_packet(now, unix, &forged);
    let before = allocs();
    for _ in 0..100 {
        let r = m
            .responder
            .handle_initial(now, unix, addr, &forged, &mut reply);
        assert!(matches!(r, FirstContact::Drop(_)), "{r:?}");
        m.client.handle_packet(now, unix, &forged);
    }
    let during = allocs() - before;
    assert_eq!(during, 0, "{during} allocations for 200 forged packets");
    assert!(m.client.drops().total() >= 100);
}
