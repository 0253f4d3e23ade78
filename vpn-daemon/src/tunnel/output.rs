//! Where a loop's outgoing packets go: [`LinkOut`] is the one output
//! every part writes to (control packets, sealed data, cookie replies),
//! and [`FastOrSocket`] its UDP form: data packets through the XDP fast
//! path when it knows the way to the peer, everything else through the
//! socket's send batch.

use std::net::{IpAddr, SocketAddr};

use crate::io::external::udp::SendBatch;
use crate::io::xdp::fastpath::FastPath;

/// Where the server's outgoing packets go.
pub trait LinkOut {
    /// Sends a copy of `packet` to `to` (from `src` on a wildcard socket).
    fn send(&mut self, to: SocketAddr, src: Option<IpAddr>, packet: &[u8]);
    /// Sends a packet written by `fill` into at most `max` bytes.
    fn send_with(
        &mut self,
        to: SocketAddr,
        src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    );
    /// Sends a data packet written by `fill`; true when it left through
    /// the XDP fast path (counted per client), false for the socket.
    fn send_data(
        &mut self,
        to: SocketAddr,
        src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) -> bool {
        self.send_with(to, src, max, fill);
        false
    }
}
/// The UDP output: data packets through the fast path when it
/// knows the way to the peer, everything else through the UDP socket batch.
pub struct FastOrSocket<'a> {
    batch: &'a mut SendBatch,
    fast: Option<&'a mut FastPath>,
}

impl<'a> FastOrSocket<'a> {
    pub fn new(batch: &'a mut SendBatch, fast: &'a mut Option<FastPath>) -> Self {
        Self {
            batch,
            fast: fast.as_mut(),
        }
    }

    /// The same over a fast path the caller holds in another form (the
    /// client boxes its own).
    pub fn with_fast(batch: &'a mut SendBatch, fast: Option<&'a mut FastPath>) -> Self {
        Self { batch, fast }
    }
}

impl LinkOut for FastOrSocket<'_> {
    fn send(&mut self, to: SocketAddr, src: Option<IpAddr>, packet: &[u8]) {
        self.batch.push(to, src, packet);
    }
    fn send_with(
        &mut self,
        to: SocketAddr,
        src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) {
        self.batch.push_with(to, src, max, fill);
    }
    fn send_data(
        &mut self,
        to: SocketAddr,
        src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) -> bool {
        if let Some(f) = self.fast.as_deref_mut()
            && f.send_with(to, max, fill).is_some()
        {
            return true;
        }
        self.batch.push_with(to, src, max, fill);
        false
    }
}

/// A borrowed output is an output (the loop hands out `&mut` to its own).
impl<T: LinkOut + ?Sized> LinkOut for &mut T {
    fn send(&mut self, to: SocketAddr, src: Option<IpAddr>, packet: &[u8]) {
        (**self).send(to, src, packet);
    }
    fn send_with(
        &mut self,
        to: SocketAddr,
        src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) {
        (**self).send_with(to, src, max, fill);
    }
    fn send_data(
        &mut self,
        to: SocketAddr,
        src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) -> bool {
        (**self).send_data(to, src, max, fill)
    }
}
