//! One TCP connection of the server as its loop sees it: a reader task
//! feeding whole packets to the loop, a writer task draining a bounded
//! outbox. The data path allocates nothing once warm: packets travel
//! framed (`| len u16 BE | packet |`...) in buffers that change hands whole.
//!
//! ```text
//!  reader task ──Packets(buf)──> loop ──recycle(buf)──> reader task (spares)
//!  loop: push/push_with append to Conn.pending; hand_off() once per
//!        iteration swaps pending <-> Outbox.buf (or appends if busy)
//!  writer task: swaps Outbox.buf <-> its emptied batch, writes it, repeats
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, mpsc};

use crate::io::external::tcp::{TcpError, TcpLink, TcpLinkReader, TcpLinkWriter};
use crate::proto::wire::tcp::{LEN_PREFIX, push_record, push_record_with, records};

/// Largest framed bytes waiting for one connection's writer; beyond it
/// packets are dropped (the client is not reading: backpressure by loss,
/// as with a full UDP socket).
pub(crate) const OUTBOX_MAX: usize = 1 << 20;
/// Initial capacity of a batch buffer (one socket read, or a tun batch).
const BATCH_CAPACITY: usize = 64 * 1024;
/// Spare receive buffers a connection's reader keeps for reuse.
const READ_SPARES: usize = 16;

/// Appends `packet` with OpenVPN's 2-byte length prefix; false (nothing
/// appended) for an empty or over-65535-byte packet.
pub(crate) fn push_frame(buf: &mut Vec<u8>, packet: &[u8]) -> bool {
    push_record(buf, packet).is_ok()
}

/// The packets of a buffer filled by [`push_frame`].
pub(crate) fn frames(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    records(buf)
}

/// Framed packets on their way from the loop to a connection's writer
/// task. The loop hands over its whole batch by swapping buffers, the
/// writer takes it by swapping with its emptied one: three buffers
/// circulate and nothing is allocated once they have grown.
#[derive(Default)]
struct Outbox {
    buf: Mutex<Vec<u8>>,
    notify: Notify,
    /// Set by the loop when the connection goes: write what is left, FIN.
    closed: AtomicBool,
}

/// One connection as the loop sees it.
pub(crate) struct Conn {
    /// Framed packets queued during this loop iteration.
    pub(crate) pending: Vec<u8>,
    outbox: Arc<Outbox>,
    /// Where the loop returns the reader's emptied buffers.
    read_spares: mpsc::Sender<Vec<u8>>,
    /// Packets dropped because the writer fell behind.
    dropped: u64,
}

impl Conn {
    /// Splits `link` into a reader task (whole packets to `events`) and a
    /// writer task (draining the outbox).
    pub(crate) fn start(link: TcpLink, addr: SocketAddr, events: mpsc::Sender<ConnEvent>) -> Self {
        let (reader, writer) = link.split();
        let outbox = Arc::new(Outbox::default());
        let (spare_tx, spare_rx) = mpsc::channel(READ_SPARES);
        tokio::spawn(write_task(writer, outbox.clone()));
        tokio::spawn(read_task(reader, addr, events, spare_rx));
        Conn {
            pending: Vec::with_capacity(BATCH_CAPACITY),
            outbox,
            read_spares: spare_tx,
            dropped: 0,
        }
    }

    /// Queues a packet written by `fill` into at most `max` bytes.
    pub(crate) fn push_with(&mut self, max: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) {
        if self.pending.len() + LEN_PREFIX + max > OUTBOX_MAX
            || push_record_with(&mut self.pending, max, fill).is_err()
        {
            self.dropped += 1;
        }
    }

    /// Queues a copy of `packet`.
    pub(crate) fn push(&mut self, packet: &[u8]) {
        if self.pending.len() + LEN_PREFIX + packet.len() > OUTBOX_MAX
            || !push_frame(&mut self.pending, packet)
        {
            self.dropped += 1;
        }
    }

    /// Hands what this iteration queued to the writer task.
    pub(crate) fn hand_off(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        {
            let mut inbox = self
                .outbox
                .buf
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if inbox.is_empty() {
                std::mem::swap(&mut *inbox, &mut self.pending);
            } else if inbox.len() + self.pending.len() <= OUTBOX_MAX {
                // The writer is still busy with the previous batch.
                inbox.extend_from_slice(&self.pending);
            } else {
                self.dropped += frames(&self.pending).count() as u64;
                tracing::debug!(
                    dropped = self.dropped,
                    "TCP client not reading, packets dropped"
                );
            }
        }
        self.pending.clear();
        self.outbox.notify.notify_one();
    }

    /// Returns a buffer the reader task filled.
    pub(crate) fn recycle(&self, mut buf: Vec<u8>) {
        buf.clear();
        // A full spare queue frees it: the reader has enough.
        let _ = self.read_spares.try_send(buf);
    }

    /// Flushes what is queued, then lets the writer finish and close.
    pub(crate) fn close(mut self) {
        self.hand_off();
    }
}

impl Drop for Conn {
    /// The writer task writes what it has, sends FIN and ends.
    fn drop(&mut self) {
        self.outbox.closed.store(true, Ordering::Release);
        self.outbox.notify.notify_one();
    }
}

/// Writes the outbox's batches until the loop closes it or the stream fails.
async fn write_task(mut writer: TcpLinkWriter, outbox: Arc<Outbox>) {
    let mut batch: Vec<u8> = Vec::with_capacity(BATCH_CAPACITY);
    loop {
        outbox.notify.notified().await;
        loop {
            {
                let mut inbox = outbox.buf.lock().unwrap_or_else(PoisonError::into_inner);
                if inbox.is_empty() {
                    break;
                }
                std::mem::swap(&mut *inbox, &mut batch);
            }
            if let Err(e) = write_batch(&mut writer, &batch).await {
                tracing::debug!(error = %e, "TCP write");
                return;
            }
            batch.clear();
        }
        if outbox.closed.load(Ordering::Acquire) {
            let _ = writer.shutdown().await;
            return;
        }
    }
}

/// Queues every packet of `batch` on the stream and flushes.
async fn write_batch(writer: &mut TcpLinkWriter, batch: &[u8]) -> Result<(), TcpError> {
    for p in frames(batch) {
        match writer.queue(p) {
            Err(TcpError::QueueFull { .. }) => {
                writer.flush().await?;
                writer.queue(p)?;
            }
            r => r?,
        }
    }
    writer.flush().await
}

/// Reads whole packets into reused buffers and reports them to the loop.
async fn read_task(
    mut reader: TcpLinkReader,
    addr: SocketAddr,
    events: mpsc::Sender<ConnEvent>,
    mut spares: mpsc::Receiver<Vec<u8>>,
) {
    loop {
        let mut buf = spares
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH_CAPACITY));
        match reader
            .recv_with(|p| {
                push_frame(&mut buf, p);
            })
            .await
        {
            Ok(_) => {
                if events.send(ConnEvent::Packets(addr, buf)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, client = %addr, "TCP connection ended");
                let _ = events.send(ConnEvent::Closed(addr)).await;
                return;
            }
        }
    }
}

/// What the reader tasks report.
pub(crate) enum ConnEvent {
    /// Whole packets, framed as by [`push_frame`], in a buffer to return
    /// with [`Conn::recycle`].
    Packets(SocketAddr, Vec<u8>),
    Closed(SocketAddr),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::external::tcp::{self, TcpOptions, TcpServer};

    #[test]
    fn frames_round_trip_and_stop_at_a_torn_record() {
        let mut b = Vec::new();
        assert!(push_frame(&mut b, b"abc"));
        assert!(!push_frame(&mut b, b""), "empty records do not exist");
        assert!(push_frame(&mut b, &[7u8; 300]));
        assert!(!push_frame(&mut b, &vec![0u8; 70_000]));
        let got: Vec<usize> = frames(&b).map(<[u8]>::len).collect();
        assert_eq!(got, [3, 300]);
        b.extend_from_slice(&[0, 9, 1, 2]);
        assert_eq!(frames(&b).count(), 2, "a short last record is not a packet");
    }

    #[test]
    fn a_client_that_does_not_read_gets_drops_not_memory() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let opts = TcpOptions::default();
            let server = TcpServer::bind("127.0.0.1:0".parse().unwrap(), false, opts).unwrap();
            let addr = server.local_addr().unwrap();
            let (c, s) = tokio::join!(tcp::connect(addr, &opts), server.accept());
            let _client = c.unwrap();
            let (link, peer) = s.unwrap();
            let (ev_tx, _ev_rx) = mpsc::channel(16);
            let mut conn = Conn::start(link, peer, ev_tx);
            // Far more than socket buffers and the outbox hold, never read.
            let pkt = [1u8; 1400];
            for _ in 0..4 {
                for _ in 0..1000 {
                    conn.push(&pkt);
                }
                conn.hand_off();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert!(conn.dropped > 0);
            let queued = conn.outbox.buf.lock().unwrap().len();
            assert!(queued <= OUTBOX_MAX, "{queued}");
        });
    }
}
