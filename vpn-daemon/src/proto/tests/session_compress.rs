//! Compression between two sessions over the simulated network: a pushed
//! `comp-lzo` accepted or refused per the client's `allow-compression`, and
//! packets compressed in exactly the directions 2.6 compresses.

use super::sim::{Pair, SimOpts};
use crate::proto::data::compress::{CompressFraming, CompressOptions, PUSH_REFUSED};
use crate::proto::event::CloseReason;
use crate::proto::push::{CompLzoMode, PushedCompression};

/// An IPv4-looking packet of text, which LZO shrinks a lot.
fn text_packet() -> Vec<u8> {
    let mut v = vec![0x45, 0, 5, 0xDC];
    while v.len() < 1400 {
        v.extend_from_slice(b"all work and no play makes jack a dull boy ");
    }
    v.truncate(1400);
    v
}

fn opts(allow: Option<&str>, comp_lzo: bool) -> CompressOptions {
    let mut o = CompressOptions::default();
    if let Some(a) = allow {
        o.allow_compression(a).unwrap();
    }
    if comp_lzo {
        o.comp_lzo(None).unwrap();
    }
    o.apply_default();
    o
}

fn pushing_comp_lzo(client: CompressOptions) -> SimOpts {
    let mut o = SimOpts {
        client_compress: client,
        server_compress: opts(Some("yes"), true),
        ..SimOpts::default()
    };
    o.push.compression = Some(PushedCompression::CompLzo(CompLzoMode::Bare));
    o
}

#[test]
fn default_client_refuses_a_pushed_comp_lzo() {
    let mut p = Pair::new(pushing_comp_lzo(CompressOptions::stub_only_default()));
    p.run_until(std::time::Duration::from_secs(30), |p| {
        p.client_closed().is_some()
    });
    assert_eq!(
        p.client_closed(),
        Some(&CloseReason::ProtocolViolation(PUSH_REFUSED.into()))
    );
}

#[test]
fn asym_client_takes_the_push_and_decompresses_but_sends_uncompressed() {
    let mut p = Pair::new(pushing_comp_lzo(opts(Some("asym"), false)));
    p.connect();
    assert_eq!(
        p.client.data_channel().compressor().framing(),
        CompressFraming::Lzo
    );
    assert!(!p.client.data_channel().compressor().compresses());
    let pkt = text_packet();
    let mut dst = vec![0u8; 2048];
    let now = p.now;
    let down = p.server().encrypt(now, &pkt, &mut dst).unwrap().len();
    assert!(down < pkt.len() / 4, "the server compresses: {down}");
    let up = p.client.encrypt(now, &pkt, &mut dst).unwrap().len();
    assert!(up > pkt.len(), "asym: the client does not: {up}");
    p.server_send_data(&pkt);
    p.client_send_data(&pkt);
    p.run_for(std::time::Duration::from_secs(1));
    assert_eq!(p.client_tun.last(), Some(&pkt));
    assert_eq!(p.server_tun.last(), Some(&pkt));
}

#[test]
fn yes_client_compresses_towards_the_server_too() {
    let mut p = Pair::new(pushing_comp_lzo(opts(Some("yes"), false)));
    p.connect();
    let pkt = text_packet();
    let mut dst = vec![0u8; 2048];
    let now = p.now;
    let up = p.client.encrypt(now, &pkt, &mut dst).unwrap().len();
    assert!(up < pkt.len() / 4, "{up}");
    p.client_send_data(&pkt);
    p.run_for(std::time::Duration::from_secs(1));
    assert_eq!(p.server_tun.last(), Some(&pkt));
}
