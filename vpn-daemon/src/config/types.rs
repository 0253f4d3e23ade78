//! The typed values that make up a [`Config`](super::Config): one type per
//! OpenVPN option family, in OpenVPN's vocabulary.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
};

use ipnet::Ipv6Net;

/// Where key or certificate material comes from. Contents are read by the
/// layer that uses them; an inline block has already been checked to be
/// well-formed (PEM framing, base64, static-key shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file; relative names are resolved against `cd` (or the current
    /// directory) once the whole configuration is read.
    File(PathBuf),
    /// The body of an inline `<tag>...</tag>` block.
    Inline(String),
}

/// OpenVPN's `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One peer (a client, or a TLS point-to-point link).
    PointToPoint,
    /// Many clients on one socket (`mode server`, `server`).
    Server,
}

// The TLS role, `remote-cert-tls` and `verify-client-cert` mean what the
// TLS layer does with them, so config speaks the protocol core's types.
pub use crate::proto::tls::{CertType as CertUsage, TlsRole, VerifyClientCert};

/// The tunnel device kind (`dev-type`, or the start of the `dev` name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevType {
    /// Layer-3 tun device: IP packets.
    Tun,
    /// Layer-2 tap device: Ethernet frames.
    Tap,
    /// No device (`dev null`): packets from the peer are discarded.
    Null,
}

impl DevType {
    /// The name OpenVPN gives it (`dev-type` value, OCC string).
    pub fn as_str(self) -> &'static str {
        match self {
            DevType::Tun => "tun",
            DevType::Tap => "tap",
            DevType::Null => "null",
        }
    }
}

/// `vlan-accept`: which frames the tap device may carry (2.6 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VlanAccept {
    /// `all` (default): untagged frames are the PVID's, tagged ones their VID's.
    #[default]
    All,
    /// `tagged`: only tagged frames; everything written to tap is tagged.
    Tagged,
    /// `untagged`: only untagged (or priority-tagged) frames, all the PVID's.
    Untagged,
}

/// `vlan-tagging` with its `vlan-accept` and `vlan-pvid` on a tap server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vlan {
    /// `vlan-accept`.
    pub accept: VlanAccept,
    /// `vlan-pvid` (1..4094, default 1): the tap port's native VID and the
    /// VID of clients whose ccd file sets none.
    pub pvid: u16,
}

/// `server-bridge`: a tap server whose device is bridged to a LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerBridge {
    /// `server-bridge IP MASK POOL-START POOL-END`: the bridge's own
    /// address (pushed as `route-gateway`) and a pool on the LAN subnet.
    Pool {
        /// The bridge's address, the clients' gateway.
        gateway: Ipv4Addr,
        /// The LAN's netmask (pushed with each client's address).
        netmask: Ipv4Addr,
        /// First pool address.
        start: Ipv4Addr,
        /// Last pool address.
        end: Ipv4Addr,
    },
    /// `server-bridge` / `server-bridge nogw`: no pool, the clients ask
    /// the LAN's DHCP server; `push_gateway` pushes `route-gateway dhcp`.
    Dhcp {
        /// false after `nogw`.
        push_gateway: bool,
    },
}

/// Transport protocol, after OpenVPN's `proto tcp` resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP, listening (server side).
    TcpServer,
    /// TCP, connecting (client side).
    TcpClient,
}

/// Address family restriction of `proto udp4` / `udp6` / `tcp4-*`...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrFamily {
    /// Whatever the name resolves to (dual stack for listeners).
    Any,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

/// A `proto` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proto {
    /// UDP, or TCP with a side.
    pub transport: Transport,
    /// Address family restriction.
    pub family: AddrFamily,
}

/// A `proto` value as written, before `proto tcp` gets its side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawTransport {
    Udp,
    Tcp,
    TcpServer,
    TcpClient,
}

/// One `remote` entry, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Host name or address, resolved at connect time.
    pub host: String,
    /// Port (`remote`'s own, else `rport`/`port`).
    pub port: u16,
    /// Protocol (`remote`'s own, else `proto`).
    pub proto: Proto,
}

/// `connect-retry N [MAX]`: seconds between connection attempts, doubling
/// up to `max` (OpenVPN's backoff).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectRetry {
    /// First delay in seconds.
    pub initial: u32,
    /// Ceiling of the backoff in seconds.
    pub max: u32,
}

// `topology` and `route-gateway` mean the same in a config file and in a
// PUSH_REPLY, so both use the protocol core's types.
pub use crate::proto::push::{RouteGateway, Topology};

/// `ifconfig LOCAL REMOTE_OR_NETMASK`: with `topology subnet` the second
/// address is a netmask, otherwise the point-to-point peer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ifconfig {
    /// Our tun address.
    pub local: Ipv4Addr,
    /// Netmask (subnet) or remote peer address (net30, p2p).
    pub remote_netmask: Ipv4Addr,
}

/// `ifconfig-ipv6 ADDR/BITS REMOTE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfconfigIpv6 {
    /// Our tun address and prefix length.
    pub local: Ipv6Net,
    /// The peer's (or, on a client, the server's) tunnel address.
    pub remote: Ipv6Addr,
}

/// `ifconfig-pool START END [NETMASK]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfconfigPool {
    /// First address handed out.
    pub start: Ipv4Addr,
    /// Last address handed out.
    pub end: Ipv4Addr,
    /// Netmask pushed with each address (subnet topology).
    pub netmask: Option<Ipv4Addr>,
}

/// `ifconfig-pool-persist FILE [SECONDS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolPersist {
    /// The persistence file (created if missing).
    pub file: PathBuf,
    /// How often it is written; 0 means read once, never written.
    pub seconds: u32,
}

// A `route` line means the same in a config file and in a PUSH_REPLY, so
// both use the protocol core's types.
pub use crate::proto::push::{Route, RouteAddr, RouteIpv6};

/// `redirect-gateway FLAGS...` (also what `redirect-private` sets without
/// the default route).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(clippy::struct_excessive_bools)]
pub struct RedirectGateway {
    /// `local`: peers are on the same LAN; no static route to the server.
    pub local: bool,
    /// `autolocal`: detect `local` automatically.
    pub autolocal: bool,
    /// `def1`: use 0/1 + 128/1 instead of replacing the default route.
    pub def1: bool,
    /// `bypass-dhcp`: keep DHCP server traffic off the tunnel.
    pub bypass_dhcp: bool,
    /// `bypass-dns`: keep DNS server traffic off the tunnel.
    pub bypass_dns: bool,
    /// `block-local`: block LAN access while the tunnel is up.
    pub block_local: bool,
    /// `ipv6`: redirect IPv6 too.
    pub ipv6: bool,
    /// IPv4 is redirected unless `!ipv4` was given.
    pub ipv4: bool,
    /// Set by `redirect-gateway`; `redirect-private` leaves it false.
    pub default_route: bool,
}

/// One `dhcp-option TYPE [VALUE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpOption {
    /// `DNS addr` (IPv4 or IPv6).
    Dns(IpAddr),
    /// `DNS6 addr`.
    Dns6(Ipv6Addr),
    /// `DOMAIN name`.
    Domain(String),
    /// `ADAPTER_DOMAIN_SUFFIX name`.
    AdapterDomainSuffix(String),
    /// `DOMAIN-SEARCH name`.
    DomainSearch(String),
    /// `WINS addr`.
    Wins(Ipv4Addr),
    /// `NBDD addr`.
    Nbdd(Ipv4Addr),
    /// `NTP addr`.
    Ntp(Ipv4Addr),
    /// `NBT type`.
    NbtType(u8),
    /// `NBS scope`.
    NbtScope(String),
    /// `DISABLE-NBT`.
    DisableNbt,
    /// `PROXY_HTTP host port`.
    ProxyHttp(String, u16),
}

// `dns` (2.6): the typed settings are proto's, shared with pushed `dns`
// options once they are checked.
pub use crate::proto::dns::{Dns, DnsSec, DnsServer, DnsTransport};

// `verify-x509-name NAME [subject|name|name-prefix]` is the TLS layer's
// check as written.
pub use crate::proto::tls::X509NameCheck;

// A static key's direction (`key-direction`, tls-auth's 2nd parameter) is
// the key layer's: config keeps it in an `Option` (`None` until given,
// which is `KeyDirection::Bidirectional`) and never stores `Bidirectional`.
pub use crate::proto::keys::KeyDirection;

/// The control channel's wrapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsWrap {
    /// No tls-auth / tls-crypt.
    None,
    /// `tls-auth`: HMAC on every control packet.
    Auth {
        /// The static key.
        key: Source,
        /// Key direction; `None` is bidirectional use of one key.
        direction: Option<KeyDirection>,
    },
    /// `tls-crypt`: encrypt and authenticate control packets.
    Crypt {
        /// The static key.
        key: Source,
    },
    /// `tls-crypt-v2`: per-client tls-crypt keys.
    CryptV2 {
        /// Server key (server) or client key (client).
        key: Source,
        /// Server: `force-cookie` (the default) refuses clients without the
        /// HMAC cookie; `allow-noncookie` accepts them.
        force_cookie: bool,
    },
}

/// `dh`: accepted for compatibility, never used (ECDHE only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dh {
    /// `dh none`.
    None,
    /// A parameters file or block, accepted and ignored.
    Ignored(Source),
}

/// What happens when nothing is received for `ping-restart`/`ping-exit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingAction {
    /// Reconnect (client) / drop the client (server).
    Restart,
    /// Exit the process.
    Exit,
}

/// `ping-restart N` / `ping-exit N`: the receive timeout (OpenVPN keeps one
/// timeout, the later directive wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingRec {
    /// Seconds without any packet from the peer.
    pub timeout: u32,
    /// Then do this.
    pub action: PingAction,
}

/// `inactive SECONDS [BYTES]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inactive {
    /// Exit after this many seconds of too little traffic.
    pub seconds: u32,
    /// "Too little": fewer than this many bytes in the period (0: any).
    pub bytes: u64,
}

/// `reneg-sec MAX [MIN]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenegSec {
    /// Renegotiate after at most this many seconds (0 disables).
    pub max: u32,
    /// Lower bound of the randomised client interval, if given.
    pub min: Option<u32>,
}

/// `replay-window N [T]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Packets in the sliding window.
    pub size: u32,
    /// Seconds a packet may arrive late.
    pub seconds: u32,
}

/// How `mssfix`'s size is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MssfixMode {
    /// The outer UDP/IP packet including encapsulation (2.6 default).
    Encapsulated,
    /// `mtu`: the whole outer IP packet.
    Mtu,
    /// `fixed`: the number is the MSS's packet size, no overhead math.
    Fixed,
}

/// `mssfix [N [mtu|fixed]]`; `mssfix 0` turns clamping off (`None` in
/// [`Config::mssfix`](super::Config::mssfix)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mssfix {
    /// Target size in bytes.
    pub size: u32,
    /// What the size measures.
    pub mode: MssfixMode,
}

/// `auth-user-pass [FILE]` (client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthUserPass {
    /// No file: ask on the terminal.
    Prompt,
    /// Username and password lines from a file or inline block.
    Source(Source),
}

/// `auth-user-pass-verify` method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMethod {
    /// `via-env`: username/password in the environment.
    ViaEnv,
    /// `via-file`: in a temporary file named as the last argument.
    ViaFile,
}

/// `auth-user-pass-verify CMD METHOD` (server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUserPassVerify {
    /// The command line (OpenVPN splits it into argv itself).
    pub command: String,
    /// How credentials reach it.
    pub method: VerifyMethod,
}

/// The script hooks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scripts {
    /// `up CMD`.
    pub up: Option<String>,
    /// `down CMD`.
    pub down: Option<String>,
    /// `client-connect CMD` (server).
    pub client_connect: Option<String>,
    /// `client-disconnect CMD` (server).
    pub client_disconnect: Option<String>,
}

/// `log FILE` / `log-append FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// Where.
    pub path: PathBuf,
    /// `log-append` keeps the old contents.
    pub append: bool,
}

/// `status FILE [SECONDS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusFile {
    /// Where.
    pub path: PathBuf,
    /// Rewrite interval (default 60).
    pub interval: u32,
}

// `tls-version-min` / `tls-version-max` name the TLS layer's versions.
pub use crate::proto::tls::TlsVersion;

/// `tls-version-min V [or-highest]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsVersionMin {
    /// Minimum version.
    pub version: TlsVersion,
    /// Fall back to the highest version the library has if `version` is
    /// unknown to it.
    pub or_highest: bool,
}

/// `resolv-retry N|infinite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvRetry {
    /// Keep trying.
    Infinite,
    /// Give up after this many seconds.
    Seconds(u32),
}

/// `xdp auto|native|generic|off` (this daemon's own directive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Try native, then generic, then plain sockets.
    Auto,
    /// Native (driver) XDP only, else plain sockets.
    Native,
    /// Generic (SKB) XDP only, else plain sockets.
    Generic,
    /// No XDP program.
    Off,
}

/// `comp-lzo` / `compress` / `allow-compression` / `comp-noadapt`: 2.6's
/// `struct compress_options` (algorithm and flags).
pub use crate::proto::data::compress::{CompAlg, CompFlags, CompressOptions as Compression};

/// A note about the configuration that is not an error (an ignored
/// directive the user allowed, an option OpenVPN deprecates...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Where.
    pub span: super::Span,
    /// What.
    pub message: String,
}

/// `fragment N [mtu]`: OpenVPN's own fragmentation of data-channel packets (UDP only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// N (at least 68): the largest UDP payload a data packet may have.
    pub size: u32,
    /// `mtu`: N counts the outer IP and UDP headers too.
    pub mtu: bool,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: warning: {}", self.span, self.message)
    }
}

/// `secret FILE [direction]` / `<secret>`: static-key mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticSecret {
    /// The "OpenVPN Static key V1" file or inline block.
    pub key: Source,
    /// The direction: `secret`'s second parameter, else `key-direction`;
    /// `None` uses `keys[0]` both ways.
    pub direction: Option<KeyDirection>,
}

/// What `genkey TYPE` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenKeyKind {
    /// `secret`, `tls-auth`, `tls-crypt` (or no type): an "OpenVPN Static key V1".
    Secret,
    /// `tls-crypt-v2-server`.
    TlsCryptV2Server,
    /// `tls-crypt-v2-client` (needs `tls-crypt-v2 SERVER_KEY`).
    TlsCryptV2Client,
    /// `auth-token`: the server key for `auth-gen-token`.
    AuthToken,
}

/// `genkey [TYPE [FILE [METADATA]]]`: write a key and exit, nothing else runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenKey {
    /// The key type.
    pub kind: GenKeyKind,
    /// Where to write; `None` is standard output.
    pub file: Option<PathBuf>,
    /// tls-crypt-v2-client: base64 user metadata (else a timestamp).
    pub metadata: Option<String>,
    /// `secret FILE` given too (the old `--genkey --secret FILE` form).
    pub secret_file: Option<PathBuf>,
    /// `tls-crypt-v2 SERVER_KEY` for tls-crypt-v2-client.
    pub tls_crypt_v2_server: Option<Source>,
}

/// At most this many `plugin` lines (OpenVPN's `MAX_PLUGINS`).
pub const MAX_PLUGINS: usize = 16;

/// Where Debian's openvpn looks for a plugin named without a directory
/// (`PLUGIN_LIBDIR`).
pub const PLUGIN_LIBDIR: &str = "/usr/lib/x86_64-linux-gnu/openvpn/plugins";

/// `plugin FILE [ARGS...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginOption {
    /// The file to load: `FILE` itself when absolute or starting with
    /// `.` (then relative to the working directory after `cd`), else
    /// under [`PLUGIN_LIBDIR`], as 2.6's `plugin_init_item` does.
    pub path: PathBuf,
    /// The argv the plugin's open function gets: `FILE` as written, then
    /// the arguments.
    pub argv: Vec<String>,
}

impl PluginOption {
    /// From the directive's words (`file` is the first).
    pub fn new(file: &str, words: &[String]) -> Self {
        let path = if file.starts_with('/') || file.starts_with('.') {
            PathBuf::from(file)
        } else {
            std::path::Path::new(PLUGIN_LIBDIR).join(file)
        };
        PluginOption {
            path,
            argv: words.to_vec(),
        }
    }
}
