//! The daemon's error type: everything that can stop a tunnel loop or its
//! set-up, with the failing step named.

use std::io;

use crate::io::external::tcp::TcpError;
use crate::io::external::udp::UdpError;
use crate::io::internal::tun::TunError;
use crate::io::route::RouteError;
use crate::proto::error::KeyFileError;
use crate::proto::session::SessionError;
use crate::proto::tls::TlsConfigError;

/// Why the daemon (or one of its set-up steps) failed.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A file or OS call failed; `what` names the step.
    #[error("{what}: {source}")]
    Io {
        /// The step (e.g. "reading ca /etc/openvpn/ca.crt").
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The configuration asks for something this daemon cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// A key file is unusable.
    #[error("{what}: {source}")]
    Key {
        /// Which key.
        what: &'static str,
        /// Why.
        #[source]
        source: KeyFileError,
    },
    /// OpenSSL refused the TLS configuration.
    #[error("TLS set-up: {0}")]
    Tls(#[from] TlsConfigError),
    /// A session could not be created.
    #[error("session: {0}")]
    Session(#[from] SessionError),
    /// A `plugin` could not be loaded or opened.
    #[error(transparent)]
    Plugin(#[from] crate::plugin::PluginError),
    /// The UDP socket.
    #[error(transparent)]
    Udp(#[from] UdpError),
    /// The TCP link.
    #[error(transparent)]
    Tcp(#[from] TcpError),
    /// The tun device.
    #[error("tun device: {0}")]
    Tun(#[from] TunError),
    /// Routes or addresses.
    #[error("routing: {0}")]
    Route(#[from] RouteError),
    /// `user`/`group` names an account the system does not have.
    #[error("{kind} '{name}' not found")]
    NoSuchAccount {
        /// "user" or "group".
        kind: &'static str,
        /// The name asked for.
        name: String,
    },
    /// A name or path the C library cannot take (it holds a NUL byte).
    #[error("bad {what} {name}")]
    BadName {
        /// What it names ("user name", "chroot dir").
        what: &'static str,
        /// The name as the message shows it.
        name: String,
    },
    /// An OpenSSL provider (`providers`) could not be loaded.
    #[error("failed loading provider '{name}'{}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Provider {
        /// The provider's name.
        name: String,
        /// OpenSSL's reason, when it gave one.
        detail: Option<String>,
    },
    /// A file or inline block was read but cannot be used.
    #[error("{what} {problem}")]
    Unusable {
        /// Which file ("auth-user-pass file", "inline pkcs12").
        what: String,
        /// What is wrong with it ("is not text").
        problem: &'static str,
    },
    /// The private key would not open with the `askpass` password.
    #[error("key: cannot decrypt the private key with the askpass password: {0}")]
    KeyDecrypt(#[source] openssl::error::ErrorStack),
    /// The decrypted private key could not be re-encoded for the TLS library.
    #[error("key: {0}")]
    KeyEncode(#[source] openssl::error::ErrorStack),
    /// The random number generator failed.
    #[error("{what}: {source}")]
    Random {
        /// What the randomness was for.
        what: &'static str,
        /// OpenSSL's error.
        #[source]
        source: openssl::error::ErrorStack,
    },
    /// The `ifconfig-pool` cannot be set up (the pool's own error: the
    /// pool is mode logic, a layer above this type).
    #[error("ifconfig-pool: {0}")]
    Pool(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The tun device came up without a queue to read.
    #[error("tun device without a queue")]
    NoTunQueue,
    /// `--genkey` cannot make what was asked (openvpn's message).
    #[error("{0}")]
    GenKey(&'static str),
    /// No `remote` could be resolved or reached.
    #[error("cannot resolve remote {host}:{port}: {detail}")]
    Resolve {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
        /// Resolver message.
        detail: String,
    },
}

impl DaemonError {
    /// An I/O error with the step that failed.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
