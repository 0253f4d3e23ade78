//! What a [`Session`](super::Session) is configured with: role, TLS, control-channel
//! wrapping, timers and data-channel settings (OpenVPN's option names in the docs).

use std::sync::Arc;
use std::time::Duration;

use crate::proto::data::Digest;
use crate::proto::data::compress::CompressOptions;
use crate::proto::data::fragment::FragmentConfig;
use crate::proto::error::KeyFileError;
use crate::proto::key_method::{OptionsString, PeerInfo};
use crate::proto::keys::{Key2, KeyDirection, Role};
use crate::proto::ncp::{self, CipherList};
use crate::proto::push::PullFilter;
use crate::proto::reliable::DEFAULT_TLS_TIMEOUT;
use crate::proto::replay::ReplayConfig;
use crate::proto::timers::{DEFAULT_HAND_WINDOW, DEFAULT_RENEG_SEC, DEFAULT_TRANSITION_WINDOW};
use crate::proto::tls::{TlsContext, TlsRole};
use crate::proto::wire::tls_auth::TlsAuth;
use crate::proto::wire::tls_crypt::{TlsCrypt, TlsCryptV2ServerKey};
use crate::proto::wire::wrap::TlsWrap;

/// Control-channel protection as configured (`tls-auth`, `tls-crypt`,
/// `tls-crypt-v2`, or none). A [`TlsWrap`] with live cipher contexts is
/// built from it per session, so sessions share no mutable state.
#[derive(Clone)]
pub enum WrapConfig {
    /// No tls-auth / tls-crypt.
    None,
    /// `--tls-auth KEY [direction]` with `--auth DIGEST`.
    Auth {
        /// The static key.
        key: Key2,
        /// `key-direction`.
        direction: KeyDirection,
        /// `--auth` digest.
        digest: Digest,
    },
    /// `--tls-crypt KEY`.
    Crypt {
        /// The static key.
        key: Key2,
    },
    /// Client `--tls-crypt-v2 CLIENTKEY`: Kc and the wrapped key WKc.
    CryptV2Client {
        /// Kc, used like a tls-crypt key.
        kc: Key2,
        /// WKc, appended to P_CONTROL_HARD_RESET_CLIENT_V3 / P_CONTROL_WKC_V1.
        wkc: Vec<u8>,
    },
    /// Server `--tls-crypt-v2 SERVERKEY`: Kc comes with each client's WKc.
    CryptV2Server {
        /// The server key that unwraps WKc.
        server_key: Arc<TlsCryptV2ServerKey>,
    },
}

impl std::fmt::Debug for WrapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WrapConfig::None => "WrapConfig::None",
            WrapConfig::Auth { .. } => "WrapConfig::Auth",
            WrapConfig::Crypt { .. } => "WrapConfig::Crypt",
            WrapConfig::CryptV2Client { .. } => "WrapConfig::CryptV2Client",
            WrapConfig::CryptV2Server { .. } => "WrapConfig::CryptV2Server",
        })
    }
}

impl WrapConfig {
    /// A fresh wrap for `role`; `None` for a tls-crypt-v2 server, whose key
    /// is only known once a client's WKc has been unwrapped.
    pub fn build(&self, role: Role) -> Result<Option<TlsWrap>, KeyFileError> {
        Ok(Some(match self {
            WrapConfig::None => TlsWrap::None,
            WrapConfig::Auth {
                key,
                direction,
                digest,
            } => TlsWrap::Auth(TlsAuth::new(key, *direction, *digest)),
            WrapConfig::Crypt { key } => TlsWrap::Crypt(TlsCrypt::new(key, role)?),
            WrapConfig::CryptV2Client { kc, .. } => TlsWrap::Crypt(TlsCrypt::new(kc, role)?),
            WrapConfig::CryptV2Server { .. } => return Ok(None),
        }))
    }

    /// The pre-shared key a dynamic tls-crypt key is XORed with (doc §3.6).
    pub fn static_key(&self) -> Option<&Key2> {
        match self {
            WrapConfig::Auth { key, .. } | WrapConfig::Crypt { key } => Some(key),
            WrapConfig::CryptV2Client { kc, .. } => Some(kc),
            WrapConfig::None | WrapConfig::CryptV2Server { .. } => None,
        }
    }

    /// Whether this is tls-crypt-v2 (either side).
    pub fn is_v2(&self) -> bool {
        matches!(
            self,
            WrapConfig::CryptV2Client { .. } | WrapConfig::CryptV2Server { .. }
        )
    }
}

/// Link transport: decides the stateless cookie (UDP) vs. the held reset (TCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `proto udp`.
    Udp,
    /// `proto tcp-client` / `tcp-server` (the caller does the 16-bit framing).
    Tcp,
}

/// Everything a session needs; shared (`Arc`) by all sessions of one config.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Client or server.
    pub role: Role,
    /// TLS context (its role must match `role`).
    pub tls: Arc<TlsContext>,
    /// Control-channel protection.
    pub wrap: WrapConfig,
    /// UDP or TCP.
    pub transport: Transport,
    /// `--hand-window`.
    pub hand_window: Duration,
    /// `--tls-timeout`: the first control retransmission timeout.
    pub tls_timeout: Duration,
    /// `--reneg-sec` (`None` = 0 = disabled).
    pub reneg_sec: Option<Duration>,
    /// `--reneg-bytes`.
    pub reneg_bytes: Option<u64>,
    /// `--reneg-pkts`.
    pub reneg_pkts: Option<u64>,
    /// `--transition-window`: lifetime of a lame-duck key.
    pub transition_window: Duration,
    /// `--ping` (client: a pushed value wins).
    pub ping: Option<Duration>,
    /// `--ping-restart` (client: a pushed value wins).
    pub ping_restart: Option<Duration>,
    /// `--ping-exit`.
    pub ping_exit: Option<Duration>,
    /// `--inactive`.
    pub inactive: Option<Duration>,
    /// `--data-ciphers`.
    pub data_ciphers: CipherList,
    /// `--data-ciphers-fallback`.
    pub data_ciphers_fallback: Option<String>,
    /// `--auth` digest for CBC data ciphers.
    pub auth_digest: Digest,
    /// Largest control packet we send (2.6's tls_mtu, 1250).
    pub tls_mtu: usize,
    /// `--replay-window`.
    pub replay: ReplayConfig,
    /// `comp-lzo` / `compress` / `allow-compression` as 2.6 resolved them
    /// (a client applies a pushed compression on top).
    pub compress: CompressOptions,
    /// `fragment N [mtu]` (UDP only): cut data-channel plaintexts into pieces.
    pub fragment: Option<FragmentConfig>,
    /// `--tun-mtu` (server: pushed when the client sent IV_MTU ≥ it).
    pub tun_mtu: u16,
    /// Our OCC options string for key-method 2.
    pub options_string: OptionsString,
    /// Announce (client) / push (server) `dyn-tls-crypt`.
    pub dyn_tls_crypt: bool,
    /// Client `--explicit-exit-notify N` (seconds of OCC_EXIT; `None` = off).
    pub explicit_exit_notify: Option<u32>,
    /// Client `--auth-user-pass` credentials.
    pub auth_user_pass: Option<(String, String)>,
    /// Client peer-info (IV_*); IV_PROTO gets DYN_TLS_CRYPT added when enabled.
    pub peer_info: PeerInfo,
    /// Client tls-crypt-v2: announce early negotiation (replay ids from
    /// 0x0F000000) as 2.6 does; off behaves like a 2.5 client, which a
    /// server must handle statefully.
    pub v2_early_negotiation: bool,
    /// Client `pull-filter` / `route-nopull`.
    pub pull_filter: PullFilter,
}

impl SessionConfig {
    /// OpenVPN 2.6 defaults for `role` over UDP.
    pub fn new(role: Role, tls: Arc<TlsContext>, wrap: WrapConfig) -> Self {
        let tls_role = match role {
            Role::Client => TlsRole::Client,
            Role::Server => TlsRole::Server,
        };
        let ciphers = CipherList::parse(ncp::DEFAULT_DATA_CIPHERS);
        let names: Vec<&str> = ciphers.names().iter().map(String::as_str).collect();
        Self {
            role,
            tls,
            wrap,
            transport: Transport::Udp,
            hand_window: DEFAULT_HAND_WINDOW,
            tls_timeout: DEFAULT_TLS_TIMEOUT,
            reneg_sec: Some(DEFAULT_RENEG_SEC),
            reneg_bytes: None,
            reneg_pkts: None,
            transition_window: DEFAULT_TRANSITION_WINDOW,
            ping: None,
            ping_restart: None,
            ping_exit: None,
            inactive: None,
            peer_info: PeerInfo::ours(env!("CARGO_PKG_VERSION"), &names, 1500),
            data_ciphers: ciphers,
            data_ciphers_fallback: None,
            auth_digest: Digest::Sha1,
            tls_mtu: 1250,
            replay: ReplayConfig::default(),
            compress: CompressOptions::stub_only_default(),
            fragment: None,
            tun_mtu: 1500,
            options_string: OptionsString::default_udp(tls_role),
            dyn_tls_crypt: true,
            explicit_exit_notify: None,
            auth_user_pass: None,
            v2_early_negotiation: true,
            pull_filter: PullFilter::default(),
        }
    }
}
