//! `TlsSession`: one key state's TLS over the in-memory pipe the control
//! channel feeds, with the verify callback that applies [`super::verify`].

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use openssl::ssl::{ErrorCode, Ssl, SslStream};
use openssl::x509::{X509, X509Ref};

use super::context::TlsContext;
use super::verify::common_name;
use super::verify::{VerifySlot, check_leaf, map_verify_error, record};
use super::*;

/// Largest plaintext record we read in one go (TLS maximum fragment).
pub(super) const MAX_RECORD: usize = 16 * 1024;

// ERR_LIB_SSL and SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE: a server with
// `verify-client-cert require` fails this way, not through the verify callback.
pub(super) const ERR_LIB_SSL: i32 = 20;
pub(super) const SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE: i32 = 199;

/// In-memory duplex under `SslStream`: reads what the reliability layer
/// delivered, collects what TLS wants to send.
#[derive(Debug, Default)]
pub(super) struct MemPipe {
    incoming: Vec<u8>,
    outgoing: Vec<u8>,
}

impl Read for MemPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.incoming.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.incoming.len());
        buf[..n].copy_from_slice(&self.incoming[..n]);
        self.incoming.drain(..n);
        Ok(n)
    }
}

impl Write for MemPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One TLS session (one key state) over memory buffers.
pub struct TlsSession {
    pub(super) stream: SslStream<MemPipe>,
    pub(super) verify: VerifySlot,
    pub(super) handshake_done: bool,
    /// Plaintext written before the handshake finished, one record each.
    pub(super) pending_writes: Vec<Vec<u8>>,
    /// Plaintext records read and not yet polled.
    pub(super) records: std::collections::VecDeque<Vec<u8>>,
    /// Reused for every `SSL_read` (one record at most per read).
    pub(super) read_buf: Box<[u8]>,
    pub(super) closed: bool,
    /// A fatal error happened; OpenSSL must not be driven again.
    pub(super) failed: bool,
    /// `x509-username-field` (empty: the CN).
    pub(super) username_fields: Vec<String>,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshake_done", &self.handshake_done)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl TlsSession {
    /// Start a session. A client produces its ClientHello at once
    /// (drain it with [`Self::poll_ciphertext`]).
    pub fn new(ctx: &TlsContext) -> Result<Self, TlsError> {
        let mut ssl = Ssl::new(&ctx.ctx)?;
        if let Some(t) = ctx.verify_time {
            ssl.param_mut().set_time(t as _);
        }
        let verify: VerifySlot = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&verify);
        let checks = Arc::clone(&ctx.checks);
        let verify_time = ctx.verify_time;
        let role = ctx.role;
        ssl.set_verify_callback(ctx.verify_mode, move |preverify_ok, x509| {
            let depth = x509.error_depth();
            if !preverify_ok && !checks.fingerprint_only {
                let err = x509.error();
                record(
                    &slot,
                    map_verify_error(err.as_raw(), depth, err.error_string(), role),
                );
                return false;
            }
            if let Some(cert) = x509.current_cert()
                && let Err(e) = checks.extra.check(cert, depth)
            {
                record(&slot, CertRejection::Extra(e));
                return false;
            }
            if depth == 0
                && let Err(r) = check_leaf(&checks, verify_time, x509)
            {
                record(&slot, r);
                return false;
            }
            true
        });
        match ctx.role {
            TlsRole::Client => ssl.set_connect_state(),
            TlsRole::Server => ssl.set_accept_state(),
        }
        let stream = SslStream::new(ssl, MemPipe::default())?;
        let mut s = Self {
            stream,
            verify,
            handshake_done: false,
            pending_writes: Vec::new(),
            records: Default::default(),
            read_buf: vec![0u8; MAX_RECORD].into_boxed_slice(),
            closed: false,
            failed: false,
            username_fields: ctx.checks.extra.username_fields.clone(),
        };
        if ctx.role == TlsRole::Client {
            s.drive()?;
        }
        Ok(s)
    }

    /// Whether the handshake has completed.
    pub fn is_handshake_complete(&self) -> bool {
        self.handshake_done
    }

    /// Feed in-order TLS bytes received from the peer and advance the handshake
    /// and record reading.
    ///
    /// On error the session is dead; [`Self::poll_ciphertext`] may still
    /// hold an alert worth sending.
    pub fn handle_ciphertext(&mut self, bytes: &[u8]) -> Result<(), TlsError> {
        self.stream.get_mut().incoming.extend_from_slice(bytes);
        self.drive()
    }

    fn failure(&self, e: &openssl::ssl::Error) -> TlsError {
        if let Ok(mut g) = self.verify.lock()
            && let Some(r) = g.take()
        {
            return TlsError::PeerCertRejected(r);
        }
        let no_peer_cert = e.ssl_error().is_some_and(|stack| {
            stack.errors().iter().any(|x| {
                x.library_code() == ERR_LIB_SSL
                    && x.reason_code() == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE
            })
        });
        if no_peer_cert {
            return TlsError::PeerCertRejected(CertRejection::NoCertificate);
        }
        TlsError::Protocol {
            message: e.to_string(),
        }
    }

    fn drive(&mut self) -> Result<(), TlsError> {
        let r = self.drive_inner();
        if matches!(
            r,
            Err(TlsError::PeerCertRejected(_) | TlsError::Protocol { .. })
        ) {
            self.failed = true;
        }
        r
    }

    fn drive_inner(&mut self) -> Result<(), TlsError> {
        if self.closed {
            return Err(TlsError::Closed);
        }
        if self.failed {
            return Err(TlsError::Failed);
        }
        if !self.handshake_done {
            match self.stream.do_handshake() {
                Ok(()) => {
                    self.handshake_done = true;
                    for msg in std::mem::take(&mut self.pending_writes) {
                        self.write_record(&msg)?;
                    }
                }
                Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => {
                    return Ok(());
                }
                Err(e) => return Err(self.failure(&e)),
            }
        }
        loop {
            match self.stream.ssl_read(&mut self.read_buf) {
                Ok(0) => break,
                Ok(n) => {
                    let record = self.read_buf.get(..n).unwrap_or_default().to_vec();
                    self.records.push_back(record);
                }
                Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => {
                    break;
                }
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                    self.closed = true;
                    return Err(TlsError::Closed);
                }
                Err(e) => return Err(self.failure(&e)),
            }
        }
        Ok(())
    }

    fn write_record(&mut self, msg: &[u8]) -> Result<(), TlsError> {
        let mut off = 0;
        while off < msg.len() {
            match self.stream.ssl_write(&msg[off..]) {
                Ok(n) => off += n,
                Err(e) => return Err(self.failure(&e)),
            }
        }
        Ok(())
    }

    /// Write one plaintext message as one TLS record (OpenSSL splits
    /// anything above 16 KiB; control messages stay far below).
    ///
    /// Before the handshake finishes the message is held and written as soon
    /// as it does (the client sends key-method 2 this way, doc §4.4).
    pub fn write_plaintext(&mut self, msg: &[u8]) -> Result<(), TlsError> {
        if self.closed {
            return Err(TlsError::Closed);
        }
        if self.failed {
            return Err(TlsError::Failed);
        }
        if !self.handshake_done {
            self.pending_writes.push(msg.to_vec());
            return Ok(());
        }
        self.write_record(msg)
    }

    /// The next plaintext record received, in order.
    #[must_use]
    pub fn poll_plaintext(&mut self) -> Option<Vec<u8>> {
        self.records.pop_front()
    }

    /// Up to `max` bytes of TLS ciphertext to send (one P_CONTROL_V1
    /// payload); `None` when nothing is waiting.
    #[must_use]
    pub fn poll_ciphertext(&mut self, max: usize) -> Option<Vec<u8>> {
        let out = &mut self.stream.get_mut().outgoing;
        if out.is_empty() || max == 0 {
            return None;
        }
        let n = max.min(out.len());
        Some(out.drain(..n).collect())
    }

    /// Bytes of ciphertext waiting to be sent.
    pub fn pending_ciphertext(&self) -> usize {
        self.stream.get_ref().outgoing.len()
    }

    /// RFC 5705 / 8446 exporter with **no** context, as OpenVPN calls it.
    pub fn export_keying_material(&self, label: &str) -> Result<[u8; EKM_LEN], TlsError> {
        if !self.handshake_done {
            return Err(TlsError::HandshakeIncomplete);
        }
        let mut out = [0u8; EKM_LEN];
        self.stream
            .ssl()
            .export_keying_material(&mut out, label, None)?;
        Ok(out)
    }

    /// The peer's leaf certificate, once received.
    pub fn peer_certificate(&self) -> Option<X509> {
        self.stream.ssl().peer_certificate()
    }

    /// The peer's verified chain, leaf first (depth 0), for the
    /// certificate variables of scripts and plugins; only the leaf when
    /// OpenSSL kept no chain.
    pub fn peer_chain(&self) -> Vec<X509> {
        match self.stream.ssl().verified_chain() {
            Some(c) if !c.is_empty() => c.iter().map(X509Ref::to_owned).collect(),
            _ => self.peer_certificate().into_iter().collect(),
        }
    }

    /// The common name of the peer's certificate (for
    /// `username-as-common-name`, status and logs).
    pub fn peer_common_name(&self) -> Option<String> {
        let c = self.peer_certificate()?;
        if self.username_fields.is_empty() {
            return common_name(c.subject_name());
        }
        crate::proto::cert_checks::username(&c, &self.username_fields).ok()
    }

    /// The negotiated protocol, e.g. "TLSv1.3".
    pub fn protocol_version(&self) -> &'static str {
        self.stream.ssl().version_str()
    }

    /// The negotiated cipher suite name.
    pub fn cipher_name(&self) -> Option<&'static str> {
        self.stream.ssl().current_cipher().map(|c| c.name())
    }
}
