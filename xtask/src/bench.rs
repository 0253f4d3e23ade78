//! `cargo xtask bench`: a benchmark (not a test) of our daemon against
//! stock openvpn 2.6 on the demo's topology. For each pair (server,
//! client) among openvpn↔openvpn, ours↔ours and the two mixed pairs, one
//! fresh lab: time from starting the client to the first echo reply
//! through the tunnel, ping RTT, then iperf3 TCP (one stream) and UDP
//! (unlimited rate) for a bounded time each, with the CPU seconds both
//! tunnel ends spent per GB moved (utime + stime from /proc/PID/stat).
//!
//! Then the fast-path table: ours↔ours with `xdp native`, `xdp generic`
//! and `xdp off` (plain sockets) against openvpn↔openvpn, each in a fresh
//! lab: TCP and UDP throughput, received packets per second at 64- and
//! 1400-byte UDP payloads, and the *server's* CPU per GB and per packet,
//! with ratios against openvpn. docs/bench.md explains how to read both.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{
    lab::{Impl, Lab, SERVER_TUN, build_daemon, first_packet, ns_output, ping_rtt_ms},
    setup,
    util::is_root,
};

/// One pair's measurements.
struct Row {
    server: Impl,
    client: Impl,
    first_packet_ms: f64,
    rtt_ms: f64,
    tcp_mbit: f64,
    tcp_cpu_per_gb: f64,
    udp_mbit: f64,
    udp_loss_pct: f64,
    udp_cpu_per_gb: f64,
}

/// One iperf3 run: goodput and bytes that arrived.
struct Iperf {
    mbit: f64,
    bytes: f64,
    loss_pct: f64,
}

/// One iperf3 UDP run at unlimited rate with `len`-byte datagrams: what
/// arrived, in bytes and in packets per second.
struct UdpRun {
    mbit: f64,
    bytes: f64,
    loss_pct: f64,
    rx_pps: f64,
    rx_packets: f64,
}

fn iperf_udp(ns: &str, seconds: u32, len: u32) -> Result<UdpRun> {
    let (t, l) = (seconds.to_string(), len.to_string());
    let args = ["-c", SERVER_TUN, "-t", &t, "-J", "-u", "-b", "0", "-l", &l];
    let out = ns_output(ns, "iperf3", &args)?;
    let v: Value = serde_json::from_str(&out).context("iperf3 -J output")?;
    let sum = &v["end"]["sum"];
    let bytes = sum["bytes"].as_f64().context("end.sum.bytes")?;
    let packets = sum["packets"].as_f64().context("end.sum.packets")?;
    let lost = sum["lost_packets"].as_f64().unwrap_or(0.0).max(0.0);
    let loss = sum["lost_percent"].as_f64().unwrap_or(0.0);
    let secs = sum["seconds"]
        .as_f64()
        .unwrap_or(f64::from(seconds))
        .max(1e-3);
    let got = bytes * (1.0 - loss / 100.0);
    let rx_packets = (packets - lost).max(0.0);
    Ok(UdpRun {
        mbit: got * 8.0 / secs / 1e6,
        bytes: got,
        loss_pct: loss,
        rx_pps: rx_packets / secs,
        rx_packets,
    })
}

fn iperf(ns: &str, seconds: u32, udp: bool) -> Result<Iperf> {
    let t = seconds.to_string();
    let mut args = vec!["-c", SERVER_TUN, "-t", &t, "-J"];
    if udp {
        // Unlimited rate, datagrams that fit the tunnel's MTU unfragmented.
        args.extend(["-u", "-b", "0", "-l", "1400"]);
    }
    let out = ns_output(ns, "iperf3", &args)?;
    let v: Value = serde_json::from_str(&out).context("iperf3 -J output")?;
    let end = &v["end"];
    if udp {
        let sum = &end["sum"];
        let bytes = sum["bytes"].as_f64().context("end.sum.bytes")?;
        let loss = sum["lost_percent"].as_f64().unwrap_or(0.0);
        let secs = sum["seconds"].as_f64().unwrap_or(f64::from(seconds));
        let got = bytes * (1.0 - loss / 100.0);
        Ok(Iperf {
            mbit: got * 8.0 / secs / 1e6,
            bytes: got,
            loss_pct: loss,
        })
    } else {
        let r = &end["sum_received"];
        Ok(Iperf {
            mbit: r["bits_per_second"]
                .as_f64()
                .context("sum_received.bits_per_second")?
                / 1e6,
            bytes: r["bytes"].as_f64().context("sum_received.bytes")?,
            loss_pct: 0.0,
        })
    }
}

fn cpu(lab: &mut Lab, idx: [usize; 2]) -> Result<f64> {
    let mut s = 0.0;
    for i in idx {
        s += lab.peer(i).cpu_seconds().context("read /proc/PID/stat")?;
    }
    Ok(s)
}

fn measure(server: Impl, client: Impl, seconds: u32, daemon: &std::path::Path) -> Result<Row> {
    let mut lab = Lab::new("vpnbench", 1)?;
    let (srv_ns, cli_ns) = (lab.server.clone(), lab.clients[0].clone());
    let srv = lab.start(server, &srv_ns, "server", &lab.server_config(), daemon)?;
    lab.peer(srv).wait_ready(Duration::from_secs(20))?;
    let started = Instant::now();
    let cli = lab.start(client, &cli_ns, "client", &lab.client_config(1), daemon)?;
    let first = first_packet(&cli_ns, SERVER_TUN, started, Duration::from_secs(30))?;
    lab.peer(cli).wait_ready(Duration::from_secs(10))?;
    let rtt_ms = ping_rtt_ms(&cli_ns, SERVER_TUN, 20)?;
    lab.start_iperf_server()?;
    let c0 = cpu(&mut lab, [srv, cli])?;
    let tcp = iperf(&cli_ns, seconds, false)?;
    let c1 = cpu(&mut lab, [srv, cli])?;
    let udp = iperf(&cli_ns, seconds, true)?;
    let c2 = cpu(&mut lab, [srv, cli])?;
    if tcp.bytes <= 0.0 || udp.bytes <= 0.0 {
        bail!(
            "no bytes moved through {}→{}",
            client.label(),
            server.label()
        );
    }
    Ok(Row {
        server,
        client,
        first_packet_ms: first.as_secs_f64() * 1e3,
        rtt_ms,
        tcp_mbit: tcp.mbit,
        tcp_cpu_per_gb: (c1 - c0) / (tcp.bytes / 1e9),
        udp_mbit: udp.mbit,
        udp_loss_pct: udp.loss_pct,
        udp_cpu_per_gb: (c2 - c1) / (udp.bytes / 1e9),
    })
}

pub(crate) fn run(seconds: u32, release: bool) -> Result<()> {
    if !is_root() {
        bail!("the bench creates network namespaces: run it as root");
    }
    let seconds = seconds.clamp(1, 60);
    setup::ensure()?;
    let daemon = build_daemon(release)?;
    let pairs = [
        (Impl::OpenVpn, Impl::OpenVpn),
        (Impl::Ours, Impl::Ours),
        (Impl::Ours, Impl::OpenVpn),
        (Impl::OpenVpn, Impl::Ours),
    ];
    let mut rows = Vec::new();
    for (s, c) in pairs {
        eprintln!(
            "== bench: server {} / client {} ({seconds} s per iperf3 run)",
            s.label(),
            c.label()
        );
        match measure(s, c, seconds, &daemon) {
            Ok(r) => rows.push(r),
            Err(e) => eprintln!("   failed: {e:#}"),
        }
    }
    println!(
        "\nUDP tunnel, tls-crypt, AES-256-GCM; iperf3 client → server, {seconds} s per run; daemon build: {}\n",
        if release { "release" } else { "debug" }
    );
    println!(
        "{:<8} {:<8} | {:>9} {:>9} | {:>9} {:>6} {:>9} | {:>8} {:>10}",
        "server",
        "client",
        "TCP Mb/s",
        "TCP s/GB",
        "UDP Mb/s",
        "loss%",
        "UDP s/GB",
        "RTT ms",
        "1st pkt ms"
    );
    for r in &rows {
        println!(
            "{:<8} {:<8} | {:>9.0} {:>9.2} | {:>9.0} {:>6.1} {:>9.2} | {:>8.3} {:>10.0}",
            r.server.label(),
            r.client.label(),
            r.tcp_mbit,
            r.tcp_cpu_per_gb,
            r.udp_mbit,
            r.udp_loss_pct,
            r.udp_cpu_per_gb,
            r.rtt_ms,
            r.first_packet_ms
        );
    }
    let find = |s, c| rows.iter().find(|r| r.server == s && r.client == c);
    if let (Some(o), Some(b)) = (
        find(Impl::Ours, Impl::Ours),
        find(Impl::OpenVpn, Impl::OpenVpn),
    ) {
        println!(
            "\nratios ours↔ours / openvpn↔openvpn (throughput: >1 is better; CPU, RTT, first packet: <1 is better)"
        );
        println!(
            "  TCP Mbit/s {:.2}  TCP CPU/GB {:.2}  UDP Mbit/s {:.2}  UDP CPU/GB {:.2}  RTT {:.2}  first packet {:.2}",
            o.tcp_mbit / b.tcp_mbit,
            o.tcp_cpu_per_gb / b.tcp_cpu_per_gb,
            o.udp_mbit / b.udp_mbit,
            o.udp_cpu_per_gb / b.udp_cpu_per_gb,
            o.rtt_ms / b.rtt_ms,
            o.first_packet_ms / b.first_packet_ms
        );
    }
    let fast_failed = fast_path_table(seconds, &daemon, release);
    if rows.len() < pairs.len() || fast_failed > 0 {
        bail!(
            "{} of {} pairs and {fast_failed} of {} fast-path variants failed (see above)",
            pairs.len() - rows.len(),
            pairs.len(),
            Variant::ALL.len()
        );
    }
    Ok(())
}

/// One column of the fast-path table: which data plane runs both ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    /// openvpn↔openvpn, the reference.
    OpenVpn,
    /// ours↔ours, `xdp native` on both ends.
    XdpNative,
    /// ours↔ours, `xdp generic` on both ends.
    XdpGeneric,
    /// ours↔ours, `xdp off`: the plain UDP socket path.
    Sockets,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::OpenVpn,
        Variant::XdpNative,
        Variant::XdpGeneric,
        Variant::Sockets,
    ];

    fn label(self) -> &'static str {
        match self {
            Variant::OpenVpn => "openvpn",
            Variant::XdpNative => "ours XDP native",
            Variant::XdpGeneric => "ours XDP generic",
            Variant::Sockets => "ours sockets",
        }
    }

    fn imp(self) -> Impl {
        match self {
            Variant::OpenVpn => Impl::OpenVpn,
            _ => Impl::Ours,
        }
    }

    /// Directives for our daemon attached to `iface`.
    fn directives(self, iface: &str) -> String {
        match self {
            Variant::OpenVpn => String::new(),
            Variant::XdpNative => format!("xdp native\nxdp-interface {iface}\n"),
            Variant::XdpGeneric => format!("xdp generic\nxdp-interface {iface}\n"),
            Variant::Sockets => "xdp off\n".into(),
        }
    }

    fn is_xdp(self) -> bool {
        matches!(self, Variant::XdpNative | Variant::XdpGeneric)
    }
}

/// One variant's measurements; CPU is the server process's unless said.
struct FastRow {
    variant: Variant,
    tcp_mbit: f64,
    tcp_srv_s_per_gb: f64,
    udp_mbit: f64,
    udp_loss_pct: f64,
    udp_srv_s_per_gb: f64,
    pps_1400: f64,
    srv_us_per_pkt_1400: f64,
    pps_64: f64,
    srv_us_per_pkt_64: f64,
    /// Every CPU of the machine (all processes, softirq included) per
    /// received 64-byte packet: where copy-mode AF_XDP's kernel work shows.
    all_us_per_pkt_64: f64,
    /// `XDP redirected` of the server's status file at the end (None when
    /// the row is not ours or the file has no such row).
    redirected: Option<u64>,
}

/// Busy CPU seconds of the whole machine so far (`/proc/stat`: every
/// field but idle and iowait).
fn machine_busy_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat").context("read /proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let idle = f.get(3).copied().unwrap_or(0.0) + f.get(4).copied().unwrap_or(0.0);
    // USER_HZ is 100 on every Linux the lab runs on (see lab::clk_tck).
    Ok((f.iter().sum::<f64>() - idle) / 100.0)
}

/// `GLOBAL_STATS,XDP redirected,N` of a version 2 status file.
fn status_redirected(path: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("GLOBAL_STATS,XDP redirected,"))
        .and_then(|n| n.trim().parse().ok())
}

fn measure_fast(variant: Variant, seconds: u32, daemon: &std::path::Path) -> Result<FastRow> {
    let mut lab = Lab::new("vpnfast", 1)?;
    let (srv_ns, cli_ns) = (lab.server.clone(), lab.clients[0].clone());
    // The lab's server end of client 1's veth is `s1`, the client's `eth0`.
    let srv_conf = lab.server_config() + &variant.directives("s1");
    let cli_conf = lab.client_config(1) + &variant.directives("eth0");
    let imp = variant.imp();
    let srv = lab.start(imp, &srv_ns, "server", &srv_conf, daemon)?;
    lab.peer(srv).wait_ready(Duration::from_secs(20))?;
    let cli = lab.start(imp, &cli_ns, "client", &cli_conf, daemon)?;
    lab.peer(cli).wait_ready(Duration::from_secs(30))?;
    first_packet(&cli_ns, SERVER_TUN, Instant::now(), Duration::from_secs(30))?;
    lab.start_iperf_server()?;
    let srv_cpu = |lab: &mut Lab| {
        lab.peer(srv)
            .cpu_seconds()
            .context("read the server's /proc/PID/stat")
    };
    let c0 = srv_cpu(&mut lab)?;
    let tcp = iperf(&cli_ns, seconds, false)?;
    let c1 = srv_cpu(&mut lab)?;
    let udp = iperf_udp(&cli_ns, seconds, 1400)?;
    let c2 = srv_cpu(&mut lab)?;
    let m2 = machine_busy_seconds()?;
    let small = iperf_udp(&cli_ns, seconds, 64)?;
    let c3 = srv_cpu(&mut lab)?;
    let m3 = machine_busy_seconds()?;
    if tcp.bytes <= 0.0 || udp.rx_packets <= 0.0 || small.rx_packets <= 0.0 {
        bail!("no traffic through {}", variant.label());
    }
    // The status file is rewritten every second.
    std::thread::sleep(Duration::from_millis(1500));
    let redirected = status_redirected(&lab.status_path());
    Ok(FastRow {
        variant,
        tcp_mbit: tcp.mbit,
        tcp_srv_s_per_gb: (c1 - c0) / (tcp.bytes / 1e9),
        udp_mbit: udp.mbit,
        udp_loss_pct: udp.loss_pct,
        udp_srv_s_per_gb: (c2 - c1) / (udp.bytes / 1e9),
        pps_1400: udp.rx_pps,
        srv_us_per_pkt_1400: (c2 - c1) * 1e6 / udp.rx_packets,
        pps_64: small.rx_pps,
        srv_us_per_pkt_64: (c3 - c2) * 1e6 / small.rx_packets,
        all_us_per_pkt_64: (m3 - m2) * 1e6 / small.rx_packets,
        redirected,
    })
}

/// Runs the fast-path variants and prints their table; the number that
/// failed.
fn fast_path_table(seconds: u32, daemon: &std::path::Path, release: bool) -> usize {
    let mut rows = Vec::new();
    for v in Variant::ALL {
        eprintln!(
            "== bench (fast path): {} ({seconds} s per iperf3 run)",
            v.label()
        );
        match measure_fast(v, seconds, daemon) {
            Ok(r) => rows.push(r),
            Err(e) => eprintln!("   failed: {e:#}"),
        }
    }
    println!(
        "\nFast path: both ends the same variant, UDP tunnel, tls-crypt, AES-256-GCM; iperf3 client → server, {seconds} s per run; daemon build: {}",
        if release { "release" } else { "debug" }
    );
    println!(
        "CPU columns: the server process (utime + stime) unless marked all-CPU (every process and softirq of the machine)\n"
    );
    println!(
        "{:<17} | {:>8} {:>8} | {:>8} {:>6} {:>8} | {:>9} {:>8} | {:>9} {:>8} {:>8} | {:>11}",
        "variant",
        "TCP Mb/s",
        "TCP s/GB",
        "UDP Mb/s",
        "loss%",
        "UDP s/GB",
        "1400B pps",
        "µs/pkt",
        "64B pps",
        "µs/pkt",
        "all µs/pkt",
        "XDP redir."
    );
    for r in &rows {
        let redir = match (r.variant.is_xdp(), r.redirected) {
            (false, _) => "-".to_string(),
            (true, Some(n)) if n > 0 => n.to_string(),
            (true, _) => "NONE (!)".to_string(),
        };
        println!(
            "{:<17} | {:>8.0} {:>8.2} | {:>8.0} {:>6.1} {:>8.2} | {:>9.0} {:>8.2} | {:>9.0} {:>8.2} {:>8.2} | {:>11}",
            r.variant.label(),
            r.tcp_mbit,
            r.tcp_srv_s_per_gb,
            r.udp_mbit,
            r.udp_loss_pct,
            r.udp_srv_s_per_gb,
            r.pps_1400,
            r.srv_us_per_pkt_1400,
            r.pps_64,
            r.srv_us_per_pkt_64,
            r.all_us_per_pkt_64,
            redir
        );
    }
    let find = |v| rows.iter().find(|r| r.variant == v);
    if let Some(b) = find(Variant::OpenVpn) {
        println!("\nratios vs openvpn (throughput and pps: >1 is better; CPU: <1 is better)");
        for r in rows.iter().filter(|r| r.variant != Variant::OpenVpn) {
            println!(
                "  {:<17} TCP {:.2}  UDP {:.2}  1400B pps {:.2}  64B pps {:.2}  srv TCP s/GB {:.2}  srv UDP s/GB {:.2}  srv µs/pkt 64B {:.2}  all-CPU µs/pkt 64B {:.2}",
                r.variant.label(),
                r.tcp_mbit / b.tcp_mbit,
                r.udp_mbit / b.udp_mbit,
                r.pps_1400 / b.pps_1400,
                r.pps_64 / b.pps_64,
                r.tcp_srv_s_per_gb / b.tcp_srv_s_per_gb,
                r.udp_srv_s_per_gb / b.udp_srv_s_per_gb,
                r.srv_us_per_pkt_64 / b.srv_us_per_pkt_64,
                r.all_us_per_pkt_64 / b.all_us_per_pkt_64
            );
        }
    }
    if let (Some(x), Some(s), Some(b)) = (
        find(Variant::XdpNative),
        find(Variant::Sockets),
        find(Variant::OpenVpn),
    ) {
        if x.redirected.is_none_or(|n| n == 0) {
            println!(
                "\nthe XDP native row did not run on the fast path (no `XDP redirected` in its status file): its numbers are the socket path's"
            );
        }
        let per_pkt = x.srv_us_per_pkt_64 / s.srv_us_per_pkt_64;
        let thr = x.udp_mbit / b.udp_mbit;
        println!(
            "\ngoals: server CPU per 64-byte packet, XDP native / sockets = {per_pkt:.2} (goal ≤ 1: {}); UDP throughput, XDP native / openvpn = {thr:.2} (goal ≥ 2: {})",
            if per_pkt <= 1.0 { "met" } else { "NOT met" },
            if thr >= 2.0 { "met" } else { "NOT met" }
        );
    }
    Variant::ALL.len() - rows.len()
}
