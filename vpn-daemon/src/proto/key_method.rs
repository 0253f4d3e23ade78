//! Key method 2: the first plaintext message each side writes into TLS
//! (doc §5), the OCC options string inside it (§5.2) and the client's
//! peer-info (§5.3).
//!
//! ```text
//! uint32  zero = 0
//! uint8   key_method = 2          (receiver masks with 0x0F)
//! uint8   pre_master[48]          client only
//! uint8   random1[32]
//! uint8   random2[32]
//! string  options                 OCC options string, ≤ 512 bytes incl. NUL
//! string  username                empty from a server
//! string  password                empty from a server
//! string  peer_info               client: IV_* lines; p2mp server: empty
//!
//! string = uint16 len || bytes[len], len counts a trailing NUL; empty = 00 00
//! ```

use std::fmt::{self, Write as _};

use bitflags::bitflags;

use crate::proto::tls::TlsRole;

/// `key_method` byte value.
pub const KEY_METHOD_2: u8 = 2;
/// Largest options string including its NUL (TLS_OPTIONS_LEN).
pub const MAX_OPTIONS_LEN: usize = 512;
/// Largest username/password including the NUL that a 2.6 server built with
/// PKCS#11 (Debian's) accepts (USER_PASS_LEN); without PKCS#11 it is 128.
pub const MAX_USER_PASS_LEN: usize = 4096;
/// Largest peer-info we accept (2.6 has no tighter bound than its buffers).
pub const MAX_PEER_INFO_LEN: usize = 10_000;
/// Keep the whole message under the peer's 2048-byte plaintext read buffer.
pub const MAX_MESSAGE_LEN: usize = 2048;

/// Why a key-method-2 message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyMethodError {
    /// The message ended inside `field`.
    #[error("key-method 2 message truncated in {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// The leading uint32 was not zero.
    #[error("key-method 2 message does not start with four zero bytes")]
    NonZeroPrefix,
    /// `key_method & 0x0F` was not 2.
    #[error("unsupported key method {0} (only 2 is supported)")]
    UnsupportedKeyMethod(u8),
    /// A string exceeded its limit (length counts the NUL).
    #[error("{field} is {len} bytes, limit {max}")]
    FieldTooLong {
        /// The string field.
        field: &'static str,
        /// Its length including the NUL.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A string field is not UTF-8.
    #[error("{field} is not valid UTF-8")]
    NotUtf8 {
        /// The string field.
        field: &'static str,
    },
    /// A string to encode contains a NUL byte (it would be cut there).
    #[error("{field} contains a NUL byte")]
    InteriorNul {
        /// The string field.
        field: &'static str,
    },
    /// The encoded message would not fit the peer's 2048-byte read buffer.
    #[error("key-method 2 message of {len} bytes exceeds {MAX_MESSAGE_LEN}")]
    MessageTooLong {
        /// Encoded length.
        len: usize,
    },
    /// A client message without pre_master, or a server message with one.
    #[error("pre_master must be present exactly in client messages")]
    PreMasterRole,
}

/// The key-method-2 message.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMethod2 {
    /// Client only: the legacy-PRF pre-master secret.
    pub pre_master: Option<[u8; 48]>,
    /// Random for the legacy PRF master secret.
    pub random1: [u8; 32],
    /// Random for the legacy PRF key expansion.
    pub random2: [u8; 32],
    /// The OCC options string (§5.2).
    pub options: String,
    /// `auth-user-pass` username (client) or empty.
    pub username: String,
    /// Password or auth-token (client) or empty.
    pub password: String,
    /// Peer-info lines (client) or empty.
    pub peer_info: String,
}

impl fmt::Debug for KeyMethod2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets stay out of logs.
        f.debug_struct("KeyMethod2")
            .field("pre_master", &self.pre_master.map(|_| "<48 bytes>"))
            .field("options", &self.options)
            .field("username", &self.username)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "<set>"
                },
            )
            .field("peer_info", &self.peer_info)
            .finish_non_exhaustive()
    }
}

/// Fresh random key-method-2 secrets for one key state.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySource {
    /// Client only.
    pub pre_master: Option<[u8; 48]>,
    /// random1.
    pub random1: [u8; 32],
    /// random2.
    pub random2: [u8; 32],
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySource(<secret>)")
    }
}

impl KeySource {
    /// Draw the randoms from OpenSSL's CSPRNG; `pre_master` only for a client.
    pub fn generate(role: TlsRole) -> Result<Self, openssl::error::ErrorStack> {
        let mut s = Self {
            pre_master: None,
            random1: [0; 32],
            random2: [0; 32],
        };
        if role == TlsRole::Client {
            let mut pm = [0u8; 48];
            openssl::rand::rand_bytes(&mut pm)?;
            s.pre_master = Some(pm);
        }
        openssl::rand::rand_bytes(&mut s.random1)?;
        openssl::rand::rand_bytes(&mut s.random2)?;
        Ok(s)
    }
}

fn put_string(
    out: &mut Vec<u8>,
    field: &'static str,
    s: &str,
    max: usize,
) -> Result<(), KeyMethodError> {
    if s.is_empty() {
        out.extend_from_slice(&[0, 0]);
        return Ok(());
    }
    if s.as_bytes().contains(&0) {
        return Err(KeyMethodError::InteriorNul { field });
    }
    let len = s.len() + 1;
    if len > max {
        return Err(KeyMethodError::FieldTooLong { field, len, max });
    }
    let len16 = u16::try_from(len).map_err(|_| KeyMethodError::FieldTooLong {
        field,
        len,
        max: usize::from(u16::MAX),
    })?;
    out.extend_from_slice(&len16.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    Ok(())
}

/// A cursor over the message; every read is bounds checked.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], KeyMethodError> {
        if self.buf.len() < n {
            return Err(KeyMethodError::Truncated { field });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], KeyMethodError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    /// A length-prefixed string; the text ends at the first NUL (2.6 forces
    /// termination at `len - 1` and reads it as a C string).
    fn string(&mut self, field: &'static str, max: usize) -> Result<String, KeyMethodError> {
        let len_bytes = self.array::<2>(field)?;
        let len = usize::from(u16::from_be_bytes(len_bytes));
        if len > max {
            return Err(KeyMethodError::FieldTooLong { field, len, max });
        }
        let raw = self.take(len, field)?;
        let text = raw.split(|b| *b == 0).next().unwrap_or_default();
        String::from_utf8(text.to_vec()).map_err(|_| KeyMethodError::NotUtf8 { field })
    }
}

impl KeyMethod2 {
    /// A message from `source` with the given strings.
    pub fn new(source: &KeySource, options: String) -> Self {
        Self {
            pre_master: source.pre_master,
            random1: source.random1,
            random2: source.random2,
            options,
            username: String::new(),
            password: String::new(),
            peer_info: String::new(),
        }
    }

    /// Encode; the client variant (with `pre_master`) is chosen by `sender`.
    pub fn encode(&self, sender: TlsRole) -> Result<Vec<u8>, KeyMethodError> {
        let mut out = Vec::with_capacity(256 + self.peer_info.len());
        out.extend_from_slice(&[0, 0, 0, 0, KEY_METHOD_2]);
        match (sender, &self.pre_master) {
            (TlsRole::Client, Some(pm)) => out.extend_from_slice(pm),
            (TlsRole::Server, None) => {}
            _ => return Err(KeyMethodError::PreMasterRole),
        }
        out.extend_from_slice(&self.random1);
        out.extend_from_slice(&self.random2);
        put_string(&mut out, "options", &self.options, MAX_OPTIONS_LEN)?;
        put_string(&mut out, "username", &self.username, MAX_USER_PASS_LEN)?;
        put_string(&mut out, "password", &self.password, MAX_USER_PASS_LEN)?;
        put_string(&mut out, "peer_info", &self.peer_info, MAX_PEER_INFO_LEN)?;
        // 2.6 reads the whole message with one 2048-byte TLS read.
        if out.len() > MAX_MESSAGE_LEN {
            return Err(KeyMethodError::MessageTooLong { len: out.len() });
        }
        Ok(out)
    }

    /// Parse a message written by `sender` (a client's carries `pre_master`).
    ///
    /// username, password and peer_info may be absent at the very end (old
    /// peers); bytes after peer_info are ignored, as 2.6 ignores the rest of
    /// the record.
    pub fn parse(bytes: &[u8], sender: TlsRole) -> Result<Self, KeyMethodError> {
        let mut r = Reader { buf: bytes };
        if r.array::<4>("zero")? != [0; 4] {
            return Err(KeyMethodError::NonZeroPrefix);
        }
        let [method] = r.array::<1>("key_method")?;
        if method & 0x0F != KEY_METHOD_2 {
            return Err(KeyMethodError::UnsupportedKeyMethod(method & 0x0F));
        }
        let pre_master = match sender {
            TlsRole::Client => Some(r.array::<48>("pre_master")?),
            TlsRole::Server => None,
        };
        let random1 = r.array::<32>("random1")?;
        let random2 = r.array::<32>("random2")?;
        let options = r.string("options", MAX_OPTIONS_LEN)?;
        let optional = |r: &mut Reader<'_>, field, max| {
            if r.buf.is_empty() {
                Ok(String::new())
            } else {
                r.string(field, max)
            }
        };
        let username = optional(&mut r, "username", MAX_USER_PASS_LEN)?;
        let password = optional(&mut r, "password", MAX_USER_PASS_LEN)?;
        let peer_info = optional(&mut r, "peer_info", MAX_PEER_INFO_LEN)?;
        Ok(Self {
            pre_master,
            random1,
            random2,
            options,
            username,
            password,
            peer_info,
        })
    }
}

/// `proto` field of the options string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OccProto {
    /// "UDPv4".
    UdpV4,
    /// "UDPv6".
    UdpV6,
    /// "TCPv4_CLIENT" / "TCPv4_SERVER".
    TcpV4,
    /// "TCPv6_CLIENT" / "TCPv6_SERVER".
    TcpV6,
}

/// The fields of the OCC options string that a TLS-mode 2.6 peer writes,
/// in `options_string()` order (doc §5.2; p2p-only fields omitted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsString {
    /// "tun" or "tap".
    pub dev_type: String,
    /// link-mtu as 2.6 computes it for the OCC string (1541 for tun-mtu 1500, UDP, AEAD).
    pub link_mtu: u32,
    /// tun-mtu.
    pub tun_mtu: u32,
    /// Transport.
    pub proto: OccProto,
    /// Any compression (stubs included) configured: `,comp-lzo`.
    pub comp_lzo: bool,
    /// `fragment` configured: `,mtu-dynamic`.
    pub mtu_dynamic: bool,
    /// `keydir N` when tls-auth has a direction.
    pub keydir: Option<u8>,
    /// `cipher X` when the configured --cipher is in data-ciphers.
    pub cipher: Option<String>,
    /// `auth` digest name ("SHA1" default).
    pub auth: String,
    /// `keysize` in bits (2.6 writes 128 with NCP/AEAD).
    pub keysize: u32,
    /// `,tls-auth` when tls-auth is used.
    pub tls_auth: bool,
    /// `tls-client` / `tls-server`.
    pub role: TlsRole,
}

impl OptionsString {
    /// The string 2.6.14 sends in the common UDP/tun/NCP setup (doc §5.2).
    pub fn default_udp(role: TlsRole) -> Self {
        Self {
            dev_type: "tun".into(),
            link_mtu: 1541,
            tun_mtu: 1500,
            proto: OccProto::UdpV4,
            comp_lzo: false,
            mtu_dynamic: false,
            keydir: None,
            cipher: None,
            auth: "SHA1".into(),
            keysize: 128,
            tls_auth: false,
            role,
        }
    }
}

impl fmt::Display for OptionsString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let server = self.role == TlsRole::Server;
        let proto = match (self.proto, server) {
            (OccProto::UdpV4, _) => "UDPv4",
            (OccProto::UdpV6, _) => "UDPv6",
            (OccProto::TcpV4, false) => "TCPv4_CLIENT",
            (OccProto::TcpV4, true) => "TCPv4_SERVER",
            (OccProto::TcpV6, false) => "TCPv6_CLIENT",
            (OccProto::TcpV6, true) => "TCPv6_SERVER",
        };
        write!(
            f,
            "V4,dev-type {},link-mtu {},tun-mtu {},proto {}",
            self.dev_type, self.link_mtu, self.tun_mtu, proto
        )?;
        if self.comp_lzo {
            f.write_str(",comp-lzo")?;
        }
        if self.mtu_dynamic {
            f.write_str(",mtu-dynamic")?;
        }
        if let Some(d) = self.keydir {
            write!(f, ",keydir {d}")?;
        }
        if let Some(c) = &self.cipher {
            write!(f, ",cipher {c}")?;
        }
        write!(f, ",auth {},keysize {}", self.auth, self.keysize)?;
        if self.tls_auth {
            f.write_str(",tls-auth")?;
        }
        f.write_str(",key-method 2,")?;
        f.write_str(if server { "tls-server" } else { "tls-client" })
    }
}

/// A peer's options string, split into fields; only informational in 2.6.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OccOptions {
    /// `(name, value)` in order; value is everything after the first space.
    pub fields: Vec<(String, Option<String>)>,
}

impl OccOptions {
    /// Split a received options string. Never fails: a missing `V4` or odd
    /// fields only affect the warnings a caller may log.
    pub fn parse(s: &str) -> Self {
        let fields = s
            .split(',')
            .filter(|f| !f.is_empty())
            .map(|f| match f.split_once(' ') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (f.to_string(), None),
            })
            .collect();
        Self { fields }
    }

    /// The value of the first field named `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether a field named `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|(k, _)| k == name)
    }

    /// `cipher` (the server's fallback for pre-NCP clients, doc §6.5).
    pub fn cipher(&self) -> Option<&str> {
        self.get("cipher")
    }

    /// `,comp-lzo`: the peer has legacy compression framing configured (§8).
    pub fn comp_lzo(&self) -> bool {
        self.has("comp-lzo")
    }
}

bitflags! {
    /// The `IV_PROTO` bitfield (doc §5.3).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct IvProto: u32 {
        /// Understands P_DATA_V2 and a pushed `peer-id`.
        const DATA_V2 = 1 << 1;
        /// The server may push without waiting for PUSH_REQUEST.
        const REQUEST_PUSH = 1 << 2;
        /// Can derive data keys with the TLS exporter.
        const TLS_KEY_EXPORT = 1 << 3;
        /// Understands `AUTH_PENDING,timeout N`.
        const AUTH_PENDING_KW = 1 << 4;
        /// Runs in p2p (no pull) NCP mode.
        const NCP_P2P = 1 << 5;
        /// Understands the pushed `dns` option.
        const DNS_OPTION = 1 << 6;
        /// Control-channel `EXIT`; accepts pushed `protocol-flags`.
        const CC_EXIT_NOTIFY = 1 << 7;
        /// Understands `AUTH_FAILED,TEMP`.
        const AUTH_FAIL_TEMP = 1 << 8;
        /// Dynamic tls-crypt for renegotiations.
        const DYN_TLS_CRYPT = 1 << 9;
        /// (2.7) epoch data format.
        const DATA_EPOCH = 1 << 10;
        /// (2.7) dns option v2.
        const DNS_OPTION_V2 = 1 << 11;
        /// (2.7) PUSH_UPDATE.
        const PUSH_UPDATE = 1 << 12;
    }
}

impl IvProto {
    /// What this implementation announces as a client: P_DATA_V2, early
    /// push, EKM, control-channel EXIT (with `protocol-flags`) and
    /// `AUTH_FAILED,TEMP` parsing. DYN_TLS_CRYPT is set per session from
    /// `SessionConfig::dyn_tls_crypt` (the session implements it).
    pub const OURS: IvProto = IvProto::DATA_V2
        .union(IvProto::REQUEST_PUSH)
        .union(IvProto::TLS_KEY_EXPORT)
        .union(IvProto::CC_EXIT_NOTIFY)
        .union(IvProto::AUTH_FAIL_TEMP);
}

/// Data ciphers a 2.6 client announces by default.
pub const DEFAULT_DATA_CIPHERS: &[&str] = &["AES-256-GCM", "AES-128-GCM", "CHACHA20-POLY1305"];

/// The client's peer-info (doc §5.3), typed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerInfo {
    /// IV_VER.
    pub version: Option<String>,
    /// IV_PLAT.
    pub platform: Option<String>,
    /// IV_TCPNL=1.
    pub tcpnl: bool,
    /// IV_MTU: largest tun-mtu the client accepts via push.
    pub mtu: Option<u16>,
    /// IV_NCP (2 = AES-128/256-GCM capable).
    pub ncp: Option<u32>,
    /// IV_CIPHERS, split on ':'.
    pub ciphers: Option<Vec<String>>,
    /// IV_PROTO (unknown bits kept).
    pub proto: IvProto,
    /// IV_LZO_STUB=1.
    pub lzo_stub: bool,
    /// IV_COMP_STUB=1.
    pub comp_stub: bool,
    /// IV_COMP_STUBv2=1.
    pub comp_stub_v2: bool,
    /// IV_LZO=1 / IV_LZ4=1 / IV_LZ4v2=1: real compression on offer.
    pub real_compression: Vec<String>,
    /// Every other line (`IV_GUI_VER`, `IV_SSO`, `UV_*`, …), in order.
    pub other: Vec<(String, String)>,
}

/// Why a peer-info value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerInfoError {
    /// A numeric variable had a non-numeric value.
    #[error("peer-info {key}={value:?} is not a number")]
    BadNumber {
        /// The variable.
        key: String,
        /// Its value.
        value: String,
    },
}

fn parse_num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, PeerInfoError> {
    value.trim().parse().map_err(|_| PeerInfoError::BadNumber {
        key: key.to_string(),
        value: value.to_string(),
    })
}

impl PeerInfo {
    /// Our client's peer-info for `ciphers` (IV_NCP=2 only when both GCM
    /// ciphers are in the list, as 2.6 does).
    pub fn ours(version: &str, ciphers: &[&str], mtu: u16) -> Self {
        let has = |c: &str| ciphers.iter().any(|x| x.eq_ignore_ascii_case(c));
        Self {
            version: Some(version.to_string()),
            platform: Some("linux".to_string()),
            tcpnl: true,
            mtu: Some(mtu),
            ncp: (has("AES-128-GCM") && has("AES-256-GCM")).then_some(2),
            ciphers: Some(ciphers.iter().map(|c| c.to_string()).collect()),
            proto: IvProto::OURS,
            ..Self::default()
        }
    }

    /// Parse `KEY=VALUE` lines. Lines without `=` are ignored (2.6 only
    /// looks for the variables it knows); malformed numbers are errors.
    pub fn parse(s: &str) -> Result<Self, PeerInfoError> {
        let mut p = Self::default();
        for line in s.lines() {
            let line = line.trim_end_matches('\r');
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "IV_VER" => p.version = Some(v.to_string()),
                "IV_PLAT" => p.platform = Some(v.to_string()),
                "IV_TCPNL" => p.tcpnl = v == "1",
                "IV_MTU" => p.mtu = Some(parse_num(k, v)?),
                "IV_NCP" => p.ncp = Some(parse_num(k, v)?),
                "IV_CIPHERS" => {
                    p.ciphers = Some(
                        v.split(':')
                            .filter(|c| !c.is_empty())
                            .map(str::to_string)
                            .collect(),
                    )
                }
                "IV_PROTO" => p.proto = IvProto::from_bits_retain(parse_num(k, v)?),
                "IV_LZO_STUB" => p.lzo_stub = v == "1",
                "IV_COMP_STUB" => p.comp_stub = v == "1",
                "IV_COMP_STUBv2" => p.comp_stub_v2 = v == "1",
                "IV_LZO" | "IV_LZ4" | "IV_LZ4v2" if v == "1" => {
                    p.real_compression.push(k.to_string())
                }
                _ => p.other.push((k.to_string(), v.to_string())),
            }
        }
        Ok(p)
    }
}

impl fmt::Display for PeerInfo {
    /// The lines in 2.6's order, each ending in `\n`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        if let Some(v) = &self.version {
            let _ = writeln!(out, "IV_VER={v}");
        }
        if let Some(v) = &self.platform {
            let _ = writeln!(out, "IV_PLAT={v}");
        }
        if self.tcpnl {
            out.push_str("IV_TCPNL=1\n");
        }
        if let Some(v) = self.mtu {
            let _ = writeln!(out, "IV_MTU={v}");
        }
        if let Some(v) = self.ncp {
            let _ = writeln!(out, "IV_NCP={v}");
        }
        if let Some(c) = &self.ciphers {
            let _ = writeln!(out, "IV_CIPHERS={}", c.join(":"));
        }
        let _ = writeln!(out, "IV_PROTO={}", self.proto.bits());
        for k in &self.real_compression {
            let _ = writeln!(out, "{k}=1");
        }
        if self.lzo_stub {
            out.push_str("IV_LZO_STUB=1\n");
        }
        if self.comp_stub {
            out.push_str("IV_COMP_STUB=1\n");
        }
        if self.comp_stub_v2 {
            out.push_str("IV_COMP_STUBv2=1\n");
        }
        for (k, v) in &self.other {
            let _ = writeln!(out, "{k}={v}");
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const OBSERVED_CLIENT_OPTIONS: &str = "V4,dev-type tun,link-mtu 1541,tun-mtu 1500,proto UDPv4,auth SHA1,keysize 128,key-method 2,tls-client";
    const OBSERVED_SERVER_OPTIONS: &str = "V4,dev-type tun,link-mtu 1541,tun-mtu 1500,proto UDPv4,auth SHA1,keysize 128,key-method 2,tls-server";
    const OBSERVED_PEER_INFO: &str = "IV_VER=2.6.14\nIV_PLAT=linux\nIV_TCPNL=1\nIV_MTU=1600\nIV_NCP=2\nIV_CIPHERS=AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305\nIV_PROTO=990\nIV_LZO_STUB=1\nIV_COMP_STUB=1\nIV_COMP_STUBv2=1\n";

    fn client_msg() -> KeyMethod2 {
        KeyMethod2 {
            pre_master: Some([0x11; 48]),
            random1: [0x22; 32],
            random2: [0x33; 32],
            options: OBSERVED_CLIENT_OPTIONS.into(),
            username: "alice".into(),
            password: "s3cret".into(),
            peer_info: OBSERVED_PEER_INFO.into(),
        }
    }

    #[test]
    fn client_message_round_trips_with_pre_master_and_credentials() {
        let m = client_msg();
        let bytes = m.encode(TlsRole::Client).unwrap();
        assert_eq!(&bytes[..5], &[0, 0, 0, 0, 2]);
        assert_eq!(&bytes[5..53], &[0x11; 48]);
        // options string: length counts the NUL
        let off = 5 + 48 + 64;
        let len = usize::from(u16::from_be_bytes([bytes[off], bytes[off + 1]]));
        assert_eq!(len, OBSERVED_CLIENT_OPTIONS.len() + 1);
        assert_eq!(bytes[off + 2 + len - 1], 0);
        assert_eq!(KeyMethod2::parse(&bytes, TlsRole::Client).unwrap(), m);
    }

    #[test]
    fn server_message_round_trips_without_pre_master_and_with_empty_strings() {
        let src = KeySource {
            pre_master: None,
            random1: [1; 32],
            random2: [2; 32],
        };
        let m = KeyMethod2::new(&src, OBSERVED_SERVER_OPTIONS.into());
        let bytes = m.encode(TlsRole::Server).unwrap();
        // zero, method, randoms, options, then three empty strings 00 00.
        assert_eq!(
            bytes.len(),
            5 + 64 + 2 + OBSERVED_SERVER_OPTIONS.len() + 1 + 6
        );
        assert_eq!(&bytes[bytes.len() - 6..], &[0; 6]);
        assert_eq!(KeyMethod2::parse(&bytes, TlsRole::Server).unwrap(), m);
    }

    #[test]
    fn string_encoding_counts_the_nul() {
        let mut out = vec![];
        put_string(&mut out, "x", "abc", 10).unwrap();
        assert_eq!(out, [0, 4, b'a', b'b', b'c', 0]);
        out.clear();
        put_string(&mut out, "x", "", 10).unwrap();
        assert_eq!(out, [0, 0]);
    }

    #[test]
    fn generated_sources_have_pre_master_only_for_clients() {
        assert!(
            KeySource::generate(TlsRole::Client)
                .unwrap()
                .pre_master
                .is_some()
        );
        let s = KeySource::generate(TlsRole::Server).unwrap();
        assert!(s.pre_master.is_none());
        assert_ne!(s.random1, s.random2);
    }

    #[test]
    fn rejects_wrong_prefix_and_key_method() {
        let mut b = client_msg().encode(TlsRole::Client).unwrap();
        b[4] = 1;
        assert_eq!(
            KeyMethod2::parse(&b, TlsRole::Client),
            Err(KeyMethodError::UnsupportedKeyMethod(1))
        );
        b[4] = 0x12; // high nibble is masked off, as 2.6 does
        assert!(KeyMethod2::parse(&b, TlsRole::Client).is_ok());
        b[0] = 1;
        assert_eq!(
            KeyMethod2::parse(&b, TlsRole::Client),
            Err(KeyMethodError::NonZeroPrefix)
        );
    }

    #[test]
    fn rejects_truncation_inside_any_field() {
        let b = client_msg().encode(TlsRole::Client).unwrap();
        let options_end = 5 + 48 + 64 + 2 + OBSERVED_CLIENT_OPTIONS.len() + 1;
        for cut in 0..b.len() {
            let r = KeyMethod2::parse(&b[..cut], TlsRole::Client);
            if cut < options_end {
                assert!(
                    matches!(r, Err(KeyMethodError::Truncated { .. })),
                    "cut {cut}: {r:?}"
                );
            }
        }
        // Cut exactly after options: older peers may stop there.
        let m = KeyMethod2::parse(&b[..options_end], TlsRole::Client).unwrap();
        assert!(m.username.is_empty() && m.peer_info.is_empty());
        // Cut inside the username string.
        assert_eq!(
            KeyMethod2::parse(&b[..options_end + 3], TlsRole::Client),
            Err(KeyMethodError::Truncated { field: "username" })
        );
        // A server message read as a client one runs out of bytes.
        let s = KeyMethod2::new(
            &KeySource {
                pre_master: None,
                random1: [0; 32],
                random2: [0; 32],
            },
            String::new(),
        )
        .encode(TlsRole::Server)
        .unwrap();
        assert!(KeyMethod2::parse(&s, TlsRole::Client).is_err());
    }

    #[test]
    fn rejects_oversized_strings_both_ways() {
        let mut m = client_msg();
        m.options = "x".repeat(MAX_OPTIONS_LEN);
        assert_eq!(
            m.encode(TlsRole::Client),
            Err(KeyMethodError::FieldTooLong {
                field: "options",
                len: 513,
                max: 512
            })
        );
        m.options = "x".repeat(MAX_OPTIONS_LEN - 1);
        assert!(m.encode(TlsRole::Client).is_ok());
        m.peer_info = "IV_X=1\n".repeat(250);
        assert!(matches!(
            m.encode(TlsRole::Client),
            Err(KeyMethodError::MessageTooLong { .. })
        ));
        m.peer_info.clear();
        m.password = "p".repeat(MAX_USER_PASS_LEN);
        assert!(matches!(
            m.encode(TlsRole::Client),
            Err(KeyMethodError::FieldTooLong {
                field: "password",
                ..
            })
        ));
        // Wire: an options length of 600 is refused before reading it.
        let mut b = vec![0, 0, 0, 0, 2];
        b.extend_from_slice(&[0; 64]);
        b.extend_from_slice(&600u16.to_be_bytes());
        b.extend_from_slice(&[b'a'; 600]);
        assert_eq!(
            KeyMethod2::parse(&b, TlsRole::Server),
            Err(KeyMethodError::FieldTooLong {
                field: "options",
                len: 600,
                max: 512
            })
        );
    }

    #[test]
    fn rejects_non_utf8_and_nul_in_strings() {
        let mut b = vec![0, 0, 0, 0, 2];
        b.extend_from_slice(&[0; 64]);
        b.extend_from_slice(&[0, 3, 0xff, 0xfe, 0]);
        assert_eq!(
            KeyMethod2::parse(&b, TlsRole::Server),
            Err(KeyMethodError::NotUtf8 { field: "options" })
        );
        let mut m = client_msg();
        m.username = "a\0b".into();
        assert_eq!(
            m.encode(TlsRole::Client),
            Err(KeyMethodError::InteriorNul { field: "username" })
        );
        let mut m = client_msg();
        m.pre_master = None;
        assert_eq!(
            m.encode(TlsRole::Client),
            Err(KeyMethodError::PreMasterRole)
        );
    }

    #[test]
    fn options_string_builder_matches_observed_2_6_14_strings() {
        assert_eq!(
            OptionsString::default_udp(TlsRole::Client).to_string(),
            OBSERVED_CLIENT_OPTIONS
        );
        assert_eq!(
            OptionsString::default_udp(TlsRole::Server).to_string(),
            OBSERVED_SERVER_OPTIONS
        );
        let mut o = OptionsString::default_udp(TlsRole::Client);
        o.comp_lzo = true;
        o.keydir = Some(1);
        o.cipher = Some("AES-256-CBC".into());
        o.tls_auth = true;
        o.proto = OccProto::TcpV4;
        assert_eq!(
            o.to_string(),
            "V4,dev-type tun,link-mtu 1541,tun-mtu 1500,proto TCPv4_CLIENT,comp-lzo,keydir 1,cipher AES-256-CBC,auth SHA1,keysize 128,tls-auth,key-method 2,tls-client"
        );
    }

    #[test]
    fn options_string_builder_matches_captured_tcp_and_tls_auth_strings() {
        // From the testdata/openvpn-2.6.14 --verb 9 logs ("Local Options String").
        let mut o = OptionsString::default_udp(TlsRole::Server);
        o.proto = OccProto::TcpV4;
        o.link_mtu = 1543;
        assert_eq!(
            o.to_string(),
            "V4,dev-type tun,link-mtu 1543,tun-mtu 1500,proto TCPv4_SERVER,auth SHA1,keysize 128,key-method 2,tls-server"
        );
        let mut o = OptionsString::default_udp(TlsRole::Client);
        o.link_mtu = 1553;
        o.keydir = Some(1);
        o.auth = "SHA256".into();
        o.tls_auth = true;
        assert_eq!(
            o.to_string(),
            "V4,dev-type tun,link-mtu 1553,tun-mtu 1500,proto UDPv4,keydir 1,auth SHA256,keysize 128,tls-auth,key-method 2,tls-client"
        );
    }

    #[test]
    fn captured_peer_info_with_a_single_data_cipher_has_no_iv_ncp() {
        let captured = "IV_VER=2.6.14\nIV_PLAT=linux\nIV_TCPNL=1\nIV_MTU=1600\nIV_CIPHERS=AES-256-GCM\nIV_PROTO=990\nIV_LZO_STUB=1\nIV_COMP_STUB=1\nIV_COMP_STUBv2=1\n";
        let p = PeerInfo::parse(captured).unwrap();
        assert_eq!(p.ncp, None);
        assert_eq!(p.ciphers, Some(vec!["AES-256-GCM".to_string()]));
        assert_eq!(p.to_string(), captured);
        let mut ours = PeerInfo::ours("2.6.14", &["AES-256-GCM"], 1600);
        assert_eq!(ours.ncp, None);
        ours.proto = IvProto::from_bits_retain(990);
        ours.lzo_stub = true;
        ours.comp_stub = true;
        ours.comp_stub_v2 = true;
        assert_eq!(ours.to_string(), captured);
    }

    #[test]
    fn occ_options_parse_exposes_cipher_and_comp_lzo() {
        let o = OccOptions::parse(OBSERVED_SERVER_OPTIONS);
        assert_eq!(o.fields.len(), 9);
        assert_eq!(o.get("link-mtu"), Some("1541"));
        assert!(o.has("tls-server") && !o.comp_lzo() && o.cipher().is_none());
        let o = OccOptions::parse("V4,dev-type tun,proto UDPv4,comp-lzo,cipher BF-CBC,auth SHA1");
        assert!(o.comp_lzo());
        assert_eq!(o.cipher(), Some("BF-CBC"));
    }

    #[test]
    fn observed_peer_info_parses_to_typed_fields() {
        let p = PeerInfo::parse(OBSERVED_PEER_INFO).unwrap();
        assert_eq!(p.version.as_deref(), Some("2.6.14"));
        assert_eq!(p.platform.as_deref(), Some("linux"));
        assert!(p.tcpnl && p.lzo_stub && p.comp_stub && p.comp_stub_v2);
        assert_eq!(p.mtu, Some(1600));
        assert_eq!(p.ncp, Some(2));
        assert_eq!(
            p.ciphers,
            Some(vec![
                "AES-256-GCM".into(),
                "AES-128-GCM".into(),
                "CHACHA20-POLY1305".into()
            ])
        );
        assert_eq!(p.proto.bits(), 990);
        assert_eq!(
            p.proto,
            IvProto::DATA_V2
                | IvProto::REQUEST_PUSH
                | IvProto::TLS_KEY_EXPORT
                | IvProto::AUTH_PENDING_KW
                | IvProto::DNS_OPTION
                | IvProto::CC_EXIT_NOTIFY
                | IvProto::AUTH_FAIL_TEMP
                | IvProto::DYN_TLS_CRYPT
        );
        assert!(p.real_compression.is_empty() && p.other.is_empty());
        // And it prints back byte for byte.
        assert_eq!(p.to_string(), OBSERVED_PEER_INFO);
    }

    #[test]
    fn our_peer_info_announces_what_we_implement() {
        let p = PeerInfo::ours("2.6.14", DEFAULT_DATA_CIPHERS, 1600);
        let s = p.to_string();
        assert!(s.contains("IV_NCP=2\n") && s.contains("IV_PROTO=398\n"));
        assert!(!s.contains("IV_LZO") && !s.contains("IV_COMP"));
        assert_eq!(PeerInfo::parse(&s).unwrap(), p);
        let p = PeerInfo::ours("x", &["CHACHA20-POLY1305"], 1500);
        assert_eq!(p.ncp, None);
    }

    #[test]
    fn peer_info_keeps_unknown_lines_and_rejects_bad_numbers() {
        let p = PeerInfo::parse("IV_GUI_VER=OpenVPN-GUI\nUV_X=1\r\njunk\nIV_LZ4v2=1\n").unwrap();
        assert_eq!(
            p.other,
            vec![
                ("IV_GUI_VER".into(), "OpenVPN-GUI".into()),
                ("UV_X".into(), "1".into())
            ]
        );
        assert_eq!(p.real_compression, vec!["IV_LZ4v2".to_string()]);
        assert!(matches!(
            PeerInfo::parse("IV_PROTO=lots"),
            Err(PeerInfoError::BadNumber { .. })
        ));
        assert!(matches!(
            PeerInfo::parse("IV_MTU=99999"),
            Err(PeerInfoError::BadNumber { .. })
        ));
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let _ = KeyMethod2::parse(&bytes, TlsRole::Client);
            let _ = KeyMethod2::parse(&bytes, TlsRole::Server);
        }

        #[test]
        fn round_trip_of_arbitrary_printable_strings(
            user in "[ -~]{0,64}", pass in "[ -~]{0,64}", info in "[ -~\n]{0,300}",
        ) {
            let mut m = client_msg();
            m.username = user;
            m.password = pass;
            m.peer_info = info;
            let b = m.encode(TlsRole::Client).unwrap();
            prop_assert_eq!(KeyMethod2::parse(&b, TlsRole::Client).unwrap(), m);
        }
    }
}
