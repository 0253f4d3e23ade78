//! First contact on a UDP server: the stateless HMAC cookie of the 2.6
//! three-way handshake (doc §4.2), and the tls-crypt-v2 early negotiation
//! (§3.7, §4.3).
//!
//! ```text
//! client                                   server (no state)
//!   HARD_RESET_CLIENT_V2/V3 sid=C  ───────▶ cookie = MAC(bucket, ip, port, C)
//!                                  ◀─────── HARD_RESET_SERVER_V2 sid=cookie, ack [0] for C, replay #1
//!   P_CONTROL_V1/ACK_V1/WKC_V1 sid=C,
//!     ack [0] for sid=cookie, msg id ≤ 1 ───▶ cookie valid for bucket −2..+1 → Session created
//! ```
//!
//! [`StatelessResponder::handle_initial`] is the only thing that runs for a
//! packet from an unknown address. It creates **no per-peer state** before
//! the cookie checks out: a client reset only gets a freshly built answer
//! (so a retransmitted reset gets a fresh one too).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::proto::error::{DropReason, KeyFileError};
use crate::proto::keys::{Key2, Role};
use crate::proto::replay::PacketIdLong;
use crate::proto::session::{
    Session, SessionConfig, SessionError, WrapConfig, is_early_negotiation,
};
use crate::proto::wire::KeyId;
use crate::proto::wire::control::{AckBlock, ControlRepr, SessionId};
use crate::proto::wire::opcode::{Opcode, split_first_byte};
use crate::proto::wire::tls_crypt::{OpenedWkc, TlsCrypt};
use crate::proto::wire::tlv::{EARLY_NEG_FLAG_RESEND_WKC, EarlyNegotiation};
use crate::proto::wire::wrap::TlsWrap;

/// Bucket offsets accepted when verifying: two buckets back (2.6.16's
/// −2..0) plus one forward for a clock that ticked between answer and echo
/// on another core.
const ACCEPTED_OFFSETS: [i64; 4] = [0, -1, -2, 1];

/// Room for the stateless HARD_RESET_SERVER_V2: header, one ack with the
/// client's session id, message id and the early-negotiation TLV (32 bytes).
const ANSWER_MAX: usize = 64;

/// Process-random key and bucket length of the server cookie.
pub struct CookieKey {
    key: Zeroizing<[u8; 32]>,
    bucket_secs: u64,
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieKey")
            .field("bucket_secs", &self.bucket_secs)
            .finish_non_exhaustive()
    }
}

impl CookieKey {
    /// A random key; buckets are `(hand_window + 1) / 2` seconds long, as in 2.6.
    pub fn generate(hand_window: Duration) -> Result<Self, openssl::error::ErrorStack> {
        let mut key = [0u8; 32];
        openssl::rand::rand_bytes(&mut key)?;
        Ok(Self::from_bytes(key, hand_window))
    }

    /// A fixed key (tests).
    pub fn from_bytes(key: [u8; 32], hand_window: Duration) -> Self {
        Self {
            key: Zeroizing::new(key),
            bucket_secs: hand_window.as_secs().saturating_add(1).div_euclid(2).max(1),
        }
    }

    /// Length of one time bucket in seconds.
    pub fn bucket_secs(&self) -> u64 {
        self.bucket_secs
    }

    fn mac(&self, bucket: u64, addr: &SocketAddr, client_sid: &SessionId) -> SessionId {
        // HMAC accepts any key length: this cannot fail.
        let Ok(mut m) = <Hmac<Sha256> as Mac>::new_from_slice(&self.key[..]) else {
            return SessionId([0; 8]);
        };
        m.update(&(bucket as u32).to_be_bytes());
        match addr.ip().to_canonical() {
            std::net::IpAddr::V4(v4) => m.update(&v4.octets()),
            std::net::IpAddr::V6(v6) => m.update(&v6.octets()),
        }
        m.update(&addr.port().to_be_bytes());
        m.update(&client_sid.0);
        let out = m.finalize().into_bytes();
        let mut sid = [0u8; 8];
        sid.copy_from_slice(&out[..8]);
        SessionId(sid)
    }

    /// The server session id to answer `client_sid` from `addr` with at `unix_time`.
    pub fn cookie(&self, unix_time: u64, addr: &SocketAddr, client_sid: &SessionId) -> SessionId {
        self.mac(unix_time / self.bucket_secs, addr, client_sid)
    }

    /// Whether `cookie` was issued to (`addr`, `client_sid`) recently enough.
    pub fn verify(
        &self,
        unix_time: u64,
        addr: &SocketAddr,
        client_sid: &SessionId,
        cookie: &SessionId,
    ) -> bool {
        let now = (unix_time / self.bucket_secs) as i64;
        ACCEPTED_OFFSETS.iter().any(|off| {
            let b = now + off;
            b >= 0 && openssl::memcmp::eq(&self.mac(b as u64, addr, client_sid).0, &cookie.0)
        })
    }
}

/// What to do with a packet from an unknown address.
#[derive(Debug)]
pub enum FirstContact<'b> {
    /// Send these bytes (a stateless HARD_RESET_SERVER_V2) back; keep nothing.
    Reply(&'b [u8]),
    /// The cookie checked out: here is the new session, which has already
    /// processed this packet (drain its `poll_transmit`).
    Accept(Box<Session>),
    /// Drop the packet (count the reason).
    Drop(DropReason),
}

/// `--connect-freq-initial` default: stateless answers per window (2.6:
/// 100 per 10 s), so the server cannot be used to reflect much traffic.
pub const DEFAULT_CONNECT_FREQ_INITIAL: (u32, Duration) = (100, Duration::from_secs(10));

/// The UDP server's front door: answers client resets statelessly and
/// turns valid cookie echoes into [`Session`]s.
#[derive(Debug)]
pub struct StatelessResponder {
    cfg: Arc<SessionConfig>,
    cookie: CookieKey,
    /// tls-auth / tls-crypt / none; `None` for tls-crypt-v2 (per-client Kc).
    wrap: Option<TlsWrap>,
    /// Most stateless answers per window.
    freq: (u32, Duration),
    window_start: Option<Instant>,
    answered: u32,
    /// Reused for unwrapping packets, which come from anyone.
    scratch: Vec<u8>,
}

impl StatelessResponder {
    /// For a server configuration (`cfg.role` must be [`Role::Server`]).
    pub fn new(cfg: Arc<SessionConfig>, cookie: CookieKey) -> Result<Self, KeyFileError> {
        let wrap = cfg.wrap.build(Role::Server)?;
        Ok(Self {
            cfg,
            cookie,
            wrap,
            freq: DEFAULT_CONNECT_FREQ_INITIAL,
            window_start: None,
            answered: 0,
            scratch: Vec::new(),
        })
    }

    /// `--connect-freq-initial N SECS`: at most `n` stateless answers per `window`.
    pub fn set_connect_freq_initial(&mut self, n: u32, window: Duration) {
        self.freq = (n, window);
    }

    /// Count one stateless answer; false when the window's budget is spent.
    fn may_answer(&mut self, now: Instant) -> bool {
        let fresh = self
            .window_start
            .is_none_or(|s| now.saturating_duration_since(s) >= self.freq.1);
        if fresh {
            self.window_start = Some(now);
            self.answered = 0;
        }
        if self.answered >= self.freq.0 {
            return false;
        }
        self.answered += 1;
        true
    }

    /// The cookie key (tests).
    pub fn cookie_key(&self) -> &CookieKey {
        &self.cookie
    }

    /// Handle one packet from `from`, which has no session yet.
    pub fn handle_initial<'b>(
        &mut self,
        now: Instant,
        unix_time: u64,
        from: SocketAddr,
        packet: &[u8],
        reply: &'b mut [u8],
    ) -> FirstContact<'b> {
        match self.try_initial(now, unix_time, from, packet, reply) {
            Ok(Outcome::Reply(n)) => match reply.get(..n) {
                Some(r) => FirstContact::Reply(r),
                None => FirstContact::Drop(DropReason::Truncated),
            },
            Ok(Outcome::Accept(s)) => FirstContact::Accept(s),
            Err(r) => FirstContact::Drop(r),
        }
    }

    fn try_initial(
        &mut self,
        now: Instant,
        unix_time: u64,
        from: SocketAddr,
        packet: &[u8],
        reply: &mut [u8],
    ) -> Result<Outcome, DropReason> {
        let first = *packet.first().ok_or(DropReason::Truncated)?;
        let (op, kid) = split_first_byte(first).map_err(|e| e.drop_reason())?;
        if kid != KeyId::ZERO {
            return Err(DropReason::KeyIdMismatch);
        }
        // A buffer kept across packets: this path is what an
        // unauthenticated flood reaches, so it must not allocate.
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.resize(packet.len(), 0);
        let r = self
            .unwrap_initial(op, packet, &mut buf)
            .and_then(|opened| {
                let plain = buf.get(..opened.len).ok_or(DropReason::Truncated)?;
                let repr = ControlRepr::parse_bytes(plain).map_err(|e| e.drop_reason())?;
                match op {
                    Opcode::HardResetClientV2 | Opcode::HardResetClientV3 => {
                        self.answer_reset(now, unix_time, from, packet, &repr, opened, reply)
                    }
                    Opcode::ControlV1 | Opcode::AckV1 | Opcode::ControlWkcV1 => {
                        self.accept_echo(now, unix_time, from, packet, &repr, opened.v2)
                    }
                    _ => Err(DropReason::UnexpectedOpcode),
                }
            });
        self.scratch = buf;
        r
    }

    /// Authenticate a first-contact packet into `buf` (the replay check is
    /// skipped: nothing is kept to check against).
    fn unwrap_initial(
        &mut self,
        op: Opcode,
        packet: &[u8],
        buf: &mut [u8],
    ) -> Result<Unwrapped, DropReason> {
        match (&self.cfg.wrap, &mut self.wrap) {
            (WrapConfig::CryptV2Server { server_key }, _) => {
                if !op.carries_wkc() {
                    return Err(DropReason::UnexpectedOpcode);
                }
                let OpenedWkc {
                    wire,
                    kc,
                    mut crypt,
                } = server_key.open_wkc(packet)?;
                let (pid, plain) = crypt.unwrap(wire, buf).map_err(|e| e.drop_reason())?;
                Ok(Unwrapped {
                    pid: Some(pid),
                    len: plain.len(),
                    v2: Some((crypt, kc)),
                })
            }
            (_, Some(w)) => {
                if op.carries_wkc() {
                    return Err(DropReason::UnexpectedOpcode);
                }
                let (pid, plain) = w.unwrap(packet, buf).map_err(|e| e.drop_reason())?;
                Ok(Unwrapped {
                    pid,
                    len: plain.len(),
                    v2: None,
                })
            }
            (_, None) => Err(DropReason::CryptoBackend),
        }
    }

    /// A client reset: answer with a cookie and keep nothing (or, for a
    /// tls-crypt-v2 client that cannot resend WKc, start a stateful session).
    #[allow(clippy::too_many_arguments)]
    fn answer_reset(
        &mut self,
        now: Instant,
        unix_time: u64,
        from: SocketAddr,
        packet: &[u8],
        repr: &ControlRepr<'_>,
        opened: Unwrapped,
        reply: &mut [u8],
    ) -> Result<Outcome, DropReason> {
        if repr.message_id != Some(0) {
            return Err(DropReason::UnexpectedOpcode);
        }
        let early = opened.pid.is_some_and(is_early_negotiation);
        if opened.v2.is_some() && !early {
            // A tls-crypt-v2 client that cannot resend WKc: the
            // server must keep state from its reset on.
            return self.stateful_v2(now, unix_time, packet);
        }
        if !self.may_answer(now) {
            return Err(DropReason::RateLimited);
        }
        let cookie = self.cookie.cookie(unix_time, &from, &repr.session_id);
        let tlv = EarlyNegotiation {
            flags: if early && self.cfg.wrap.is_v2() {
                EARLY_NEG_FLAG_RESEND_WKC
            } else {
                0
            },
        };
        let mut payload = [0u8; 6];
        let plen = tlv.emit(&mut payload).map_err(|e| e.drop_reason())?;
        let answer = ControlRepr {
            opcode: Opcode::HardResetServerV2,
            key_id: KeyId::ZERO,
            session_id: cookie,
            acks: AckBlock::new(&[0], repr.session_id).map_err(|e| e.drop_reason())?,
            message_id: Some(0),
            payload: payload.get(..plen).unwrap_or_default(),
        };
        let mut out = [0u8; ANSWER_MAX];
        let out = out
            .get_mut(..answer.buffer_len())
            .ok_or(DropReason::Truncated)?;
        answer.emit(out).map_err(|e| e.drop_reason())?;
        let rpid = PacketIdLong {
            id: 1,
            time: unix_time as u32,
        };
        let n = match (opened.v2, &mut self.wrap) {
            (Some((mut crypt, _)), _) => crypt.wrap(out, rpid, reply),
            (None, Some(w)) => w.wrap(out, rpid, reply),
            (None, None) => return Err(DropReason::CryptoBackend),
        }
        .map_err(|e| e.drop_reason())?
        .len();
        Ok(Outcome::Reply(n))
    }

    /// A packet after our answer: if it echoes a valid cookie, the session
    /// starts here and processes it.
    fn accept_echo(
        &mut self,
        now: Instant,
        unix_time: u64,
        from: SocketAddr,
        packet: &[u8],
        repr: &ControlRepr<'_>,
        v2: Option<(TlsCrypt, Key2)>,
    ) -> Result<Outcome, DropReason> {
        let echoed = repr.acks.remote_session_id().ok_or(DropReason::BadCookie)?;
        if !self
            .cookie
            .verify(unix_time, &from, &repr.session_id, &echoed)
        {
            return Err(DropReason::BadCookie);
        }
        // 2.6.15+: only the packets right after the reset may open.
        if repr.acks.ids().iter().any(|&a| a > 1) || repr.message_id.is_some_and(|m| m > 1) {
            return Err(DropReason::BadCookie);
        }
        let (wrap, static_key) = match v2 {
            Some((crypt, kc)) => (TlsWrap::Crypt(crypt), Some(kc)),
            None => match self.cfg.wrap.build(Role::Server) {
                Ok(Some(w)) => (w, None),
                _ => return Err(DropReason::CryptoBackend),
            },
        };
        let mut s = Session::new_server_after_cookie(
            self.cfg.clone(),
            now,
            unix_time,
            echoed,
            repr.session_id,
            wrap,
            static_key,
        )
        .map_err(session_drop)?;
        s.handle_packet(now, unix_time, packet);
        Ok(Outcome::Accept(Box::new(s)))
    }

    fn stateful_v2(
        &self,
        now: Instant,
        unix_time: u64,
        packet: &[u8],
    ) -> Result<Outcome, DropReason> {
        // The session unwraps WKc itself and installs Kc once the reset
        // authenticates with it.
        let mut s =
            Session::new_server_stateful(self.cfg.clone(), now, unix_time).map_err(session_drop)?;
        s.handle_packet(now, unix_time, packet);
        Ok(Outcome::Accept(Box::new(s)))
    }
}

/// A first-contact packet after authentication.
struct Unwrapped {
    /// Its replay id (none without tls-auth / tls-crypt).
    pid: Option<PacketIdLong>,
    /// Plaintext length in the scratch buffer.
    len: usize,
    /// tls-crypt-v2: the client's tls-crypt context and Kc.
    v2: Option<(TlsCrypt, Key2)>,
}

enum Outcome {
    Reply(usize),
    Accept(Box<Session>),
}

fn session_drop(_: SessionError) -> DropReason {
    DropReason::CryptoBackend
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "192.0.2.7:51820".parse().unwrap()
    }

    #[test]
    fn cookie_verifies_in_recent_buckets_only() {
        let k = CookieKey::from_bytes([7; 32], Duration::from_secs(60));
        assert_eq!(k.bucket_secs(), 30);
        let sid = SessionId([1, 2, 3, 4, 5, 6, 7, 8]);
        // Start of a bucket: offsets 0, -1, -2 cover the next 90 s.
        let t = 30 * 33_333;
        let c = k.cookie(t, &addr(), &sid);
        for dt in [0, 29, 30, 59, 60, 89] {
            assert!(k.verify(t + dt, &addr(), &sid, &c), "+{dt}");
        }
        assert!(!k.verify(t + 90, &addr(), &sid, &c));
        // One bucket ahead is tolerated, two are not.
        assert!(k.verify(t - 1, &addr(), &sid, &c));
        assert!(!k.verify(t - 31, &addr(), &sid, &c));
    }

    #[test]
    fn cookie_binds_address_port_and_client_session() {
        let k = CookieKey::from_bytes([7; 32], Duration::from_secs(60));
        let sid = SessionId([1, 2, 3, 4, 5, 6, 7, 8]);
        let c = k.cookie(5000, &addr(), &sid);
        let other_port: SocketAddr = "192.0.2.7:51821".parse().unwrap();
        let other_ip: SocketAddr = "192.0.2.8:51820".parse().unwrap();
        assert!(!k.verify(5000, &other_port, &sid, &c));
        assert!(!k.verify(5000, &other_ip, &sid, &c));
        assert!(!k.verify(5000, &addr(), &SessionId([9; 8]), &c));
        let mapped: SocketAddr = "[::ffff:192.0.2.7]:51820".parse().unwrap();
        assert!(k.verify(5000, &mapped, &sid, &c));
        let other_key = CookieKey::from_bytes([8; 32], Duration::from_secs(60));
        assert!(!other_key.verify(5000, &addr(), &sid, &c));
    }
}
