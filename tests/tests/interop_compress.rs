//! Compression against stock openvpn 2.6.14 (built with LZO and LZ4), which
//! really compresses when told `allow-compression yes`: `comp-lzo`,
//! `compress lz4-v2`, `compress lz4`, `compress lzo`, a pushed `comp-lzo`
//! both ways, and `allow-compression asym`; ours as server and as client,
//! UDP and one TCP cell.
//!
//! Each cell sends compressible text and random bytes through the tunnel
//! both ways, SHA-256 checked, and proves from the client namespace's
//! underlay counters that the text really crossed the wire compressed
//! (link bytes a fraction of what was carried) exactly in the directions
//! 2.6 compresses, and uncompressed in the others.

use std::{net::Ipv4Addr, process::Command};

use tests::{
    Netns,
    openvpn::{
        Cipher,
        Impl::{self, OpenVpn, Ours},
        Proto, SERVER_TUN_ADDR, TlsWrap, TunnelSpec, client_config,
    },
    require_root,
    topology::{Payload, READY_TIMEOUT, SERVER_ADDR, Tunnel, bulk_transfer_payload},
};

/// Text per direction: enough packets that handshake noise does not matter.
const TEXT: u64 = 3 << 20;
/// Random bytes per direction.
const RANDOM: u64 = 1 << 20;

/// Bytes received and sent on the client namespace's underlay interface.
fn link_bytes(ns: &Netns) -> (u64, u64) {
    let out = Command::new("ip")
        .args(["-n", ns.name(), "-j", "-s", "link", "show", "dev", "eth0"])
        .output()
        .unwrap_or_else(|e| panic!("ip -s link: {e}"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ip -j output: {e}: {:?}", out.stdout));
    let get = |dir: &str| {
        v[0]["stats64"][dir]["bytes"]
            .as_u64()
            .unwrap_or_else(|| panic!("no {dir} bytes in {v}"))
    };
    (get("rx"), get("tx"))
}

/// Which directions carry compressed packets.
#[derive(Clone, Copy, Debug)]
struct Compressed {
    /// Client to server.
    up: bool,
    /// Server to client.
    down: bool,
}

const BOTH: Compressed = Compressed {
    up: true,
    down: true,
};

/// One transfer of `bytes` of `payload`, hash-checked; the underlay bytes
/// it took in its direction.
fn transfer(t: &Tunnel, up: bool, bytes: u64, payload: Payload) -> u64 {
    let client = &t.topo.clients[0];
    let server = &t.topo.server;
    let server_tun: Ipv4Addr = SERVER_TUN_ADDR.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
    let before = link_bytes(client);
    let x = if up {
        bulk_transfer_payload(client, server, server_tun, 5001, bytes, None, payload)
    } else {
        let client_tun = t.client_tun_addr(0);
        bulk_transfer_payload(server, client, client_tun, 5002, bytes, None, payload)
    }
    .unwrap_or_else(|e| {
        panic!(
            "{payload:?} transfer {} failed: {e}; logs in {}",
            if up { "up" } else { "down" },
            t.topo.path().display()
        )
    });
    assert!(
        x.intact(bytes),
        "{payload:?} transfer damaged: {} of {bytes} bytes, sha256 {:x?} vs {:x?}",
        x.bytes,
        x.sent_sha256,
        x.received_sha256
    );
    let after = link_bytes(client);
    if up {
        after.1 - before.1
    } else {
        after.0 - before.0
    }
}

/// Text and random data both ways; text must shrink on the wire exactly in
/// the `compressed` directions.
fn exercise(t: &Tunnel, compressed: Compressed) {
    t.assert_ping_both_ways(0);
    for (up, want) in [(true, compressed.up), (false, compressed.down)] {
        let wire = transfer(t, up, TEXT, Payload::Text);
        let dir = if up {
            "client->server"
        } else {
            "server->client"
        };
        eprintln!(
            "{dir}: {TEXT} bytes of text took {wire} underlay bytes (compressed expected: {want})"
        );
        if want {
            assert!(
                wire < TEXT / 3,
                "{dir}: {wire} underlay bytes for {TEXT} bytes of text: not compressed"
            );
        } else {
            assert!(
                wire > TEXT,
                "{dir}: {wire} underlay bytes for {TEXT} bytes of text: compressed, but 2.6 would not"
            );
        }
        let wire = transfer(t, up, RANDOM, Payload::Random);
        assert!(wire > RANDOM, "{dir}: random data cannot shrink ({wire})");
    }
}

fn spec(proto: Proto, server: &[&str], client: &[&str]) -> TunnelSpec {
    let mut s = TunnelSpec::new(proto, TlsWrap::TlsCrypt, Cipher::Aes256Gcm);
    s.server_extra = server.iter().map(|l| l.to_string()).collect();
    s.client_extra = client.iter().map(|l| l.to_string()).collect();
    s
}

/// OCC lines of openvpn's log (verb 7) that complain about our options
/// string's compression.
fn occ_complaints(t: &Tunnel) -> Vec<String> {
    [&t.server]
        .into_iter()
        .chain(t.clients.iter())
        .filter(|p| p.imp == OpenVpn)
        .flat_map(|p| {
            p.log_text()
                .lines()
                .filter(|l| {
                    (l.contains("comp-lzo") || l.contains("link-mtu"))
                        && (l.contains("used inconsistently") || l.contains("missing in"))
                })
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn cell(server: Impl, client: Impl, spec: TunnelSpec, compressed: Compressed) {
    if !require_root() {
        return;
    }
    let t = Tunnel::start(spec, server, &[client]);
    exercise(&t, compressed);
}

const LZO_YES: &[&str] = &["comp-lzo", "allow-compression yes"];
const LZ4V2_YES: &[&str] = &["compress lz4-v2", "allow-compression yes"];
const LZ4_YES: &[&str] = &["compress lz4", "allow-compression yes"];
const COMPRESS_LZO_YES: &[&str] = &["compress lzo", "allow-compression yes"];

#[test]
fn comp_lzo_ours_server_openvpn_client() {
    if !require_root() {
        return;
    }
    // verb 7 shows 2.6's OCC comparison: our link-mtu counts the LZO byte.
    let mut s = spec(Proto::Udp, LZO_YES, LZO_YES);
    s.client_args = vec!["--verb".into(), "7".into()];
    let t = Tunnel::start(s, Ours, &[OpenVpn]);
    let c = occ_complaints(&t);
    assert!(c.is_empty(), "openvpn disagrees with our OCC string: {c:?}");
    exercise(&t, BOTH);
}

#[test]
fn comp_lzo_openvpn_server_ours_client() {
    cell(OpenVpn, Ours, spec(Proto::Udp, LZO_YES, LZO_YES), BOTH);
}

#[test]
fn lz4_v2_ours_server_openvpn_client() {
    cell(Ours, OpenVpn, spec(Proto::Udp, LZ4V2_YES, LZ4V2_YES), BOTH);
}

#[test]
fn lz4_v2_tcp_openvpn_server_ours_client() {
    cell(OpenVpn, Ours, spec(Proto::Tcp, LZ4V2_YES, LZ4V2_YES), BOTH);
}

#[test]
fn lz4_openvpn_server_ours_client() {
    cell(OpenVpn, Ours, spec(Proto::Udp, LZ4_YES, LZ4_YES), BOTH);
}

#[test]
fn lz4_ours_server_openvpn_client() {
    cell(Ours, OpenVpn, spec(Proto::Udp, LZ4_YES, LZ4_YES), BOTH);
}

#[test]
fn compress_lzo_ours_server_openvpn_client() {
    cell(
        Ours,
        OpenVpn,
        spec(Proto::Udp, COMPRESS_LZO_YES, COMPRESS_LZO_YES),
        BOTH,
    );
}

#[test]
fn compress_lzo_openvpn_server_ours_client() {
    cell(
        OpenVpn,
        Ours,
        spec(Proto::Udp, COMPRESS_LZO_YES, COMPRESS_LZO_YES),
        BOTH,
    );
}

/// The client has no compression line: it takes the server's push.
const PUSH_LZO: &[&str] = &["comp-lzo", "allow-compression yes", "push \"comp-lzo\""];

#[test]
fn pushed_comp_lzo_openvpn_server_ours_client() {
    cell(
        OpenVpn,
        Ours,
        spec(Proto::Udp, PUSH_LZO, &["allow-compression yes"]),
        BOTH,
    );
}

#[test]
fn pushed_comp_lzo_ours_server_openvpn_client() {
    cell(
        Ours,
        OpenVpn,
        spec(Proto::Udp, PUSH_LZO, &["allow-compression yes"]),
        BOTH,
    );
}

/// `asym` on our side: we decompress what openvpn compresses, and send
/// uncompressed, as 2.6 does.
#[test]
fn asym_ours_client_decompresses_only() {
    cell(
        OpenVpn,
        Ours,
        spec(Proto::Udp, LZO_YES, &["comp-lzo", "allow-compression asym"]),
        Compressed {
            up: false,
            down: true,
        },
    );
}

#[test]
fn asym_ours_server_decompresses_only() {
    cell(
        Ours,
        OpenVpn,
        spec(
            Proto::Udp,
            &["compress lz4-v2", "allow-compression asym"],
            LZ4V2_YES,
        ),
        Compressed {
            up: true,
            down: false,
        },
    );
}

/// 2.6's default (`allow-compression` unset, no compression line) refuses a
/// pushed `comp-lzo`; so do we, with 2.6's message.
#[test]
fn pushed_comp_lzo_refused_by_default() {
    if !require_root() {
        return;
    }
    let mut t = Tunnel::start_server(spec(Proto::Udp, PUSH_LZO, &[]), OpenVpn, 1);
    let text = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
    let c = t.add_client(0, Ours, &text);
    let needle = "server pushed compression settings that are not allowed";
    assert!(
        c.wait_for_nth(needle, 1, READY_TIMEOUT),
        "no refusal of the pushed comp-lzo; log:\n{}",
        c.log_text()
    );
    assert_eq!(c.count(tests::openvpn::ready_line(Ours, false)), 0);
}

/// `compress migrate`: an openvpn client still configured with `comp-lzo`
/// gets `compress stub-v2` pushed (it announces IV_COMP_STUBv2) and then
/// talks to us without compression, as with a 2.6 server.
#[test]
fn migrate_ours_server_moves_a_comp_lzo_client_to_stub_v2() {
    if !require_root() {
        return;
    }
    // verb 7 shows 2.6's OCC comparison (D_SHOW_OCC).
    let mut s = spec(Proto::Udp, &["compress migrate"], &["comp-lzo"]);
    s.client_args = vec!["--verb".into(), "7".into()];
    let t = Tunnel::start(s, Ours, &[OpenVpn]);
    let c = occ_complaints(&t);
    assert!(
        c.is_empty(),
        "openvpn disagrees with the OCC string of compress migrate: {c:?}"
    );
    assert!(
        t.clients[0].count("compress stub-v2") > 0,
        "no 'compress stub-v2' in the pushed options; log:\n{}",
        t.clients[0].log_text()
    );
    exercise(
        &t,
        Compressed {
            up: false,
            down: false,
        },
    );
}
