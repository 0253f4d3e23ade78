//! The server loop both transports share (OpenVPN's `tunnel_server_udp`
//! and `tunnel_server_tcp` are one loop over a different link): drain the
//! clients that have output, flush link and tun, then wait for whichever
//! comes first of an [`Input`], the link, the tun device, the next
//! scheduled client, or the periodic files. What differs by transport is
//! behind [`ServerLink`].

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::config::Config;
use crate::error::DaemonError;
use crate::host::process::Signal;
use crate::host::server_tun::ServerTun;
use crate::io::clock;
use crate::io::internal::tun::TunTxBatch;
use crate::io::wait::sleep_until;
use crate::mgmt::status::XdpCounters;
use crate::server::peers::PeerId;
use crate::tunnel::Outcome;
use crate::tunnel::input::{Input, Inputs};
use crate::tunnel::multi::Multi;
use crate::tunnel::output::LinkOut;

/// A transport as the server loop sees it.
pub(super) trait ServerLink {
    /// What [`Self::wait`] reports.
    type Event;
    /// The output data and control packets take.
    type Out<'a>: LinkOut
    where
        Self: 'a;

    /// The output for this iteration.
    fn out(&mut self) -> Self::Out<'_>;
    /// Waits for the link (cancel-safe: used in `select!`).
    async fn wait(&mut self) -> Self::Event;
    /// Takes what [`Self::wait`] reported; clients with new output go in
    /// `dirty`.
    fn handle(
        &mut self,
        ev: Self::Event,
        multi: &mut Multi,
        ttx: &mut TunTxBatch,
        dirty: &mut BTreeSet<PeerId>,
    );
    /// Client `id` at `addr` was removed while its output was drained.
    fn gone(&mut self, addr: SocketAddr);
    /// After the clients' output was drained: steering changes, then
    /// everything queued goes out.
    async fn flush(&mut self, multi: &mut Multi);
    /// Shutdown: the goodbye messages go out, in bounded time.
    async fn flush_goodbyes(&mut self);
    /// The fast path's counters for the status file, when it runs.
    fn xdp_counters(&self) -> Option<XdpCounters>;
    /// SIGUSR2's statistics line.
    fn log_statistics(&self, multi: &Multi);
}

/// What one [`Input`] means for the server loop: `Some` ends it.
fn on_input<L: ServerLink>(
    input: Input,
    multi: &mut Multi,
    link: &L,
    dirty: &mut BTreeSet<PeerId>,
) -> Option<Outcome> {
    match input {
        Input::Signal(Signal::Term) => return Some(Outcome::Exit(0)),
        Input::Signal(Signal::Hup | Signal::Usr1) => return Some(Outcome::Reload),
        Input::Signal(Signal::Usr2) => link.log_statistics(multi),
        Input::Auth(r) => {
            if let Some(id) = multi.auth_done(*r) {
                dirty.insert(id);
            }
        }
        Input::Mgmt { command, reply } => {
            let _ = reply.send(crate::tunnel::status::mgmt_reply(multi, &command, dirty));
        }
    }
    None
}

/// Runs the server over `link` until a signal ends it; then says goodbye
/// to every client and takes the tun device down.
pub(super) async fn serve<L: ServerLink>(
    cfg: &Config,
    inputs: &mut Inputs,
    mut multi: Multi,
    st: ServerTun,
    mut link: L,
) -> Result<Outcome, DaemonError> {
    let q = st.queue.clone();
    let mtu = st.setup.mtu;
    let mut trx = q.rx_batch(64, 0, mtu);
    let mut ttx = q.tx_batch(64);
    let mut status = crate::tunnel::schedule::status_interval(cfg);
    let mut persist = crate::tunnel::schedule::persist_interval(cfg);
    let mut dirty: BTreeSet<PeerId> = BTreeSet::new();
    let outcome = loop {
        for id in std::mem::take(&mut dirty) {
            let addr = multi.peers.get(id).map(|p| p.transport());
            if !multi.drain(id, &mut link.out())
                && let Some(a) = addr
            {
                link.gone(a);
            }
        }
        link.flush(&mut multi).await;
        if !ttx.is_empty()
            && let Err(e) = q.send_batch(&mut ttx).await
        {
            return Err(DaemonError::io("tun write", e));
        }
        let sleep = sleep_until(multi.next_timeout());
        tokio::select! {
            i = inputs.recv() => {
                if let Some(o) = on_input(i, &mut multi, &link, &mut dirty) {
                    break o;
                }
            }
            ev = link.wait() => link.handle(ev, &mut multi, &mut ttx, &mut dirty),
            r = q.recv_batch(&mut trx) => {
                r.map_err(|e| DaemonError::io("tun read", e))?;
                let now = clock::now();
                let h = trx.headroom();
                let mut out = link.out();
                for (slot, len) in trx.iter_slots_mut() {
                    if let Some(p) = slot.get_mut(h..h + len) {
                        multi.tun_packet(p, now, &mut out);
                    }
                }
            }
            _ = sleep => {
                dirty.extend(multi.timeouts(clock::now(), clock::unix_time()));
            }
            _ = status.tick() => multi.write_status_with(link.xdp_counters()),
            _ = persist.tick() => multi.write_pool_persist(),
        }
    };
    tracing::info!(?outcome, "server shutting down");
    // explicit-exit-notify: RESTART to every client, then leave.
    let now = clock::now();
    for id in multi.close_all(now) {
        multi.drain(id, &mut link.out());
    }
    link.flush_goodbyes().await;
    multi.write_status_with(link.xdp_counters());
    multi.remove_all();
    multi.write_status_with(link.xdp_counters());
    multi.write_pool_persist();
    // Dropping the link detaches the fast path; its peers go with it.
    drop(link);
    st.shutdown(cfg).await;
    Ok(outcome)
}
