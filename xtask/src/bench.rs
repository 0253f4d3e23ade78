//! `cargo xtask bench`: a benchmark (not a test) of our daemon against
//! stock openvpn 2.6 on the demo's topology. For each pair (server,
//! client) among openvpn↔openvpn, ours↔ours and the two mixed pairs, one
//! fresh lab: time from starting the client to the first echo reply
//! through the tunnel, ping RTT, then iperf3 TCP (one stream) and UDP
//! (unlimited rate) for a bounded time each, with the CPU seconds both
//! tunnel ends spent per GB moved (utime + stime from /proc/PID/stat).
//! docs/bench.md explains how to read the table.

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
    if rows.len() < pairs.len() {
        bail!(
            "{} of {} pairs failed (see above)",
            pairs.len() - rows.len(),
            pairs.len()
        );
    }
    Ok(())
}
