//! One control-channel protection for a session: none, tls-auth or tls-crypt,
//! with its replay sender and receive window ("tls_wrap" in OpenVPN).
//!
//! [`TlsWrap`] transforms between the plain layout of [`super::control`]
//! and what goes on the wire. [`TlsWrapCtx`] adds the long-form packet id
//! of section 3.4: a sender whose time is fixed at creation, and a
//! [`ReplayWindow`] that records an id only after the packet authenticated.

use super::tls_auth::TlsAuth;
use super::tls_crypt::TlsCrypt;
use crate::proto::error::CryptoError;
use crate::proto::replay::{PacketIdLong, PacketIdLongSender, ReplayConfig, ReplayWindow};

/// Control-channel protection mode.
#[derive(Debug)]
pub enum TlsWrap {
    /// No tls-auth / tls-crypt: packets go out in the plain layout.
    None,
    /// `--tls-auth`.
    Auth(TlsAuth),
    /// `--tls-crypt`, tls-crypt-v2 (with Kc), or the dynamic key.
    Crypt(TlsCrypt),
}

impl TlsWrap {
    /// Bytes added to a plain packet.
    pub fn overhead(&self) -> usize {
        match self {
            TlsWrap::None => 0,
            TlsWrap::Auth(a) => a.overhead(),
            TlsWrap::Crypt(c) => c.overhead(),
        }
    }

    /// Whether packets carry a replay field.
    pub fn has_replay(&self) -> bool {
        !matches!(self, TlsWrap::None)
    }

    /// Protect `plain` into `dst` with replay id `pid` (ignored for `None`).
    pub fn wrap<'d>(
        &mut self,
        plain: &[u8],
        pid: PacketIdLong,
        dst: &'d mut [u8],
    ) -> Result<&'d [u8], CryptoError> {
        match self {
            TlsWrap::None => {
                let have = dst.len();
                let out = dst
                    .get_mut(..plain.len())
                    .ok_or(CryptoError::BufferTooSmall {
                        need: plain.len(),
                        have,
                    })?;
                out.copy_from_slice(plain);
                Ok(out)
            }
            TlsWrap::Auth(a) => a.wrap(plain, pid, dst),
            TlsWrap::Crypt(c) => c.wrap(plain, pid, dst),
        }
    }

    /// Authenticate/decrypt into `dst`; returns the plain packet and, when
    /// the mode has one, the replay field (not yet checked).
    pub fn unwrap<'d>(
        &mut self,
        wire: &[u8],
        dst: &'d mut [u8],
    ) -> Result<(Option<PacketIdLong>, &'d [u8]), CryptoError> {
        match self {
            TlsWrap::None => {
                let have = dst.len();
                let out = dst
                    .get_mut(..wire.len())
                    .ok_or(CryptoError::BufferTooSmall {
                        need: wire.len(),
                        have,
                    })?;
                out.copy_from_slice(wire);
                Ok((None, out))
            }
            TlsWrap::Auth(a) => a.unwrap(wire, dst).map(|(p, b)| (Some(p), b)),
            TlsWrap::Crypt(c) => c.unwrap(wire, dst).map(|(p, b)| (Some(p), b)),
        }
    }
}

/// A [`TlsWrap`] with its replay state.
#[derive(Debug)]
pub struct TlsWrapCtx {
    /// The protection.
    pub wrap: TlsWrap,
    send: PacketIdLongSender,
    recv: ReplayWindow,
}

impl TlsWrapCtx {
    /// Context whose replay ids start at `start + 1` with time `unix_time`.
    pub fn new(wrap: TlsWrap, start: u32, unix_time: u32, replay: ReplayConfig) -> Self {
        Self {
            wrap,
            send: PacketIdLongSender::new(start, unix_time),
            recv: ReplayWindow::new(replay),
        }
    }

    /// The receive window.
    pub fn replay_window(&self) -> &ReplayWindow {
        &self.recv
    }

    /// Wrap with the next replay id.
    pub fn wrap_next<'d>(
        &mut self,
        plain: &[u8],
        dst: &'d mut [u8],
    ) -> Result<&'d [u8], CryptoError> {
        let pid = if self.wrap.has_replay() {
            self.send.next_id().ok_or(CryptoError::PacketIdExhausted)?
        } else {
            PacketIdLong { id: 0, time: 0 }
        };
        self.wrap.wrap(plain, pid, dst)
    }

    /// Unwrap, then check and record the replay id (after authentication).
    pub fn unwrap_checked<'d>(
        &mut self,
        wire: &[u8],
        dst: &'d mut [u8],
        now: u64,
    ) -> Result<&'d [u8], CryptoError> {
        let (pid, plain) = self.wrap.unwrap(wire, dst)?;
        if let Some(pid) = pid {
            self.recv.mark(pid, now).map_err(|_| CryptoError::Replay)?;
        }
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::keys::{Key2, Role};

    #[test]
    fn replayed_control_packet_is_rejected_after_authentication() {
        let key = Key2::generate().unwrap();
        let mut c = TlsWrapCtx::new(
            TlsWrap::Crypt(TlsCrypt::new(&key, Role::Client).unwrap()),
            0,
            100,
            ReplayConfig::default(),
        );
        let mut s = TlsWrapCtx::new(
            TlsWrap::Crypt(TlsCrypt::new(&key, Role::Server).unwrap()),
            0,
            100,
            ReplayConfig::default(),
        );
        let plain = [0x38, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0];
        let mut w = [0u8; 128];
        let wire = c.wrap_next(&plain, &mut w).unwrap().to_vec();
        let mut out = [0u8; 128];
        assert_eq!(s.unwrap_checked(&wire, &mut out, 0).unwrap(), &plain);
        assert_eq!(
            s.unwrap_checked(&wire, &mut out, 0).err(),
            Some(CryptoError::Replay)
        );
        let mut forged = wire.clone();
        forged[9 + 3] = 9; // replay id 9, tag no longer matches
        assert_eq!(
            s.unwrap_checked(&forged, &mut out, 0).err(),
            Some(CryptoError::BadTag)
        );
        assert_eq!(s.replay_window().highest(), 1);
    }

    #[test]
    fn plain_mode_passes_bytes_through() {
        let mut n = TlsWrapCtx::new(TlsWrap::None, 0, 0, ReplayConfig::default());
        let mut w = [0u8; 16];
        assert_eq!(n.wrap_next(&[1, 2, 3], &mut w).unwrap(), &[1, 2, 3]);
        let mut o = [0u8; 2];
        assert!(matches!(
            n.unwrap_checked(&[1, 2, 3], &mut o, 0),
            Err(CryptoError::BufferTooSmall { .. })
        ));
    }
}
