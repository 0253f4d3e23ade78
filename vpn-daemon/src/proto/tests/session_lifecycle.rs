//! Session lifecycle over the simulated network: renegotiation under a data
//! stream, keepalive and ping-restart, AUTH_FAILED, multi-part push, exit
//! notification in both forms, hand-window.

use std::time::Duration;

use super::sim::{Pair, SimOpts, number_of, numbered};
use crate::proto::event::{CloseReason, Event};
use crate::proto::push::{Route, RouteAddr};
use crate::proto::session::{AuthDecision, DataOutcome, InstanceTimers};
use crate::proto::timers::{Timer, TimerTable};
use crate::proto::wire::KeyId;

/// Retry until the side's control traffic allows a renegotiation.
fn renegotiate(p: &mut Pair, by_client: bool) {
    for _ in 0..200 {
        let now = p.now;
        let r = if by_client {
            p.client.renegotiate(now)
        } else {
            p.server().renegotiate(now)
        };
        if r.is_ok() {
            return;
        }
        p.run_for(Duration::from_millis(10));
    }
    panic!("renegotiation never became possible");
}

/// Stream numbered packets both ways every 10 ms, renegotiating at packet
/// `at`; every packet must arrive exactly once, in order.
fn stream_across_rekeys(by_client: bool, rekeys: &[u32]) -> Pair {
    stream_across_rekeys_with(SimOpts::default(), by_client, rekeys)
}

fn stream_across_rekeys_with(opts: SimOpts, by_client: bool, rekeys: &[u32]) -> Pair {
    let mut p = Pair::new(opts);
    p.connect();
    let total = 400u32;
    for i in 0..total {
        if rekeys.contains(&i) {
            renegotiate(&mut p, by_client);
        }
        p.client_send_data(&numbered(i));
        p.server_send_data(&numbered(i));
        p.run_for(Duration::from_millis(10));
    }
    p.run_for(Duration::from_secs(1));
    let mut c2s: Vec<u32> = p.server_tun.iter().map(|t| number_of(t)).collect();
    let mut s2c: Vec<u32> = p.client_tun.iter().map(|t| number_of(t)).collect();
    // With jitter packets may arrive reordered; each must arrive exactly once.
    c2s.sort_unstable();
    s2c.sort_unstable();
    assert_eq!(c2s, (0..total).collect::<Vec<_>>(), "client→server stream");
    assert_eq!(s2c, (0..total).collect::<Vec<_>>(), "server→client stream");
    assert_eq!(p.data_drops, 0);
    assert!(p.client_closed().is_none() && p.server_closed().is_none());
    p
}

fn renegotiated(events: &[Event]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Renegotiated { key_id } => Some(*key_id),
            _ => None,
        })
        .collect()
}

#[test]
fn client_initiated_renegotiation_mid_stream_loses_no_data() {
    let mut p = stream_across_rekeys(true, &[100, 250]);
    assert_eq!(renegotiated(&p.client_events), vec![1, 2]);
    assert_eq!(renegotiated(&p.server_events), vec![1, 2]);
    assert_eq!(p.client.primary_key_id(), KeyId::new(2).expect("key id"));
    assert_eq!(p.client.lame_duck_key_id(), KeyId::new(1));
    assert_eq!(
        p.client.data_channel().send_key_id(),
        KeyId::new(2),
        "the sender switches to the newest key"
    );
    // key_id > 0 went over the dynamic tls-crypt key, whose replay state
    // carried across both renegotiations without a replay drop.
    assert!(p.client.dyn_tls_crypt_active());
    assert_eq!(p.server().drops().total(), 0);
    assert_eq!(p.client.drops().total(), 0);
}

#[test]
fn server_initiated_renegotiation_mid_stream_loses_no_data() {
    let mut p = stream_across_rekeys(false, &[150]);
    assert_eq!(renegotiated(&p.client_events), vec![1]);
    assert_eq!(p.server().primary_key_id(), KeyId::new(1).expect("key id"));
    // The server re-authenticated the client on the new key.
    let creds = p
        .server_events
        .iter()
        .filter(|e| matches!(e, Event::ClientCredentials { .. }))
        .count();
    assert_eq!(creds, 2);
}

#[test]
fn renegotiations_under_reordering_lose_no_data() {
    for (seed, by_client) in [(1, true), (2, false), (3, true)] {
        let link = super::sim::LinkCfg {
            jitter: Duration::from_millis(40),
            ..super::sim::LinkCfg::default()
        };
        let p = stream_across_rekeys_with(
            SimOpts {
                seed,
                c2s: link,
                s2c: link,
                ..SimOpts::default()
            },
            by_client,
            &[80, 200, 320],
        );
        assert_eq!(renegotiated(&p.client_events), vec![1, 2, 3], "seed {seed}");
    }
}

#[test]
fn reneg_sec_renegotiates_repeatedly_and_key_ids_wrap_to_1() {
    let mut p = Pair::new(SimOpts {
        reneg_sec: Some(Duration::from_secs(20)),
        ..SimOpts::default()
    });
    p.connect();
    // 9 renegotiations: key ids 1..7, then 1, 2 again (0 is never reused).
    p.run_until(Duration::from_secs(400), |p| {
        renegotiated(&p.client_events).len() >= 9
    });
    let ids = renegotiated(&p.client_events);
    assert!(ids.len() >= 9, "{ids:?} after {:?}", p.elapsed());
    assert_eq!(&ids[..9], &[1, 2, 3, 4, 5, 6, 7, 1, 2]);
    p.client_send_data(&numbered(7));
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.server_tun.len(), 1);
    assert!(p.client_closed().is_none() && p.server_closed().is_none());
}

#[test]
fn ping_restart_fires_when_the_peer_goes_silent() {
    let mut p = Pair::new(SimOpts::default());
    p.connect();
    let t0 = p.elapsed();
    p.blackhole = true;
    p.run_until(Duration::from_secs(300), |p| {
        p.client_closed().is_some() && p.server_closed().is_some()
    });
    assert_eq!(p.client_closed(), Some(&CloseReason::PingRestart));
    assert_eq!(p.server_closed(), Some(&CloseReason::PingRestart));
    // The client got ping-restart 60 by push; the server uses 2 × 60.
    let took = p.elapsed() - t0;
    assert!(
        took >= Duration::from_secs(119) && took <= Duration::from_secs(121),
        "{took:?}"
    );
}

#[test]
fn per_client_timers_override_the_servers_own() {
    let mut p = Pair::new(SimOpts::default());
    p.connect();
    let t0 = p.elapsed();
    let now = p.now;
    // A client-config-dir file with `ping-restart 20` for this client.
    p.server.as_mut().expect("server").override_timers(
        now,
        InstanceTimers {
            ping_restart: Some(Duration::from_secs(20)),
            ..InstanceTimers::default()
        },
    );
    p.blackhole = true;
    p.run_until(Duration::from_secs(300), |p| p.server_closed().is_some());
    assert_eq!(p.server_closed(), Some(&CloseReason::PingRestart));
    let took = p.elapsed() - t0;
    assert!(
        took >= Duration::from_secs(19) && took <= Duration::from_secs(21),
        "{took:?} (the configured 2 x 60 s would be 120 s)"
    );
}

#[test]
fn client_ping_restart_follows_the_pushed_value() {
    let mut p = Pair::new(SimOpts::default());
    p.connect();
    let t0 = p.elapsed();
    p.blackhole = true;
    p.run_until(Duration::from_secs(300), |p| p.client_closed().is_some());
    let took = p.elapsed() - t0;
    assert!(
        took >= Duration::from_secs(59) && took <= Duration::from_secs(61),
        "{took:?}"
    );
}

#[test]
fn keepalive_pings_keep_an_idle_tunnel_alive() {
    let mut p = Pair::new(SimOpts::default());
    p.connect();
    p.run_for(Duration::from_secs(400));
    assert!(p.client_closed().is_none(), "{:?}", p.client_closed());
    assert!(p.server_closed().is_none());
    // ping 10: roughly one each way every 10 s of silence.
    assert!(p.client_pings >= 30, "{}", p.client_pings);
    assert!(p.server_pings >= 30, "{}", p.server_pings);
}

#[test]
fn denied_client_gets_auth_failed_and_the_server_drops_it() {
    let mut p = Pair::new(SimOpts {
        auth: AuthDecision::Deny(Some("bad password".into())),
        ..SimOpts::default()
    });
    p.run_until(Duration::from_secs(30), |p| {
        p.client_closed().is_some() && p.server_closed().is_some()
    });
    assert!(
        p.client_events
            .iter()
            .any(|e| matches!(e, Event::AuthFailed(_))),
        "{:?}",
        p.client_events
    );
    assert!(
        matches!(p.client_closed(), Some(CloseReason::AuthFailed(r)) if r.contains("bad password"))
    );
    assert!(matches!(
        p.server_closed(),
        Some(CloseReason::AuthFailed(_))
    ));
    assert!(!p.client.is_connected());
    // The username and password travelled in key-method 2.
    assert!(p.server_events.iter().any(|e| matches!(
        e,
        Event::ClientCredentials { username: Some(u), password: Some(pw), common_name: Some(_), .. }
            if u == "alice" && pw == "secret"
    )));
}

#[test]
fn push_reply_with_many_routes_arrives_in_continuation_parts() {
    let mut opts = SimOpts::default();
    for i in 0..150u16 {
        opts.push.routes.push(Route {
            network: RouteAddr::Addr([172, 16 + (i / 256) as u8, (i % 256) as u8, 0].into()),
            netmask: [255, 255, 255, 0].into(),
            gateway: None,
            metric: None,
        });
    }
    let mut p = Pair::new(opts);
    p.connect();
    let pushed = p.client.pushed_options().cloned().expect("pushed");
    assert_eq!(pushed.routes.len(), 150);
    assert_eq!(pushed.push_continuation, Some(1));
    assert_eq!(pushed.ping, Some(10));
    assert_eq!(pushed.ping_restart, Some(60));
    assert_eq!(pushed.tun_mtu, Some(1500));
    assert!(
        p.client_events
            .iter()
            .any(|e| matches!(e, Event::PushReply(_)))
    );
}

#[test]
fn explicit_exit_notify_over_the_control_channel_with_cc_exit() {
    let mut p = Pair::new(SimOpts::default());
    p.connect();
    assert!(
        p.client
            .pushed_options()
            .and_then(|o| o.protocol_flags)
            .is_some_and(|f| f.contains(crate::proto::push::ProtocolFlags::CC_EXIT))
    );
    let now = p.now;
    p.client.close(now, true);
    p.run_until(Duration::from_secs(20), |p| {
        p.client_closed().is_some() && p.server_closed().is_some()
    });
    assert_eq!(p.client_closed(), Some(&CloseReason::Local));
    assert_eq!(p.server_closed(), Some(&CloseReason::PeerExit));
    assert_eq!(p.data_drops, 0);
}

#[test]
fn explicit_exit_notify_with_occ_exit_data_packets_without_cc_exit() {
    let mut p = Pair::new(SimOpts {
        cc_exit: false,
        explicit_exit_notify: Some(3),
        ..SimOpts::default()
    });
    p.connect();
    let pushed = p.client.pushed_options().cloned().expect("pushed");
    assert!(pushed.protocol_flags.is_none());
    assert!(
        pushed.uses_tls_ekm(),
        "key-derivation tls-ekm for clients without bit 7"
    );
    let now = p.now;
    p.client.close(now, true);
    p.run_until(Duration::from_secs(20), |p| {
        p.client_closed().is_some() && p.server_closed().is_some()
    });
    assert_eq!(p.server_closed(), Some(&CloseReason::PeerExit));
    assert_eq!(p.client_closed(), Some(&CloseReason::Local));
}

#[test]
fn server_shutdown_with_exit_notify_sends_restart() {
    let mut p = Pair::new(SimOpts::default());
    p.connect();
    let now = p.now;
    p.server().close(now, true);
    p.run_until(Duration::from_secs(20), |p| p.client_closed().is_some());
    assert!(matches!(p.client_closed(), Some(CloseReason::Restart(_))));
    assert!(
        p.client_events
            .iter()
            .any(|e| matches!(e, Event::Restart(_)))
    );
}

#[test]
fn handshake_gives_up_after_hand_window() {
    let mut p = Pair::new(SimOpts::default());
    p.blackhole = true;
    p.run_until(Duration::from_secs(120), |p| p.client_closed().is_some());
    assert_eq!(p.client_closed(), Some(&CloseReason::HandshakeTimeout));
    assert!(p.elapsed() >= Duration::from_secs(60) && p.elapsed() < Duration::from_secs(61));
}

#[test]
fn client_sends_push_request_after_one_second_when_the_server_waits_for_it() {
    let mut p = Pair::new(SimOpts {
        request_push: false,
        ..SimOpts::default()
    });
    p.connect();
    // The server only answers PUSH_REQUEST, which goes out 1 s after ACTIVE.
    assert!(p.elapsed() >= Duration::from_secs(1), "{:?}", p.elapsed());
    assert!(p.elapsed() < Duration::from_secs(2), "{:?}", p.elapsed());
    assert!(
        p.server_events
            .iter()
            .any(|e| matches!(e, Event::PushRequested))
    );
    assert!(p.client.pushed_options().is_some());
}

#[test]
fn reneg_pkts_triggers_a_renegotiation_without_losing_data() {
    let mut p = Pair::new(SimOpts {
        reneg_pkts: Some(100),
        ..SimOpts::default()
    });
    p.connect();
    for i in 0..300u32 {
        p.client_send_data(&numbered(i));
        p.run_for(Duration::from_millis(10));
    }
    p.run_for(Duration::from_secs(1));
    let got: Vec<u32> = p.server_tun.iter().map(|t| number_of(t)).collect();
    assert_eq!(got, (0..300).collect::<Vec<_>>());
    assert!(!renegotiated(&p.client_events).is_empty());
}

#[test]
fn inactive_closes_a_tunnel_without_tun_traffic_even_with_pings() {
    let mut p = Pair::new(SimOpts {
        client_inactive: Some(Duration::from_secs(30)),
        ..SimOpts::default()
    });
    p.connect();
    let t0 = p.elapsed();
    p.client_send_data(&numbered(1));
    p.run_until(Duration::from_secs(100), |p| p.client_closed().is_some());
    assert_eq!(p.client_closed(), Some(&CloseReason::Inactive));
    let took = p.elapsed() - t0;
    assert!(
        took >= Duration::from_secs(30) && took < Duration::from_secs(31),
        "{took:?}"
    );
    assert!(p.client_pings > 0, "pings alone do not count as activity");
}

#[test]
fn server_ignores_push_request_within_30_s_of_its_push_reply() {
    use crate::proto::control_msg::ControlMessage;
    let mut p = Pair::new(SimOpts::default());
    p.connect();
    let late_replies = |p: &Pair| {
        p.client_events
            .iter()
            .filter(|e| matches!(e, Event::Warning(w) if w.contains("PUSH_REPLY")))
            .count()
    };
    let now = p.now;
    p.client
        .send_control_message(now, &ControlMessage::PushRequest)
        .expect("send");
    p.run_for(Duration::from_secs(2));
    let requests = |p: &Pair| {
        p.server_events
            .iter()
            .filter(|e| matches!(e, Event::PushRequested))
            .count()
    };
    assert_eq!(requests(&p), 1);
    assert_eq!(
        late_replies(&p),
        0,
        "a crossing PUSH_REQUEST gets no second reply"
    );
    p.run_for(Duration::from_secs(30));
    let now = p.now;
    p.client
        .send_control_message(now, &ControlMessage::PushRequest)
        .expect("send");
    p.run_for(Duration::from_secs(2));
    assert_eq!(requests(&p), 2);
    assert_eq!(late_replies(&p), 1, "after 30 s the server answers again");
}

#[test]
fn renegotiation_with_prf_keys_and_tls_auth_loses_no_data() {
    let mut p = stream_across_rekeys_with(
        SimOpts {
            wrap: super::sim::Wrap::Auth,
            ekm: false,
            ..SimOpts::default()
        },
        true,
        &[100, 250],
    );
    assert!(!p.client.uses_ekm() && !p.server().uses_ekm());
    // dyn-tls-crypt XORs the exported key with the tls-auth key.
    assert!(p.client.dyn_tls_crypt_active());
    assert_eq!(renegotiated(&p.server_events), vec![1, 2]);
}

#[test]
fn renegotiation_keeps_the_original_wrap_without_dyn_tls_crypt() {
    let mut p = stream_across_rekeys_with(
        SimOpts {
            dyn_tls_crypt: false,
            ..SimOpts::default()
        },
        false,
        &[100, 250],
    );
    assert!(!p.client.dyn_tls_crypt_active() && !p.server().dyn_tls_crypt_active());
    let flags = p
        .client
        .pushed_options()
        .and_then(|o| o.protocol_flags)
        .expect("flags");
    assert!(!flags.contains(crate::proto::push::ProtocolFlags::DYN_TLS_CRYPT));
    assert_eq!(renegotiated(&p.client_events), vec![1, 2]);
}

#[test]
fn renegotiation_completes_at_20_percent_loss() {
    for seed in 1..=4u64 {
        let link = super::sim::LinkCfg {
            loss_pct: 20,
            jitter: Duration::from_millis(30),
            ..super::sim::LinkCfg::default()
        };
        let mut p = Pair::new(SimOpts {
            seed,
            c2s: link,
            s2c: link,
            ..SimOpts::default()
        });
        let ok = p.run_until(Duration::from_secs(60), |p| p.both_connected());
        assert!(ok, "seed {seed}: no connection");
        renegotiate(&mut p, seed % 2 == 0);
        let ok = p.run_until(Duration::from_secs(60), |p| {
            !renegotiated(&p.client_events).is_empty() && !renegotiated(&p.server_events).is_empty()
        });
        assert!(ok, "seed {seed}: renegotiation did not finish");
        assert!(p.client_closed().is_none() && p.server_closed().is_none());
    }
}

#[test]
fn close_without_exit_notify_ends_at_once() {
    let mut p = Pair::new(SimOpts::default());
    p.connect();
    let now = p.now;
    p.client.close(now, false);
    assert!(p.client.is_closed());
    p.flush();
    assert_eq!(p.client_closed(), Some(&CloseReason::Local));
    let mut buf = [0u8; 2048];
    assert!(p.client.poll_transmit(now, p.unix(), &mut buf).is_none());
    assert!(p.client.poll_timeout().is_none());
}

#[test]
fn pushed_ping_exit_ends_a_silent_tunnel() {
    let mut opts = SimOpts::default();
    opts.push.ping_exit = Some(30);
    let mut p = Pair::new(opts);
    p.connect();
    let t0 = p.elapsed();
    p.blackhole = true;
    p.run_until(Duration::from_secs(100), |p| p.client_closed().is_some());
    assert_eq!(p.client_closed(), Some(&CloseReason::PingExit));
    let took = p.elapsed() - t0;
    assert!(
        took >= Duration::from_secs(29) && took <= Duration::from_secs(31),
        "{took:?}"
    );
}

#[test]
fn renegotiation_sends_the_pushed_auth_token_instead_of_the_password() {
    let mut opts = SimOpts::default();
    opts.push.auth_token = Some("SESS_ID_tok".into());
    opts.push.auth_token_user = Some("Ym9i".into()); // "bob"
    let mut p = Pair::new(opts);
    p.connect();
    renegotiate(&mut p, true);
    p.run_until(Duration::from_secs(10), |p| {
        !renegotiated(&p.server_events).is_empty()
    });
    let creds: Vec<(Option<String>, Option<String>)> = p
        .server_events
        .iter()
        .filter_map(|e| match e {
            Event::ClientCredentials {
                username, password, ..
            } => Some((username.clone(), password.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        creds,
        vec![
            (Some("alice".into()), Some("secret".into())),
            (Some("bob".into()), Some("SESS_ID_tok".into())),
        ]
    );
}

/// Which timers an operation at `t1` moved, and by how much the same
/// operation one second later must move them again.
fn moved_like(s0: &TimerTable, s1: &TimerTable, s2: &TimerTable, what: &str) {
    let mut moved = 0;
    for t in Timer::ALL {
        let expect = if s1.get(t) != s0.get(t) {
            moved += 1;
            s1.get(t).map(|d| d + Duration::from_secs(1))
        } else {
            s1.get(t)
        };
        assert_eq!(s2.get(t), expect, "{what}: {t:?}");
    }
    assert!(moved > 0, "{what}: the wrapper moved no timer");
}

#[test]
fn data_half_driven_apart_and_absorbed_moves_the_same_timers_as_the_wrappers() {
    let mut p = Pair::new(SimOpts {
        client_inactive: Some(Duration::from_secs(300)),
        ..SimOpts::default()
    });
    p.connect();
    let mut wire = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    // Sending: the session's wrapper at t1, the data half itself at t1 + 1 s.
    let s0 = p.client.timers().clone();
    let t1 = p.now + Duration::from_secs(1);
    let n = p.client.encrypt(t1, &numbered(1), &mut wire).unwrap().len();
    let s1 = p.client.timers().clone();
    let sent = wire[..n].to_vec();
    let t2 = t1 + Duration::from_secs(1);
    let dc = p.client.data_channel_mut();
    let n = dc
        .encrypt(t2, &numbered(2), &mut wire)
        .unwrap()
        .packet
        .len();
    let activity = dc.take_activity();
    assert_eq!((activity.packets_out, activity.last_tx), (1, Some(t2)));
    p.client.absorb(activity);
    moved_like(&s0, &s1, p.client.timers(), "encrypt");
    // Receiving, on the server.
    let s0 = p.server().timers().clone();
    assert!(matches!(
        p.server().decrypt(t1, &sent, &mut out),
        Ok(DataOutcome::Tun(_))
    ));
    let s1 = p.server().timers().clone();
    let dc = p.server().data_channel_mut();
    assert!(matches!(
        dc.decrypt(t2, &wire[..n], &mut out),
        Ok(DataOutcome::Tun(_))
    ));
    let activity = dc.take_activity();
    assert_eq!((activity.packets_in, activity.last_rx), (1, Some(t2)));
    p.server().absorb(activity);
    moved_like(&s0, &s1, p.server().timers(), "decrypt");
}
