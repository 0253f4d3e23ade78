//! Every packet of the real OpenVPN 2.6.14 captures in `testdata/openvpn-2.6.14/`
//! goes through our wire parsers, control-channel unwrapping and data-channel
//! decryption, with the keys the two processes logged (`keys.txt`).
//!
//! What is checked, per scenario:
//! - every datagram / TCP record parses (opcode, key_id, control layout);
//! - every control packet unwraps (tls-crypt static or dynamic key, tls-auth,
//!   or plain), parses, re-emits and re-wraps to the exact captured bytes;
//! - every data packet decrypts to the tunnelled ICMP echo (request c2s,
//!   reply s2c) and the replay window accepts it exactly once;
//! - mutations of tags, HMACs, packet ids and key ids are rejected with the
//!   right reason.
//!
//! `cargo test -p vpn-daemon --test captures -- --ignored write_fuzz_seeds`
//! (re)writes the seed corpus of `fuzz/` from these captures.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use etherparse::{SlicedPacket, TransportSlice};
use pcap_file::pcap::PcapReader;
use vpn_daemon::proto::data::compress::CompressFraming;
use vpn_daemon::proto::data::crypto::{DataCipher, RecvKey};
use vpn_daemon::proto::data::hmac::Digest;
use vpn_daemon::proto::data::keyring::RecvKeyRing;
use vpn_daemon::proto::data::payload::{Payload, classify};
use vpn_daemon::proto::error::{CryptoError, DropReason};
use vpn_daemon::proto::keys::{Key2, KeyDirection, KeySlot, Role};
use vpn_daemon::proto::replay::{ReplayConfig, ReplayWindow};
use vpn_daemon::proto::wire::control::{ControlPacket, ControlRepr, SessionId};
use vpn_daemon::proto::wire::opcode::{KeyId, Opcode, split_first_byte};
use vpn_daemon::proto::wire::tcp::TcpDecoder;
use vpn_daemon::proto::wire::tls_auth::TlsAuth;
use vpn_daemon::proto::wire::tls_crypt::TlsCrypt;

const SERVER_PORT: u16 = 1194;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Dir {
    C2s,
    S2c,
}

impl Dir {
    fn name(self) -> &'static str {
        match self {
            Dir::C2s => "c2s",
            Dir::S2c => "s2c",
        }
    }
}

fn scenario_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/openvpn-2.6.14")
        .join(name)
}

/// OpenVPN packets of a capture, in order, with their direction. TCP streams
/// are reassembled per direction and split on the 16-bit length prefixes.
fn read_packets(name: &str) -> Vec<(Dir, Vec<u8>)> {
    let f = fs::File::open(scenario_dir(name).join("capture.pcap")).unwrap();
    let mut r = PcapReader::new(f).unwrap();
    let mut out = Vec::new();
    let mut tcp: HashMap<Dir, (Option<u32>, TcpDecoder)> = HashMap::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        let s = SlicedPacket::from_ethernet(&p.data).unwrap();
        match s.transport {
            Some(TransportSlice::Udp(u)) => {
                let dir = if u.source_port() == SERVER_PORT {
                    Dir::S2c
                } else {
                    Dir::C2s
                };
                out.push((dir, u.payload().to_vec()));
            }
            Some(TransportSlice::Tcp(t)) => {
                let dir = if t.source_port() == SERVER_PORT {
                    Dir::S2c
                } else {
                    Dir::C2s
                };
                let (next_seq, dec) = tcp
                    .entry(dir)
                    .or_insert_with(|| (None, TcpDecoder::new(4096)));
                if t.syn() {
                    *next_seq = Some(t.sequence_number().wrapping_add(1));
                    continue;
                }
                let payload = t.payload();
                if payload.is_empty() {
                    continue;
                }
                // In-order segments only; a retransmission of bytes already
                // seen would have an older sequence number.
                assert_eq!(
                    Some(t.sequence_number()),
                    *next_seq,
                    "{name}: out-of-order TCP segment"
                );
                *next_seq = Some(t.sequence_number().wrapping_add(payload.len() as u32));
                let mut rest = dec.feed(payload);
                loop {
                    while let Some(rec) = dec.next_packet().unwrap() {
                        out.push((dir, rec.to_vec()));
                    }
                    if rest.is_empty() {
                        break;
                    }
                    rest = dec.feed(rest);
                }
            }
            _ => {}
        }
    }
    for (dir, (_, dec)) in &tcp {
        assert_eq!(
            dec.buffered(),
            0,
            "{name} {dir:?}: partial record left at end of stream"
        );
    }
    out
}

/// `keys.txt`: section title → "dir name" → bytes.
fn read_keys(name: &str) -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
    let text = fs::read_to_string(scenario_dir(name).join("keys.txt")).unwrap();
    let mut out: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(s) = line.strip_prefix('[') {
            section = s.trim_end_matches(']').to_string();
            continue;
        }
        if line.starts_with('#')
            || !line.contains(" = ")
            || !(line.starts_with("c2s") || line.starts_with("s2c"))
        {
            continue;
        }
        let (k, v) = line.split_once(" = ").unwrap();
        let v = v.split_whitespace().next().unwrap();
        out.entry(section.clone())
            .or_default()
            .insert(k.to_string(), hex::decode(v).unwrap());
    }
    out
}

fn section<'a>(
    keys: &'a BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    prefix: &str,
) -> &'a BTreeMap<String, Vec<u8>> {
    keys.iter()
        .find(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no [{prefix}...]"))
}

fn data_cipher(name: &str) -> DataCipher {
    let text = fs::read_to_string(scenario_dir(name).join("keys.txt")).unwrap();
    let line = text.lines().find(|l| l.starts_with("data_cipher")).unwrap();
    DataCipher::from_name(line.split_once('=').unwrap().1.trim()).unwrap()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wrap {
    None,
    TlsAuthSha256,
    TlsCrypt,
}

/// Per-direction receive and send contexts for the control channel.
struct ControlKeys {
    /// key_id 0: what the receiver of each direction uses.
    recv: HashMap<Dir, Receiver>,
    /// key_id 0: what the sender of each direction uses (to re-wrap).
    send: HashMap<Dir, Receiver>,
    /// Dynamic tls-crypt (key_id > 0): receiver and sender per direction.
    dyn_recv: HashMap<Dir, TlsCrypt>,
    dyn_send: HashMap<Dir, TlsCrypt>,
}

enum Receiver {
    Plain,
    Auth(TlsAuth),
    Crypt(TlsCrypt),
}

fn slot(sec: &BTreeMap<String, Vec<u8>>, dir: Dir, cipher: &str, hmac: &str) -> KeySlot {
    let c = sec
        .get(&format!("{} {cipher}", dir.name()))
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let h = sec
        .get(&format!("{} {hmac}", dir.name()))
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    KeySlot::from_prefixes(c, h).unwrap()
}

fn control_keys(name: &str, wrap: Wrap) -> ControlKeys {
    let keys = read_keys(name);
    let mut ck = ControlKeys {
        recv: HashMap::new(),
        send: HashMap::new(),
        dyn_recv: HashMap::new(),
        dyn_send: HashMap::new(),
    };
    match wrap {
        Wrap::None => {
            for d in [Dir::C2s, Dir::S2c] {
                ck.recv.insert(d, Receiver::Plain);
                ck.send.insert(d, Receiver::Plain);
            }
        }
        Wrap::TlsAuthSha256 => {
            let text = fs::read_to_string(scenario_dir(name).join("tls-auth.key")).unwrap();
            let key = Key2::from_static_key_file(&text).unwrap();
            // Server key-direction 0, client 1 (the configs).
            let server = || TlsAuth::new(&key, KeyDirection::Normal, Digest::Sha256);
            let client = || TlsAuth::new(&key, KeyDirection::Inverse, Digest::Sha256);
            ck.recv.insert(Dir::C2s, Receiver::Auth(server()));
            ck.recv.insert(Dir::S2c, Receiver::Auth(client()));
            ck.send.insert(Dir::C2s, Receiver::Auth(client()));
            ck.send.insert(Dir::S2c, Receiver::Auth(server()));
            // The logged keys are the slots the key direction selects.
            let sec = section(&keys, "control channel: tls-auth");
            assert_eq!(key.slot(1).hmac()[..32], sec["c2s hmac_sha256_key"][..]);
            assert_eq!(key.slot(0).hmac()[..32], sec["s2c hmac_sha256_key"][..]);
        }
        Wrap::TlsCrypt => {
            let text = fs::read_to_string(scenario_dir(name).join("tls-crypt.key")).unwrap();
            let key = Key2::from_static_key_file(&text).unwrap();
            let server = || TlsCrypt::new(&key, Role::Server).unwrap();
            let client = || TlsCrypt::new(&key, Role::Client).unwrap();
            ck.recv.insert(Dir::C2s, Receiver::Crypt(server()));
            ck.recv.insert(Dir::S2c, Receiver::Crypt(client()));
            ck.send.insert(Dir::C2s, Receiver::Crypt(client()));
            ck.send.insert(Dir::S2c, Receiver::Crypt(server()));
            let sec = section(&keys, "control channel: tls-crypt static");
            assert_eq!(key.slot(1).cipher()[..32], sec["c2s aes256ctr_key"][..]);
            assert_eq!(key.slot(1).hmac()[..32], sec["c2s hmac_sha256_key"][..]);
            assert_eq!(key.slot(0).cipher()[..32], sec["s2c aes256ctr_key"][..]);
            assert_eq!(key.slot(0).hmac()[..32], sec["s2c hmac_sha256_key"][..]);
            let dy = section(&keys, "control channel: dynamic");
            let c2s = slot(dy, Dir::C2s, "aes256ctr_key", "hmac_sha256_key");
            let s2c = slot(dy, Dir::S2c, "aes256ctr_key", "hmac_sha256_key");
            // Same slot rules as the static key: server out = keys[0] = s2c.
            let block = Key2::from_slots(&s2c, &c2s);
            ck.dyn_recv
                .insert(Dir::C2s, TlsCrypt::new(&block, Role::Server).unwrap());
            ck.dyn_recv
                .insert(Dir::S2c, TlsCrypt::new(&block, Role::Client).unwrap());
            ck.dyn_send
                .insert(Dir::C2s, TlsCrypt::new(&block, Role::Client).unwrap());
            ck.dyn_send
                .insert(Dir::S2c, TlsCrypt::new(&block, Role::Server).unwrap());
        }
    }
    ck
}

fn data_keys(name: &str) -> HashMap<(Dir, u8), RecvKey> {
    let keys = read_keys(name);
    let cipher = data_cipher(name);
    let mut out = HashMap::new();
    for (title, sec) in &keys {
        let Some(kid) = title.strip_prefix("data channel key_id ") else {
            continue;
        };
        let kid: u8 = kid.parse().unwrap();
        for d in [Dir::C2s, Dir::S2c] {
            let s = if cipher.is_aead() {
                slot(sec, d, "cipher_key", "implicit_iv")
            } else {
                slot(sec, d, "cipher_key", "hmac_key")
            };
            let k = RecvKey::new(
                cipher,
                Digest::Sha256,
                &s,
                KeyId::new(kid).unwrap(),
                ReplayConfig::default(),
            )
            .unwrap();
            out.insert((d, kid), k);
        }
    }
    out
}

fn unwrap_control(
    ck: &mut ControlKeys,
    dir: Dir,
    kid: u8,
    wire: &[u8],
) -> Result<(Option<vpn_daemon::proto::replay::PacketIdLong>, Vec<u8>), CryptoError> {
    let mut dst = vec![0u8; wire.len()];
    if kid > 0 && !ck.dyn_recv.is_empty() {
        let (p, b) = ck.dyn_recv.get_mut(&dir).unwrap().unwrap(wire, &mut dst)?;
        return Ok((Some(p), b.to_vec()));
    }
    match ck.recv.get_mut(&dir).unwrap() {
        Receiver::Plain => Ok((None, wire.to_vec())),
        Receiver::Auth(a) => a.unwrap(wire, &mut dst).map(|(p, b)| (Some(p), b.to_vec())),
        Receiver::Crypt(c) => c.unwrap(wire, &mut dst).map(|(p, b)| (Some(p), b.to_vec())),
    }
}

fn rewrap_control(
    ck: &mut ControlKeys,
    dir: Dir,
    kid: u8,
    plain: &[u8],
    pid: Option<vpn_daemon::proto::replay::PacketIdLong>,
) -> Vec<u8> {
    let mut dst = vec![0u8; plain.len() + 128];
    if kid > 0 && !ck.dyn_send.is_empty() {
        return ck
            .dyn_send
            .get_mut(&dir)
            .unwrap()
            .wrap(plain, pid.unwrap(), &mut dst)
            .unwrap()
            .to_vec();
    }
    match ck.send.get_mut(&dir).unwrap() {
        Receiver::Plain => plain.to_vec(),
        Receiver::Auth(a) => a.wrap(plain, pid.unwrap(), &mut dst).unwrap().to_vec(),
        Receiver::Crypt(c) => c.wrap(plain, pid.unwrap(), &mut dst).unwrap().to_vec(),
    }
}

#[derive(Default, Debug)]
struct Counts {
    control: usize,
    data: usize,
    per_opcode: BTreeMap<(Dir, u8, u8), usize>,
}

fn check_scenario(name: &str, wrap: Wrap) -> Counts {
    let packets = read_packets(name);
    assert!(!packets.is_empty());
    let mut ck = control_keys(name, wrap);
    let mut dk = data_keys(name);
    // Replay windows for the control wrap: static key and dynamic key are
    // separate replay states (section 3.6).
    let mut ctl_replay: HashMap<(Dir, bool), ReplayWindow> = HashMap::new();
    let mut sids: HashMap<Dir, SessionId> = HashMap::new();
    let mut last_pid: HashMap<(Dir, u8), u32> = HashMap::new();
    let mut counts = Counts::default();
    for (i, (dir, wire)) in packets.iter().enumerate() {
        let (op, kid) = split_first_byte(wire[0]).unwrap_or_else(|e| panic!("{name} #{i}: {e}"));
        *counts
            .per_opcode
            .entry((*dir, op.as_u8(), kid.value()))
            .or_default() += 1;
        if op.is_control() {
            counts.control += 1;
            let (pid, plain) = unwrap_control(&mut ck, *dir, kid.value(), wire)
                .unwrap_or_else(|e| panic!("{name} #{i} {dir:?} {op:?} kid {}: {e}", kid.value()));
            let pkt = ControlPacket::new_checked(&plain[..])
                .unwrap_or_else(|e| panic!("{name} #{i}: {e}"));
            let repr = ControlRepr::parse_bytes(&plain).unwrap();
            assert_eq!(pkt.opcode(), op);
            assert_eq!(repr.key_id, kid);
            assert_eq!(repr.message_id.is_some(), op != Opcode::AckV1);
            // Session ids: constant per direction, and acks name the peer's.
            let own = *sids.entry(*dir).or_insert(repr.session_id);
            assert_eq!(repr.session_id, own, "{name} #{i}: session id changed");
            if let Some(remote) = repr.acks.remote_session_id() {
                let other = if *dir == Dir::C2s { Dir::S2c } else { Dir::C2s };
                if let Some(o) = sids.get(&other) {
                    assert_eq!(remote, *o, "{name} #{i}: ack names the wrong session");
                }
            }
            // parse → emit gives the plain bytes back, and re-wrapping with
            // the sender's key gives the captured bytes back.
            let mut out = vec![0u8; repr.buffer_len()];
            repr.emit(&mut out).unwrap();
            assert_eq!(out, plain);
            assert_eq!(
                rewrap_control(&mut ck, *dir, kid.value(), &plain, pid),
                *wire,
                "{name} #{i}: re-wrap differs"
            );
            if let Some(pid) = pid {
                let w = ctl_replay
                    .entry((*dir, kid.value() > 0))
                    .or_insert_with(|| ReplayWindow::new(ReplayConfig::default()));
                w.mark(pid, 0)
                    .unwrap_or_else(|e| panic!("{name} #{i}: control replay {e:?} {pid:?}"));
                assert!(
                    w.mark(pid, 0).is_err(),
                    "{name} #{i}: control packet accepted twice"
                );
            }
        } else {
            counts.data += 1;
            let key = dk
                .get_mut(&(*dir, kid.value()))
                .unwrap_or_else(|| panic!("{name}: no key {dir:?} {kid:?}"));
            let mut dst = vec![0u8; key.open_buffer_len(wire.len())];
            let opened = key
                .open(wire, &mut dst, 0)
                .unwrap_or_else(|e| panic!("{name} #{i} {dir:?} kid {}: {e}", kid.value()));
            let pid = opened.packet_id;
            let Payload::TunPacket(ip) = classify(opened.plaintext) else {
                panic!("{name} #{i}: not a tun packet");
            };
            let inner = SlicedPacket::from_ip(ip).unwrap();
            let Some(TransportSlice::Icmpv4(icmp)) = inner.transport else {
                panic!("{name} #{i}: inner packet is not ICMPv4");
            };
            assert_eq!(
                icmp.type_u8(),
                if *dir == Dir::C2s { 8 } else { 0 },
                "{name} #{i}"
            );
            let prev = last_pid.insert((*dir, kid.value()), pid).unwrap_or(0);
            assert!(pid > prev, "{name} #{i}: packet ids must rise");
            let mut dst2 = vec![0u8; wire.len() + 16];
            assert_eq!(
                key.open(wire, &mut dst2, 0).err(),
                Some(CryptoError::Replay),
                "{name} #{i}: accepted twice"
            );
        }
    }
    counts
}

#[test]
fn udp_tlscrypt_aes256gcm_every_packet_decodes() {
    let c = check_scenario("udp-tlscrypt-aes256gcm", Wrap::TlsCrypt);
    assert_eq!((c.control, c.data), (16, 10));
}

#[test]
fn udp_tlsauth_chacha_every_packet_decodes() {
    let c = check_scenario("udp-tlsauth-chacha", Wrap::TlsAuthSha256);
    assert_eq!((c.control, c.data), (16, 10));
}

#[test]
fn udp_plain_aes128gcm_every_packet_decodes() {
    let c = check_scenario("udp-plain-aes128gcm", Wrap::None);
    assert_eq!((c.control, c.data), (16, 10));
}

#[test]
fn tcp_tlscrypt_aes256gcm_stream_splits_and_decodes() {
    let c = check_scenario("tcp-tlscrypt-aes256gcm", Wrap::TlsCrypt);
    assert_eq!((c.control, c.data), (14, 10));
}

#[test]
fn udp_reneg_decodes_with_static_and_dynamic_tls_crypt_keys() {
    let c = check_scenario("udp-reneg", Wrap::TlsCrypt);
    assert_eq!(c.data, 100);
    // Counts from the corpus README, per (direction, opcode, key_id).
    let expect = [
        ((Dir::C2s, 3, 1), 1),
        ((Dir::S2c, 3, 1), 1),
        ((Dir::C2s, 4, 1), 3),
        ((Dir::S2c, 4, 1), 4),
        ((Dir::C2s, 5, 1), 3),
        ((Dir::C2s, 9, 1), 20),
        ((Dir::S2c, 9, 1), 20),
        ((Dir::C2s, 3, 2), 1),
        ((Dir::S2c, 3, 2), 1),
        ((Dir::C2s, 4, 2), 4),
        ((Dir::S2c, 4, 2), 4),
        ((Dir::C2s, 5, 2), 3),
        ((Dir::S2c, 5, 2), 1),
        ((Dir::C2s, 9, 2), 4),
        ((Dir::S2c, 9, 2), 13),
        ((Dir::C2s, 9, 0), 26),
        ((Dir::S2c, 9, 0), 17),
    ];
    for (k, n) in expect {
        assert_eq!(c.per_opcode.get(&k).copied().unwrap_or(0), n, "{k:?}");
    }
}

#[test]
fn udp_reneg_key_ring_picks_the_key_from_each_packet() {
    let mut rings: HashMap<Dir, RecvKeyRing> = HashMap::new();
    for ((dir, _), key) in data_keys("udp-reneg") {
        assert!(rings.entry(dir).or_default().install(key).is_none());
    }
    let mut n = 0;
    for (dir, wire) in read_packets("udp-reneg")
        .iter()
        .filter(|(_, w)| w[0] >> 3 == 9)
    {
        let ring = rings.get_mut(dir).unwrap();
        let mut dst = vec![0u8; wire.len()];
        match ring.open_payload(wire, CompressFraming::None, &mut dst, 0) {
            Ok(Payload::TunPacket(ip)) => assert_eq!(ip[0] >> 4, 4),
            other => panic!("{dir:?}: {other:?}"),
        }
        let mut dst = vec![0u8; wire.len()];
        assert_eq!(
            ring.open_payload(wire, CompressFraming::None, &mut dst, 0),
            Err(DropReason::Replay)
        );
        n += 1;
    }
    assert_eq!(n, 100);
}

#[test]
fn dynamic_key_packets_do_not_open_with_the_static_key() {
    let packets = read_packets("udp-reneg");
    let text = fs::read_to_string(scenario_dir("udp-reneg").join("tls-crypt.key")).unwrap();
    let key = Key2::from_static_key_file(&text).unwrap();
    let mut server = TlsCrypt::new(&key, Role::Server).unwrap();
    let mut n = 0;
    for (dir, wire) in packets
        .iter()
        .filter(|(d, w)| *d == Dir::C2s && w[0] >> 3 != 9 && w[0] & 7 > 0)
    {
        let mut dst = vec![0u8; wire.len()];
        assert_eq!(
            server.unwrap(wire, &mut dst).err(),
            Some(CryptoError::BadTag),
            "{dir:?}"
        );
        n += 1;
    }
    assert_eq!(n, 15);
}

#[test]
fn udp_aes256cbc_sha256_decrypts_cbc_hmac() {
    let c = check_scenario("udp-aes256cbc-sha256", Wrap::TlsCrypt);
    assert_eq!((c.control, c.data), (16, 10));
}

fn first_data(name: &str, dir: Dir) -> Vec<u8> {
    read_packets(name)
        .into_iter()
        .find(|(d, w)| *d == dir && w[0] >> 3 == 9)
        .unwrap()
        .1
}

fn open_err(name: &str, dir: Dir, wire: &[u8]) -> Option<DropReason> {
    let mut dk = data_keys(name);
    let kid = wire[0] & 7;
    let Some(key) = dk.get_mut(&(dir, kid)) else {
        return Some(DropReason::UnknownKeyId);
    };
    let mut dst = vec![0u8; wire.len() + 16];
    key.open(wire, &mut dst, 0)
        .err()
        .map(CryptoError::drop_reason)
}

#[test]
fn mutated_aead_data_packets_are_rejected_with_the_right_reason() {
    for name in [
        "udp-tlscrypt-aes256gcm",
        "udp-tlsauth-chacha",
        "udp-plain-aes128gcm",
    ] {
        let wire = first_data(name, Dir::C2s);
        assert_eq!(open_err(name, Dir::C2s, &wire), None);
        let flip = |i: usize, bit: u8| {
            let mut m = wire.clone();
            m[i] ^= bit;
            m
        };
        assert_eq!(
            open_err(name, Dir::C2s, &flip(10, 1)),
            Some(DropReason::BadTag),
            "{name} tag"
        );
        assert_eq!(
            open_err(name, Dir::C2s, &flip(7, 2)),
            Some(DropReason::BadTag),
            "{name} packet id"
        );
        assert_eq!(
            open_err(name, Dir::C2s, &flip(3, 1)),
            Some(DropReason::BadTag),
            "{name} peer id"
        );
        assert_eq!(
            open_err(name, Dir::C2s, &flip(30, 1)),
            Some(DropReason::BadTag),
            "{name} ciphertext"
        );
        assert_eq!(
            open_err(name, Dir::C2s, &flip(0, 3)),
            Some(DropReason::UnknownKeyId),
            "{name} key id"
        );
        assert_eq!(
            open_err(name, Dir::C2s, &wire[..24]),
            Some(DropReason::EmptyPayload)
        );
        assert_eq!(
            open_err(name, Dir::C2s, &wire[..20]),
            Some(DropReason::Truncated)
        );
        // A packet id of 0 never authenticates (and would be refused anyway).
        let mut zero = wire.clone();
        zero[4..8].fill(0);
        assert_eq!(open_err(name, Dir::C2s, &zero), Some(DropReason::Replay));
    }
}

#[test]
fn mutated_cbc_data_packets_fail_hmac_before_decryption() {
    let name = "udp-aes256cbc-sha256";
    let wire = first_data(name, Dir::S2c);
    assert_eq!(open_err(name, Dir::S2c, &wire), None);
    for i in [4usize, 35, 36, 51, 52, wire.len() - 1] {
        let mut m = wire.clone();
        m[i] ^= 0x40;
        assert_eq!(
            open_err(name, Dir::S2c, &m),
            Some(DropReason::BadHmac),
            "byte {i}"
        );
    }
    assert_eq!(
        open_err(name, Dir::S2c, &wire[..wire.len() - 1]),
        Some(DropReason::BadCiphertextLength)
    );
}

#[test]
fn mutated_control_packets_are_rejected_with_the_right_reason() {
    for (name, wrap, reason) in [
        (
            "udp-tlscrypt-aes256gcm",
            Wrap::TlsCrypt,
            CryptoError::BadTag,
        ),
        (
            "udp-tlsauth-chacha",
            Wrap::TlsAuthSha256,
            CryptoError::BadHmac,
        ),
    ] {
        let packets = read_packets(name);
        let (dir, wire) = packets
            .iter()
            .find(|(_, w)| w[0] >> 3 != 9)
            .unwrap()
            .clone();
        let mut ck = control_keys(name, wrap);
        assert!(unwrap_control(&mut ck, dir, 0, &wire).is_ok());
        for i in [0usize, 5, 9, 12, 20, 40, wire.len() - 1] {
            let mut m = wire.clone();
            m[i] ^= 0x04;
            assert_eq!(
                unwrap_control(&mut ck, dir, 0, &m).err(),
                Some(reason),
                "{name} byte {i}"
            );
        }
    }
}

/// Writes `fuzz/corpus/<target>/` from the captures. Run with `--ignored`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    use vpn_daemon::fuzzing as fz;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut n = 0usize;
    let mut write = |target: &str, bytes: &[u8]| {
        let dir = root.join(target);
        fs::create_dir_all(&dir).unwrap();
        let name = format!("{:016x}", fnv(bytes));
        fs::write(dir.join(name), bytes).unwrap();
        n += 1;
    };
    for (name, wrap) in [
        ("udp-tlscrypt-aes256gcm", Wrap::TlsCrypt),
        ("udp-tlsauth-chacha", Wrap::TlsAuthSha256),
        ("udp-plain-aes128gcm", Wrap::None),
        ("tcp-tlscrypt-aes256gcm", Wrap::TlsCrypt),
        ("udp-reneg", Wrap::TlsCrypt),
        ("udp-aes256cbc-sha256", Wrap::TlsCrypt),
    ] {
        let packets = read_packets(name);
        let mut ck = control_keys(name, wrap);
        let mut dk = data_keys(name);
        let mut stream = Vec::new();
        for (dir, wire) in &packets {
            let (op, kid) = split_first_byte(wire[0]).unwrap();
            stream.extend_from_slice(&(wire.len() as u16).to_be_bytes());
            stream.extend_from_slice(wire);
            if op.is_control() {
                let (_, plain) = unwrap_control(&mut ck, *dir, kid.value(), wire).unwrap();
                write("wire_control", &plain);
                match wrap {
                    Wrap::TlsAuthSha256 => write("tls_auth_unwrap", wire),
                    Wrap::TlsCrypt => write("tls_crypt_unwrap", wire),
                    Wrap::None => {}
                }
                // Re-protected with the fuzz targets' own keys, so that they
                // authenticate and decrypt to real packets.
                write("tls_auth_unwrap", &fz::seed_tls_auth(&plain));
                write("tls_crypt_unwrap", &fz::seed_tls_crypt(&plain));
                if op.is_hard_reset() || op == Opcode::ControlV1 {
                    write("tls_crypt_v2_wkc", &fz::seed_tls_crypt_v2(&plain));
                }
            } else {
                write("wire_data", wire);
                let key = dk.get_mut(&(*dir, kid.value())).unwrap();
                let mut dst = vec![0u8; wire.len() + 16];
                if let Ok(o) = key.open(wire, &mut dst, 0) {
                    for s in fz::seed_data(wire[0], o.plaintext) {
                        write("wire_data", &s);
                    }
                }
            }
        }
        write("tcp_framing", &stream);
    }
    assert!(n > 100);
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100000001b3)
    })
}
