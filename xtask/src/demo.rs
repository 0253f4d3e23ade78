//! `cargo xtask demo`: our daemon carrying real traffic between network
//! namespaces it creates and removes. Our server, our client beside a
//! stock openvpn 2.6 client, a ping and a short iperf3 throughput figure
//! through each tunnel, then the server's status file (its counters).

use std::{fs, thread, time::Duration};

use anyhow::{Result, bail};

use crate::{
    lab::{Impl, Lab, SERVER_TUN, build_daemon, ns_output, ping_rtt_ms},
    setup,
    util::is_root,
};

pub(crate) fn run(release: bool) -> Result<()> {
    if !is_root() {
        bail!("the demo creates network namespaces: run it as root");
    }
    setup::ensure()?;
    let daemon = build_daemon(release)?;
    let mut lab = Lab::new("vpndemo", 2)?;
    println!(
        "\n== namespaces: server {} (10.201.1.1, 10.201.2.1), clients {} and {}",
        lab.server, lab.clients[0], lab.clients[1]
    );
    let srv_ns = lab.server.clone();
    let (c1, c2) = (lab.clients[0].clone(), lab.clients[1].clone());
    // The XDP fast path on the veth towards our client; the openvpn
    // client's side (s2) stays on the plain socket path, for contrast.
    let conf = format!("{}xdp-interface s1\n", lab.server_config());
    let srv = lab.start(Impl::Ours, &srv_ns, "server", &conf, &daemon)?;
    lab.peer(srv).wait_ready(Duration::from_secs(20))?;
    println!("== our server is listening on UDP 1194 (tls-crypt, AES-256-GCM, tunnel 10.8.0.0/24)");
    println!("   XDP fast path on s1 (towards our client); s2 (openvpn client) uses the socket");
    let ours = lab.start(
        Impl::Ours,
        &c1,
        "client-ours",
        &lab.client_config(1),
        &daemon,
    )?;
    let ovpn = lab.start(
        Impl::OpenVpn,
        &c2,
        "client-openvpn",
        &lab.client_config(2),
        &daemon,
    )?;
    for (idx, what) in [(ours, "our client"), (ovpn, "openvpn 2.6 client")] {
        let t = lab.peer(idx).wait_ready(Duration::from_secs(30))?;
        println!("== {what} connected in {:.2} s", t.as_secs_f64());
    }
    lab.start_iperf_server()?;
    for (ns, what) in [(&c1, "our client"), (&c2, "openvpn client")] {
        let rtt = ping_rtt_ms(ns, SERVER_TUN, 5)?;
        println!("\n-- {what} -> our server: ping {SERVER_TUN}: 5/5 replies, avg rtt {rtt:.3} ms");
        let out = ns_output(ns, "iperf3", &["-c", SERVER_TUN, "-t", "3", "-f", "m"])?;
        for l in out
            .lines()
            .filter(|l| l.contains("sender") || l.contains("receiver"))
        {
            println!("   iperf3 {l}");
        }
    }
    // The status file is rewritten every second.
    thread::sleep(Duration::from_millis(1500));
    println!(
        "\n-- our server's status file ({}):",
        lab.status_path().display()
    );
    let status =
        fs::read_to_string(lab.status_path()).unwrap_or_else(|e| format!("(unreadable: {e})\n"));
    print!("{status}");
    let redirected = status
        .lines()
        .find_map(|l| l.strip_prefix("GLOBAL_STATS,XDP redirected,"));
    match redirected {
        Some(n) => println!(
            "\n== {n} data packets of our client arrived over AF_XDP (XDP redirected; its CLIENT_LIST row \
             has the per-client XDP columns); the openvpn client's went through the socket"
        ),
        None => println!(
            "\n== the XDP fast path did not run (see the server log in {})",
            lab.dir.display()
        ),
    }
    println!("\n== cleaning up: processes stopped, namespaces deleted");
    Ok(())
}
