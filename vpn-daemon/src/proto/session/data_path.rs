//! The session's thin wrappers over its data half: encrypt and decrypt
//! through the [`DataChannel`], then [`Session::absorb`] what it reports.

use std::time::Instant;

use super::{DataActivity, DataChannel, DataOutcome, Session, SessionError};
use crate::proto::error::{CryptoError, DropReason};

impl Session {
    /// The data half: keys, packet ids, replay windows, framing.
    ///
    /// The loop layer hands it to another owner (a per-core worker) along
    /// this seam: read its sizes here, and see [`Self::data_channel_mut`].
    pub fn data_channel(&self) -> &DataChannel {
        &self.data
    }

    /// The data half, for an owner that encrypts and decrypts without the
    /// session's wrappers. The session installs and retires keys in it
    /// (reported as [`Event::KeysReady`](crate::proto::event::Event::KeysReady) /
    /// [`Event::Renegotiated`](crate::proto::event::Event::Renegotiated); the lame
    /// duck goes at [`Self::lame_duck_key_id`] turning `None`), so a worker
    /// holding a copy must follow those events. Whoever drives it must pass
    /// [`DataChannel::take_activity`] to [`Self::absorb`] before the next
    /// [`Self::poll_timeout`], or the keepalive, inactivity and rekey timers
    /// run as if no data had moved.
    pub fn data_channel_mut(&mut self) -> &mut DataChannel {
        &mut self.data
    }

    /// Take in what the data half did: restart the `--ping`,
    /// `--ping-restart` / `--ping-exit` and `--inactive` timers, start the
    /// peer's teardown after OCC_EXIT, and schedule a renegotiation when a
    /// rekey is due, exactly as the session's own `encrypt` / `decrypt` do.
    pub fn absorb(&mut self, a: DataActivity) {
        if let Some(t) = a.last_tx {
            self.link_sent(t);
        }
        if let Some(t) = a.last_rx {
            self.link_received(t);
        }
        if let Some(t) = a.last_tun {
            self.tun_traffic(t);
        }
        if let Some(t) = a.peer_exit {
            self.peer_leaving(t);
        }
        if let Some(t) = a.rekey_due {
            self.want_renegotiation(t);
        }
    }

    pub(super) fn absorb_data(&mut self) {
        let a = self.data.take_activity();
        if !a.is_empty() {
            self.absorb(a);
        }
    }

    /// Encrypt one tun packet into `dst` with the current send key.
    ///
    /// `dst` must hold [`DataChannel::seal_buffer_len`] bytes; a smaller one
    /// is [`CryptoError::BufferTooSmall`], never a panic.
    pub fn encrypt<'d>(
        &mut self,
        now: Instant,
        plaintext: &[u8],
        dst: &'d mut [u8],
    ) -> Result<&'d [u8], SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        if self.data.send_key_id().is_none() {
            return Err(SessionError::NoKey);
        }
        let len = self
            .data
            .encrypt(now, plaintext, dst)
            .map(|s| s.packet.len());
        self.absorb_data();
        let len = len?;
        let dst: &'d [u8] = dst;
        dst.get(..len)
            .ok_or(SessionError::Crypto(CryptoError::Truncated))
    }

    /// `fragment`: encrypt the next piece of the packet the last
    /// [`Self::encrypt`] cut up into `dst`; `None` when all were sent.
    /// Callers loop on it right after `encrypt` (2.6 `check_fragment`).
    pub fn encrypt_pending<'d>(
        &mut self,
        now: Instant,
        dst: &'d mut [u8],
    ) -> Option<Result<&'d [u8], SessionError>> {
        if self.closed {
            return None;
        }
        let len = self.data.encrypt_pending(now, dst)?.map(|s| s.packet.len());
        self.absorb_data();
        let len = match len {
            Ok(n) => n,
            Err(e) => return Some(Err(e.into())),
        };
        let dst: &'d [u8] = dst;
        Some(
            dst.get(..len)
                .ok_or(SessionError::Crypto(CryptoError::Truncated)),
        )
    }

    /// Authenticate and decrypt one data packet of this peer into `dst`.
    /// Pings restart `--ping-restart` and are consumed here; OCC_EXIT
    /// starts the peer's teardown. Drops are counted and returned.
    pub fn decrypt<'d>(
        &mut self,
        now: Instant,
        packet: &[u8],
        dst: &'d mut [u8],
    ) -> Result<DataOutcome<'d>, DropReason> {
        let out = self.data.decrypt(now, packet, dst);
        self.absorb_data();
        if let Err(r) = out {
            self.drops.count(r);
        }
        out
    }
}
