//! The status file and the management `status` command output, rendered
//! byte-for-byte as OpenVPN 2.6 does (`management-interface.md` §7) from a
//! plain [`ServerStatus`] / [`ClientStatus`] snapshot. Writing the file
//! (in place or temp + rename) is the driver's job; this only renders.
//!
//! Server formats: version 1 (`OpenVPN CLIENT LIST` sections), version 2
//! (`TITLE,`/`HEADER,` rows, `,` separated) and version 3 (the same rows,
//! TAB separated). Client (and p2p) mode: the `OpenVPN STATISTICS` block.
//! Times are local `YYYY-MM-DD HH:MM:SS` (2.6's format) through a
//! [`TimeZone`] passed in, so rendering never reads the clock or the
//! system time zone unless asked to ([`SystemLocalTime`]).
//!
//! Our XDP counters are added only where existing parsers keep working
//! (checked against their code, see the doc's §7.4):
//!
//! - per-peer fast-path counters become extra CLIENT_LIST columns *after*
//!   `Data Channel Cipher` (v2/v3 only), named in the HEADER row:
//!   kumina/openvpn_exporter maps columns by header name and only needs
//!   row and header to have the same length; patrickjahns/openvpn_exporter
//!   and openvpn-monitor read fixed positions up to Peer ID and ignore the
//!   rest;
//! - global XDP counters become extra `GLOBAL_STATS` rows (v2/v3) or
//!   `name,value` rows in the `GLOBAL STATS` section (v1), placed between
//!   `Max bcast/mcast queue length` and `dco_enabled`: kumina ignores every
//!   GLOBAL_STATS row, openvpn-monitor skips them, and patrickjahns keeps
//!   the *last* numeric GLOBAL_STATS value, which stays `dco_enabled` as
//!   with 2.6; in v1, patrickjahns treats only 5-field rows as clients, and
//!   ours have 2;
//! - no new row tags (kumina fails the whole scrape on an unknown tag) and
//!   nothing in the client-mode block (kumina refuses unknown keys there).
//!
//! Without XDP counters in the snapshot the output is exactly 2.6's.

use std::{
    fmt::Write as _,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
};

use ipnet::IpNet;

/// Which server format (`status-version`, or `status N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusVersion {
    /// Version 1 (the default).
    V1,
    /// Version 2: `,` separated tagged rows.
    V2,
    /// Version 3: TAB separated tagged rows.
    V3,
}

impl StatusVersion {
    /// From `status-version N` / `status N` (1..=3).
    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            1 => Some(StatusVersion::V1),
            2 => Some(StatusVersion::V2),
            3 => Some(StatusVersion::V3),
            _ => None,
        }
    }
}

/// Line terminator: the file uses `\n`, the management interface `\r\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnd {
    /// `\n` (status file).
    Lf,
    /// `\r\n` (management interface).
    CrLf,
}

impl LineEnd {
    fn as_str(self) -> &'static str {
        match self {
            LineEnd::Lf => "\n",
            LineEnd::CrLf => "\r\n",
        }
    }
}

// Time zones and the time format moved to the clock (scripts format
// times too); status rendering keeps using them from here.
pub use crate::io::clock::{FixedOffset, SystemLocalTime, TimeZone, Utc, format_time};

/// A client's transport address as 2.6 prints it: `a.b.c.d:port` for IPv4
/// (also when carried IPv4-mapped on a dual-stack socket), the bare
/// address for native IPv6.
pub fn format_real_address(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => format!("{v4}:{}", a.port()),
            None => a.ip().to_string(),
        },
    }
}

/// Per-peer XDP fast-path counters (extra CLIENT_LIST columns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FastPathCounters {
    /// Packets received through the fast path.
    pub rx_packets: u64,
    /// Bytes received through the fast path.
    pub rx_bytes: u64,
    /// Packets sent through the fast path.
    pub tx_packets: u64,
    /// Bytes sent through the fast path.
    pub tx_bytes: u64,
}

/// The HEADER names of the extra columns, in order.
pub const FAST_PATH_COLUMNS: [&str; 4] = [
    "XDP RX Packets",
    "XDP RX Bytes",
    "XDP TX Packets",
    "XDP TX Bytes",
];

/// One connected client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientEntry {
    /// Certificate common name (`UNDEF` when none).
    pub common_name: Option<String>,
    /// Transport address.
    pub real_address: SocketAddr,
    /// Tunnel IPv4 address.
    pub virtual_ipv4: Option<Ipv4Addr>,
    /// Tunnel IPv6 address.
    pub virtual_ipv6: Option<Ipv6Addr>,
    /// Link bytes from the client.
    pub bytes_received: u64,
    /// Link bytes to the client.
    pub bytes_sent: u64,
    /// Unix seconds.
    pub connected_since: u64,
    /// auth-user-pass username (`UNDEF` when none).
    pub username: Option<String>,
    /// Management client id (`client-kill CID`).
    pub client_id: u64,
    /// Data-channel peer-id (`4294967295` if there is none, as 2.6).
    pub peer_id: u32,
    /// Negotiated data cipher.
    pub cipher: String,
    /// XDP counters; used when the snapshot has [`ServerStatus::xdp`].
    pub fast_path: FastPathCounters,
}

/// One routing-table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    /// A host (printed bare) or an iroute network (printed as CIDR).
    pub network: IpNet,
    /// A host route learned through an iroute (printed with a `C`).
    pub cached: bool,
    /// Owner's common name.
    pub common_name: Option<String>,
    /// Owner's transport address.
    pub real_address: SocketAddr,
    /// Unix seconds of the last packet routed with it.
    pub last_ref: u64,
}

/// Global XDP counters: the type lives with the fast path that fills it;
/// this module only renders it.
pub use crate::io::xdp::counters::XdpCounters;

/// A server snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    /// The title string (`OpenVPN 2.6.14 x86_64-pc-linux-gnu [...]`).
    pub title: String,
    /// Unix seconds of this snapshot.
    pub now: u64,
    /// Connected clients.
    pub clients: Vec<ClientEntry>,
    /// Routing table.
    pub routes: Vec<RouteEntry>,
    /// "Max bcast/mcast queue length".
    pub max_bcast_mcast_queue_len: u64,
    /// Whether data-channel offload is on (always false here).
    pub dco_enabled: bool,
    /// XDP counters, when the fast path is in use.
    pub xdp: Option<XdpCounters>,
}

/// A client (or p2p) snapshot: the `OpenVPN STATISTICS` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStatus {
    /// Unix seconds of this snapshot.
    pub now: u64,
    /// TUN/TAP read bytes.
    pub tun_read_bytes: u64,
    /// TUN/TAP write bytes.
    pub tun_write_bytes: u64,
    /// TCP/UDP read bytes.
    pub link_read_bytes: u64,
    /// TCP/UDP write bytes.
    pub link_write_bytes: u64,
    /// Auth read bytes.
    pub auth_read_bytes: u64,
    /// pre-compress, post-compress, pre-decompress, post-decompress bytes,
    /// present when a compression framing is configured.
    pub compression: Option<[u64; 4]>,
    /// XDP counters, when the fast path is in use (extra rows before END).
    pub xdp: Option<XdpCounters>,
}

fn undef(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("UNDEF")
}

fn route_address(r: &RouteEntry) -> String {
    let host = match r.network {
        IpNet::V4(n) => n.prefix_len() == 32,
        IpNet::V6(n) => n.prefix_len() == 128,
    };
    let mut s = if host {
        r.network.addr().to_string()
    } else {
        r.network.to_string()
    };
    if r.cached {
        s.push('C');
    }
    s
}

fn xdp_rows(x: &XdpCounters) -> Vec<(String, u64)> {
    let mut rows = vec![
        ("XDP redirected".to_string(), x.redirected),
        ("XDP passed".to_string(), x.passed),
    ];
    rows.extend(
        x.passed_by_reason
            .iter()
            .map(|(reason, n)| (format!("XDP passed {reason}"), *n)),
    );
    rows.extend(
        x.dropped
            .iter()
            .map(|(reason, n)| (format!("XDP dropped {reason}"), *n)),
    );
    rows.extend(
        x.errors
            .iter()
            .map(|(what, n)| (format!("XDP errors {what}"), *n)),
    );
    rows
}

/// Renders a server status in `version` (the status file with
/// [`LineEnd::Lf`], the `status` command with [`LineEnd::CrLf`]).
pub fn render_server(
    s: &ServerStatus,
    version: StatusVersion,
    eol: LineEnd,
    tz: &dyn TimeZone,
) -> String {
    match version {
        StatusVersion::V1 => render_v1(s, eol.as_str(), tz),
        StatusVersion::V2 => render_tagged(s, ',', eol.as_str(), tz),
        StatusVersion::V3 => render_tagged(s, '\t', eol.as_str(), tz),
    }
}

fn render_v1(s: &ServerStatus, nl: &str, tz: &dyn TimeZone) -> String {
    let mut o = String::new();
    let _ = write!(o, "OpenVPN CLIENT LIST{nl}");
    let _ = write!(o, "Updated,{}{nl}", format_time(s.now, tz));
    let _ = write!(
        o,
        "Common Name,Real Address,Bytes Received,Bytes Sent,Connected Since{nl}"
    );
    for c in &s.clients {
        let _ = write!(
            o,
            "{},{},{},{},{}{nl}",
            undef(&c.common_name),
            format_real_address(c.real_address),
            c.bytes_received,
            c.bytes_sent,
            format_time(c.connected_since, tz)
        );
    }
    let _ = write!(o, "ROUTING TABLE{nl}");
    let _ = write!(o, "Virtual Address,Common Name,Real Address,Last Ref{nl}");
    for r in &s.routes {
        let _ = write!(
            o,
            "{},{},{},{}{nl}",
            route_address(r),
            undef(&r.common_name),
            format_real_address(r.real_address),
            format_time(r.last_ref, tz)
        );
    }
    let _ = write!(o, "GLOBAL STATS{nl}");
    let _ = write!(
        o,
        "Max bcast/mcast queue length,{}{nl}",
        s.max_bcast_mcast_queue_len
    );
    if let Some(x) = &s.xdp {
        for (k, v) in xdp_rows(x) {
            let _ = write!(o, "{k},{v}{nl}");
        }
    }
    let _ = write!(o, "END{nl}");
    o
}

fn render_tagged(s: &ServerStatus, sep: char, nl: &str, tz: &dyn TimeZone) -> String {
    let mut o = String::new();
    let mut row = |fields: &[&str]| {
        o.push_str(&fields.join(&sep.to_string()));
        o.push_str(nl);
    };
    row(&["TITLE", &s.title]);
    row(&["TIME", &format_time(s.now, tz), &s.now.to_string()]);
    let mut header = vec![
        "HEADER",
        "CLIENT_LIST",
        "Common Name",
        "Real Address",
        "Virtual Address",
        "Virtual IPv6 Address",
        "Bytes Received",
        "Bytes Sent",
        "Connected Since",
        "Connected Since (time_t)",
        "Username",
        "Client ID",
        "Peer ID",
        "Data Channel Cipher",
    ];
    if s.xdp.is_some() {
        header.extend(FAST_PATH_COLUMNS);
    }
    row(&header);
    for c in &s.clients {
        let mut f = vec![
            "CLIENT_LIST".to_string(),
            undef(&c.common_name).to_string(),
            format_real_address(c.real_address),
            c.virtual_ipv4.map(|a| a.to_string()).unwrap_or_default(),
            c.virtual_ipv6.map(|a| a.to_string()).unwrap_or_default(),
            c.bytes_received.to_string(),
            c.bytes_sent.to_string(),
            format_time(c.connected_since, tz),
            c.connected_since.to_string(),
            undef(&c.username).to_string(),
            c.client_id.to_string(),
            c.peer_id.to_string(),
            c.cipher.clone(),
        ];
        if s.xdp.is_some() {
            let fp = c.fast_path;
            f.extend(
                [fp.rx_packets, fp.rx_bytes, fp.tx_packets, fp.tx_bytes].map(|n| n.to_string()),
            );
        }
        let refs: Vec<&str> = f.iter().map(String::as_str).collect();
        row(&refs);
    }
    row(&[
        "HEADER",
        "ROUTING_TABLE",
        "Virtual Address",
        "Common Name",
        "Real Address",
        "Last Ref",
        "Last Ref (time_t)",
    ]);
    for r in &s.routes {
        row(&[
            "ROUTING_TABLE",
            &route_address(r),
            undef(&r.common_name),
            &format_real_address(r.real_address),
            &format_time(r.last_ref, tz),
            &r.last_ref.to_string(),
        ]);
    }
    row(&[
        "GLOBAL_STATS",
        "Max bcast/mcast queue length",
        &s.max_bcast_mcast_queue_len.to_string(),
    ]);
    if let Some(x) = &s.xdp {
        for (k, v) in xdp_rows(x) {
            row(&["GLOBAL_STATS", &k, &v.to_string()]);
        }
    }
    row(&[
        "GLOBAL_STATS",
        "dco_enabled",
        if s.dco_enabled { "1" } else { "0" },
    ]);
    row(&["END"]);
    o
}

/// Renders the client-mode `OpenVPN STATISTICS` block.
pub fn render_client(s: &ClientStatus, eol: LineEnd, tz: &dyn TimeZone) -> String {
    let nl = eol.as_str();
    let mut o = String::new();
    let _ = write!(o, "OpenVPN STATISTICS{nl}");
    let _ = write!(o, "Updated,{}{nl}", format_time(s.now, tz));
    let _ = write!(o, "TUN/TAP read bytes,{}{nl}", s.tun_read_bytes);
    let _ = write!(o, "TUN/TAP write bytes,{}{nl}", s.tun_write_bytes);
    let _ = write!(o, "TCP/UDP read bytes,{}{nl}", s.link_read_bytes);
    let _ = write!(o, "TCP/UDP write bytes,{}{nl}", s.link_write_bytes);
    let _ = write!(o, "Auth read bytes,{}{nl}", s.auth_read_bytes);
    if let Some([a, b, c, d]) = s.compression {
        let _ = write!(o, "pre-compress bytes,{a}{nl}");
        let _ = write!(o, "post-compress bytes,{b}{nl}");
        let _ = write!(o, "pre-decompress bytes,{c}{nl}");
        let _ = write!(o, "post-decompress bytes,{d}{nl}");
    }
    if let Some(x) = &s.xdp {
        for (k, v) in xdp_rows(x) {
            let _ = write!(o, "{k},{v}{nl}");
        }
    }
    let _ = write!(o, "END{nl}");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const TITLE: &str = "OpenVPN 2.6.14 x86_64-pc-linux-gnu [SSL (OpenSSL)] [LZO] [LZ4] [EPOLL] [PKCS11] [MH/PKTINFO] [AEAD] [DCO]";

    /// The doc's samples were captured in UTC (1795625095 = 2026-11-25
    /// 16:44:55).
    fn tz() -> Utc {
        Utc
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn client1() -> ClientEntry {
        ClientEntry {
            common_name: Some("client1".into()),
            real_address: sa("198.51.100.7:43451"),
            virtual_ipv4: Some("10.8.0.2".parse().unwrap()),
            virtual_ipv6: Some("fd00:8::1000".parse().unwrap()),
            bytes_received: 2158,
            bytes_sent: 2097,
            connected_since: 1_795_625_095,
            username: Some("alice".into()),
            client_id: 0,
            peer_id: 0,
            cipher: "AES-256-GCM".into(),
            fast_path: FastPathCounters::default(),
        }
    }

    fn route(net: &str, cn: &str, real: &str, last: u64) -> RouteEntry {
        RouteEntry {
            network: net.parse().unwrap(),
            cached: false,
            common_name: Some(cn.into()),
            real_address: sa(real),
            last_ref: last,
        }
    }

    /// The doc's §7.3 version 2 sample.
    fn v2_sample() -> ServerStatus {
        ServerStatus {
            title: TITLE.into(),
            now: 1_795_625_105,
            clients: vec![
                client1(),
                ClientEntry {
                    common_name: Some("laptop-bob".into()),
                    real_address: sa("203.0.113.20:51820"),
                    virtual_ipv4: Some("10.8.0.3".parse().unwrap()),
                    virtual_ipv6: None,
                    bytes_received: 7_733_412,
                    bytes_sent: 120_094_511,
                    connected_since: 1_795_590_070,
                    username: None,
                    client_id: 4,
                    peer_id: 1,
                    cipher: "CHACHA20-POLY1305".into(),
                    fast_path: FastPathCounters::default(),
                },
            ],
            routes: vec![
                route(
                    "10.8.0.2/32",
                    "client1",
                    "198.51.100.7:43451",
                    1_795_625_097,
                ),
                route(
                    "fd00:8::1000/128",
                    "client1",
                    "198.51.100.7:43451",
                    1_795_625_097,
                ),
                route(
                    "10.8.0.3/32",
                    "laptop-bob",
                    "203.0.113.20:51820",
                    1_795_625_104,
                ),
            ],
            max_bcast_mcast_queue_len: 0,
            dco_enabled: false,
            xdp: None,
        }
    }

    #[test]
    fn version2_matches_the_documented_sample() {
        let want = "\
TITLE,OpenVPN 2.6.14 x86_64-pc-linux-gnu [SSL (OpenSSL)] [LZO] [LZ4] [EPOLL] [PKCS11] [MH/PKTINFO] [AEAD] [DCO]
TIME,2026-11-25 16:45:05,1795625105
HEADER,CLIENT_LIST,Common Name,Real Address,Virtual Address,Virtual IPv6 Address,Bytes Received,Bytes Sent,Connected Since,Connected Since (time_t),Username,Client ID,Peer ID,Data Channel Cipher
CLIENT_LIST,client1,198.51.100.7:43451,10.8.0.2,fd00:8::1000,2158,2097,2026-11-25 16:44:55,1795625095,alice,0,0,AES-256-GCM
CLIENT_LIST,laptop-bob,203.0.113.20:51820,10.8.0.3,,7733412,120094511,2026-11-25 07:01:10,1795590070,UNDEF,4,1,CHACHA20-POLY1305
HEADER,ROUTING_TABLE,Virtual Address,Common Name,Real Address,Last Ref,Last Ref (time_t)
ROUTING_TABLE,10.8.0.2,client1,198.51.100.7:43451,2026-11-25 16:44:57,1795625097
ROUTING_TABLE,fd00:8::1000,client1,198.51.100.7:43451,2026-11-25 16:44:57,1795625097
ROUTING_TABLE,10.8.0.3,laptop-bob,203.0.113.20:51820,2026-11-25 16:45:04,1795625104
GLOBAL_STATS,Max bcast/mcast queue length,0
GLOBAL_STATS,dco_enabled,0
END
";
        // The doc's (constructed) sample pairs 1795590070 with "08:01:10";
        // the Unix time is authoritative: 07:01:10 UTC.
        assert_eq!(
            render_server(&v2_sample(), StatusVersion::V2, LineEnd::Lf, &tz()),
            want
        );
    }

    #[test]
    fn version3_matches_the_documented_live_sample() {
        let mut s = v2_sample();
        s.now = 1_795_625_107;
        s.clients.truncate(1);
        s.clients[0].bytes_sent = 2137;
        s.routes.truncate(1);
        let want = "TITLE\tOpenVPN 2.6.14 x86_64-pc-linux-gnu [SSL (OpenSSL)] [LZO] [LZ4] [EPOLL] [PKCS11] [MH/PKTINFO] [AEAD] [DCO]
TIME\t2026-11-25 16:45:07\t1795625107
HEADER\tCLIENT_LIST\tCommon Name\tReal Address\tVirtual Address\tVirtual IPv6 Address\tBytes Received\tBytes Sent\tConnected Since\tConnected Since (time_t)\tUsername\tClient ID\tPeer ID\tData Channel Cipher
CLIENT_LIST\tclient1\t198.51.100.7:43451\t10.8.0.2\tfd00:8::1000\t2158\t2137\t2026-11-25 16:44:55\t1795625095\talice\t0\t0\tAES-256-GCM
HEADER\tROUTING_TABLE\tVirtual Address\tCommon Name\tReal Address\tLast Ref\tLast Ref (time_t)
ROUTING_TABLE\t10.8.0.2\tclient1\t198.51.100.7:43451\t2026-11-25 16:44:57\t1795625097
GLOBAL_STATS\tMax bcast/mcast queue length\t0
GLOBAL_STATS\tdco_enabled\t0
END
";
        assert_eq!(
            render_server(&s, StatusVersion::V3, LineEnd::Lf, &tz()),
            want
        );
    }

    #[test]
    fn version1_matches_the_documented_sample() {
        let s = ServerStatus {
            title: TITLE.into(),
            now: 1_795_625_217,
            clients: vec![
                ClientEntry {
                    real_address: sa("198.51.100.7:50892"),
                    bytes_received: 2157,
                    bytes_sent: 2148,
                    connected_since: 1_795_625_202,
                    ..client1()
                },
                ClientEntry {
                    common_name: Some("client2".into()),
                    real_address: sa("203.0.113.20:1194"),
                    bytes_received: 88213,
                    bytes_sent: 140_977,
                    connected_since: 1_795_597_923,
                    ..client1()
                },
            ],
            routes: vec![
                route(
                    "10.8.0.2/32",
                    "client1",
                    "198.51.100.7:50892",
                    1_795_625_202,
                ),
                route(
                    "fd00:8::1000/128",
                    "client1",
                    "198.51.100.7:50892",
                    1_795_625_202,
                ),
                route("10.8.0.3/32", "client2", "203.0.113.20:1194", 1_795_625_215),
                route("10.9.0.0/24", "client2", "203.0.113.20:1194", 1_795_597_924),
            ],
            max_bcast_mcast_queue_len: 1,
            dco_enabled: false,
            xdp: None,
        };
        let want = "\
OpenVPN CLIENT LIST
Updated,2026-11-25 16:46:57
Common Name,Real Address,Bytes Received,Bytes Sent,Connected Since
client1,198.51.100.7:50892,2157,2148,2026-11-25 16:46:42
client2,203.0.113.20:1194,88213,140977,2026-11-25 09:12:03
ROUTING TABLE
Virtual Address,Common Name,Real Address,Last Ref
10.8.0.2,client1,198.51.100.7:50892,2026-11-25 16:46:42
fd00:8::1000,client1,198.51.100.7:50892,2026-11-25 16:46:42
10.8.0.3,client2,203.0.113.20:1194,2026-11-25 16:46:55
10.9.0.0/24,client2,203.0.113.20:1194,2026-11-25 09:12:04
GLOBAL STATS
Max bcast/mcast queue length,1
END
";
        assert_eq!(
            render_server(&s, StatusVersion::V1, LineEnd::Lf, &tz()),
            want
        );
    }

    #[test]
    fn management_output_uses_crlf() {
        let out = render_server(&v2_sample(), StatusVersion::V3, LineEnd::CrLf, &tz());
        assert!(out.ends_with("\r\nEND\r\n"));
        assert_eq!(out.matches("\r\n").count(), out.matches('\n').count());
    }

    #[test]
    fn client_block_matches_the_documented_sample() {
        let s = ClientStatus {
            now: 1_795_625_217,
            tun_read_bytes: 144,
            tun_write_bytes: 48,
            link_read_bytes: 2174,
            link_write_bytes: 2171,
            auth_read_bytes: 64,
            compression: None,
            xdp: None,
        };
        assert_eq!(
            render_client(&s, LineEnd::Lf, &tz()),
            "OpenVPN STATISTICS\nUpdated,2026-11-25 16:46:57\nTUN/TAP read bytes,144\nTUN/TAP write bytes,48\nTCP/UDP read bytes,2174\nTCP/UDP write bytes,2171\nAuth read bytes,64\nEND\n"
        );
        let c = ClientStatus {
            compression: Some([1, 2, 3, 4]),
            ..s.clone()
        };
        let out = render_client(&c, LineEnd::CrLf, &tz());
        assert!(out.contains("Auth read bytes,64\r\npre-compress bytes,1\r\npost-compress bytes,2\r\npre-decompress bytes,3\r\npost-decompress bytes,4\r\nEND\r\n"));
    }

    #[test]
    fn client_block_lists_xdp_counters_before_end() {
        let s = ClientStatus {
            now: 1_795_625_217,
            xdp: Some(XdpCounters {
                redirected: 7,
                passed: 3,
                dropped: vec![("drop_unknown_peer".into(), 2)],
                ..XdpCounters::default()
            }),
            ..ClientStatus::default()
        };
        let out = render_client(&s, LineEnd::Lf, &tz());
        assert!(out.ends_with(
            "Auth read bytes,0\nXDP redirected,7\nXDP passed,3\nXDP dropped drop_unknown_peer,2\nEND\n"
        ));
    }

    #[test]
    fn real_addresses_render_as_openvpn_does() {
        assert_eq!(format_real_address(sa("192.0.2.1:1194")), "192.0.2.1:1194");
        assert_eq!(
            format_real_address(sa("[::ffff:192.0.2.1]:1194")),
            "192.0.2.1:1194"
        );
        assert_eq!(format_real_address(sa("[2001:db8::5]:1194")), "2001:db8::5");
    }

    #[test]
    fn cached_iroute_hosts_get_a_c_suffix_and_undef_names() {
        let mut s = v2_sample();
        s.routes = vec![RouteEntry {
            network: "10.9.0.5/32".parse().unwrap(),
            cached: true,
            common_name: None,
            real_address: sa("192.0.2.1:1"),
            last_ref: 0,
        }];
        let out = render_server(&s, StatusVersion::V2, LineEnd::Lf, &tz());
        assert!(
            out.contains("\nROUTING_TABLE,10.9.0.5C,UNDEF,192.0.2.1:1,1970-01-01 00:00:00,0\n")
        );
    }

    #[test]
    fn local_time_offsets_apply() {
        assert_eq!(format_time(0, &FixedOffset(3600)), "1970-01-01 01:00:00");
        assert_eq!(format_time(0, &FixedOffset(-1)), "1969-12-31 23:59:59");
        assert_eq!(format_time(951_782_400, &Utc), "2000-02-29 00:00:00");
        assert_eq!(format_time(4_107_542_400, &Utc), "2100-03-01 00:00:00");
        // Whatever the machine's zone, the result has 2.6's shape.
        let s = format_time(1_795_625_095, &SystemLocalTime);
        assert_eq!(s.len(), 19);
        assert_eq!(&s[4..5], "-");
    }

    fn with_xdp() -> ServerStatus {
        let mut s = v2_sample();
        s.clients[0].fast_path = FastPathCounters {
            rx_packets: 10,
            rx_bytes: 1000,
            tx_packets: 20,
            tx_bytes: 2000,
        };
        s.xdp = Some(XdpCounters {
            redirected: 30,
            passed: 5,
            dropped: vec![("unknown-peer".into(), 7), ("malformed".into(), 1)],
            ..XdpCounters::default()
        });
        s
    }

    /// Mimics kumina/openvpn_exporter's server parser (see the module doc):
    /// known tags only, rows as long as their HEADER, columns by name.
    fn kumina_parse(text: &str, sep: char) -> Result<Vec<(String, String)>, String> {
        let mut headers: std::collections::HashMap<String, Vec<String>> = Default::default();
        let mut out = Vec::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split(sep).collect();
            match f[0] {
                "END" if f.len() == 1 => {}
                "GLOBAL_STATS" => {}
                "HEADER" if f.len() > 2 => {
                    headers.insert(f[1].into(), f[2..].iter().map(|s| s.to_string()).collect());
                }
                "TIME" if f.len() == 3 => {
                    f[2].parse::<f64>().map_err(|e| e.to_string())?;
                }
                "TITLE" if f.len() == 2 => {}
                "CLIENT_LIST" | "ROUTING_TABLE" => {
                    let cols = headers.get(f[0]).ok_or("no header")?;
                    if f.len() != cols.len() + 1 {
                        return Err(format!("column count in {line}"));
                    }
                    for (c, v) in cols.iter().zip(&f[1..]) {
                        out.push((c.clone(), v.to_string()));
                    }
                }
                t => return Err(format!("unsupported key {t:?}")),
            }
        }
        Ok(out)
    }

    #[test]
    fn xdp_columns_and_rows_keep_kumina_parsing() {
        for (v, sep) in [(StatusVersion::V2, ','), (StatusVersion::V3, '\t')] {
            let out = render_server(&with_xdp(), v, LineEnd::Lf, &tz());
            let cols = kumina_parse(&out, sep).unwrap();
            assert!(cols.contains(&("Bytes Received".into(), "2158".into())));
            assert!(cols.contains(&("XDP RX Bytes".into(), "1000".into())));
        }
    }

    #[test]
    fn xdp_extras_keep_positional_parsers_and_last_global_stat() {
        let out = render_server(&with_xdp(), StatusVersion::V3, LineEnd::Lf, &tz());
        let lines: Vec<&str> = out.lines().collect();
        // openvpn-monitor / patrickjahns: fixed positions up to Peer ID.
        let row: Vec<&str> = lines
            .iter()
            .find(|l| l.starts_with("CLIENT_LIST\tclient1"))
            .unwrap()
            .split('\t')
            .collect();
        assert_eq!(row[1], "client1");
        assert_eq!(row[5], "2158");
        assert_eq!(row[8], "1795625095");
        assert_eq!(row[11], "0");
        assert_eq!(row[12], "AES-256-GCM");
        assert_eq!(&row[13..], &["10", "1000", "20", "2000"]);
        // patrickjahns keeps the last GLOBAL_STATS value: still dco_enabled.
        let globals: Vec<&&str> = lines
            .iter()
            .filter(|l| l.starts_with("GLOBAL_STATS"))
            .collect();
        assert_eq!(
            globals.first().unwrap(),
            &&"GLOBAL_STATS\tMax bcast/mcast queue length\t0"
        );
        assert_eq!(globals.last().unwrap(), &&"GLOBAL_STATS\tdco_enabled\t0");
        assert!(globals.contains(&&"GLOBAL_STATS\tXDP dropped unknown-peer\t7"));
        assert_eq!(lines.last(), Some(&"END"));
    }

    #[test]
    fn xdp_rows_in_version1_have_two_fields() {
        let out = render_server(&with_xdp(), StatusVersion::V1, LineEnd::Lf, &tz());
        let tail = out.split("GLOBAL STATS\n").nth(1).unwrap();
        assert_eq!(
            tail,
            "Max bcast/mcast queue length,0\nXDP redirected,30\nXDP passed,5\nXDP dropped unknown-peer,7\nXDP dropped malformed,1\nEND\n"
        );
        // Client rows keep exactly 5 fields.
        assert!(out.contains("\nclient1,198.51.100.7:43451,2158,2097,2026-11-25 16:44:55\n"));
    }

    #[test]
    fn xdp_pass_reasons_and_errors_are_global_stats_rows() {
        let mut s = with_xdp();
        if let Some(x) = s.xdp.as_mut() {
            x.passed_by_reason = vec![("control".into(), 4), ("other_port".into(), 1)];
            x.errors = vec![("peer_map".into(), 2)];
        }
        let v1 = render_server(&s, StatusVersion::V1, LineEnd::Lf, &tz());
        let tail = v1.split("GLOBAL STATS\n").nth(1).unwrap();
        assert_eq!(
            tail,
            "Max bcast/mcast queue length,0\nXDP redirected,30\nXDP passed,5\nXDP passed control,4\nXDP passed other_port,1\nXDP dropped unknown-peer,7\nXDP dropped malformed,1\nXDP errors peer_map,2\nEND\n"
        );
        for (v, sep) in [(StatusVersion::V2, ','), (StatusVersion::V3, '\t')] {
            let out = render_server(&s, v, LineEnd::Lf, &tz());
            assert!(kumina_parse(&out, sep).is_ok());
            let row = format!("GLOBAL_STATS{sep}XDP passed control{sep}4");
            assert!(out.lines().any(|l| l == row), "{out}");
            let globals: Vec<&str> = out
                .lines()
                .filter(|l| l.starts_with("GLOBAL_STATS"))
                .collect();
            assert_eq!(
                globals.last(),
                Some(&&*format!("GLOBAL_STATS{sep}dco_enabled{sep}0"))
            );
            // Every row keeps three fields: no separator inside a name.
            assert!(globals.iter().all(|l| l.split(sep).count() == 3));
        }
    }

    #[test]
    fn empty_server_still_prints_headers() {
        let s = ServerStatus {
            clients: vec![],
            routes: vec![],
            ..v2_sample()
        };
        let out = render_server(&s, StatusVersion::V2, LineEnd::Lf, &tz());
        assert_eq!(out.lines().count(), 7);
        assert!(out.contains("HEADER,ROUTING_TABLE,"));
    }

    #[test]
    fn status_version_numbers() {
        assert_eq!(StatusVersion::from_number(1), Some(StatusVersion::V1));
        assert_eq!(StatusVersion::from_number(3), Some(StatusVersion::V3));
        assert_eq!(StatusVersion::from_number(4), None);
        assert_eq!(StatusVersion::from_number(0), None);
    }
}
