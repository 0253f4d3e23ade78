//! Packet captures for the end-to-end tests: `tcpdump` started inside a
//! namespace (ready before the test sends anything, bounded by a packet
//! count) and the UDP datagrams read back from its pcap file.
//!
//! Captures are taken where the packets are still ordinary skbs: frames
//! an XDP program redirects to AF_XDP never reach a packet socket on the
//! receiving side, so the tests capture on the sender's side.

use std::{
    fs::File,
    net::{Ipv4Addr, SocketAddrV4},
    path::{Path, PathBuf},
    time::Duration,
};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcap::PcapReader;

use crate::{Netns, NsProcess};

/// One UDP/IPv4 datagram read from a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// A running `tcpdump` writing to a pcap file; stopped on drop.
pub struct Capture {
    proc: NsProcess,
    /// The pcap file.
    pub file: PathBuf,
    log: PathBuf,
}

impl Capture {
    /// Captures at most `count` packets on `iface` in `ns` that match the
    /// pcap `filter`, whole packets, into `dir/<name>.pcap`. Returns once
    /// tcpdump listens (panics after 10 s).
    pub fn start(
        ns: &Netns,
        iface: &str,
        filter: &str,
        count: u32,
        dir: &Path,
        name: &str,
    ) -> Self {
        let file = dir.join(format!("{name}.pcap"));
        let log = dir.join(format!("{name}.tcpdump.log"));
        let file_arg = file.display().to_string();
        let count_arg = count.to_string();
        // -U: write each packet at once, so the file is complete when the
        // test reads it; -Z root: no privilege drop that could not write
        // into the test's directory; -n: no name lookups.
        let args = [
            "-i", iface, "-n", "-U", "-Z", "root", "-s", "0", "-c", &count_arg, "-w", &file_arg,
            filter,
        ];
        let proc = NsProcess::spawn(ns, Path::new("tcpdump"), &args, &log);
        let cap = Self { proc, file, log };
        let end = vpn_daemon::io::clock::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&cap.log).unwrap_or_default();
            if text.contains("listening on") {
                return cap;
            }
            assert!(
                vpn_daemon::io::clock::now() < end,
                "tcpdump did not start listening on {iface}: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops tcpdump (it flushes on SIGTERM) and returns the UDP/IPv4
    /// datagrams it captured, in order.
    pub fn finish(mut self) -> Vec<Datagram> {
        if self.proc.try_exit().is_none() {
            self.proc
                .signal_and_wait(libc::SIGTERM, Duration::from_secs(5));
        }
        read_udp(&self.file)
    }
}

/// The UDP/IPv4 datagrams of an Ethernet pcap file (other packets skipped).
pub fn read_udp(path: &Path) -> Vec<Datagram> {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut reader =
        PcapReader::new(file).unwrap_or_else(|e| panic!("pcap header of {}: {e}", path.display()));
    let mut out = Vec::new();
    while let Some(pkt) = reader.next_packet() {
        // tcpdump killed mid-write can leave a truncated last record.
        let Ok(pkt) = pkt else { break };
        let Ok(sliced) = SlicedPacket::from_ethernet(&pkt.data) else {
            continue;
        };
        let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Udp(udp))) =
            (&sliced.net, &sliced.transport)
        else {
            continue;
        };
        let h = ip.header();
        out.push(Datagram {
            src: SocketAddrV4::new(Ipv4Addr::from(h.source()), udp.source_port()),
            dst: SocketAddrV4::new(Ipv4Addr::from(h.destination()), udp.destination_port()),
            payload: udp.payload().to_vec(),
        });
    }
    out
}
