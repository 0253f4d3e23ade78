//! `dev tap` and `server-bridge` against stock openvpn 2.6.14, and `dev
//! null`: a server whose tap is enslaved to a Linux bridge together with a
//! veth to a "LAN" namespace; a tap client reaches a LAN host through it
//! (ARP both ways, the LAN host learns the client's tap MAC).
//!
//! ```text
//!   ns cli  10.201.0.2 ──veth── 10.201.0.1 ns srv
//!   ns cli  tap 192.168.77.x/24            ns srv  br: tap + veth  192.168.77.1/24
//!                                          ns srv  veth ── ns lan 192.168.77.50/24
//! ```
//!
//! Everything lives in namespaces the test creates (dropped on failure
//! too: the bridge, taps and veths go with them).

use std::{path::Path, process::Command, time::Duration};

use tests::{
    Netns, VethPair,
    fastpath::wait_for,
    openvpn::{Impl, Peer, Pki},
    ping_until, require_root,
    topology::TempDir,
    unique_name,
};

const SERVER_UNDERLAY: &str = "10.201.0.1";
const BRIDGE_ADDR: &str = "192.168.77.1";
const LAN_HOST: &str = "192.168.77.50";
const POOL_START: &str = "192.168.77.100";
const STATIC_CLIENT: &str = "192.168.77.120";
const PORT: u16 = 1194;
const READY: Duration = Duration::from_secs(30);

/// The three namespaces, the bridge in the server's, and a temp dir.
struct BridgeLab {
    srv: Netns,
    cli: Netns,
    lan: Netns,
    bridge: String,
    tap: String,
    /// The LAN host's interface.
    lan_if: String,
    dir: TempDir,
    pki: Pki,
}

impl BridgeLab {
    fn new() -> Self {
        let srv = Netns::new("tps");
        let cli = Netns::new("tpc");
        let lan = Netns::new("tpl");
        for ns in [&srv, &cli, &lan] {
            ns.disable_ipv6();
        }
        VethPair::new(&srv, &cli)
            .addr_a([10, 201, 0, 1])
            .addr_b([10, 201, 0, 2])
            .create();
        let (to_lan, lan_end) = VethPair::new(&srv, &lan)
            .addr_b([192, 168, 77, 50])
            .create();
        let bridge = unique_name("tb");
        srv.ip(&["link", "add", &bridge, "type", "bridge"]);
        srv.ip(&["link", "set", &to_lan.name, "master", &bridge]);
        srv.ip(&["addr", "add", &format!("{BRIDGE_ADDR}/24"), "dev", &bridge]);
        srv.ip(&["link", "set", &bridge, "up"]);
        let dir = TempDir::new("tap");
        let pki = Pki::new(&dir.path().join("pki"));
        Self {
            srv,
            cli,
            lan,
            bridge,
            tap: unique_name("tt"),
            lan_if: lan_end.name,
            dir,
            pki,
        }
    }

    fn common(&self) -> String {
        let p = |p: &Path| p.display().to_string();
        format!(
            "verb 3\nca {}\ntls-crypt {}\ndata-ciphers AES-256-GCM\ndisable-dco\nproto udp\n",
            p(&self.pki.ca),
            p(&self.pki.static_key)
        )
    }

    /// A tap server on the bridge's LAN with `bridge` as its
    /// `server-bridge` line (and `extra` lines).
    fn server_config(&self, bridge: &str, extra: &str) -> String {
        format!(
            "mode server\ndev {}\ndev-type tap\n{bridge}\nport {PORT}\n\
             cert {}\nkey {}\ndh none\nremote-cert-tls client\nkeepalive 2 10\nduplicate-cn\n{}{extra}\n",
            self.tap,
            self.pki.server_cert.display(),
            self.pki.server_key.display(),
            self.common(),
        )
    }

    fn client_config(&self, dev: &str, extra: &str) -> String {
        format!(
            "client\nnobind\ndev {dev}\nremote {SERVER_UNDERLAY} {PORT}\nconnect-retry 1 2\n\
             cert {}\nkey {}\nremote-cert-tls server\n{}{extra}\n",
            self.pki.client_cert.display(),
            self.pki.client_key.display(),
            self.common(),
        )
    }

    /// Waits for the server's tap and enslaves it to the bridge (what a
    /// bridge-start script does before openvpn starts).
    fn bridge_tap(&self) {
        let exists = || {
            Command::new("ip")
                .args(["-n", self.srv.name(), "link", "show", &self.tap])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        assert!(
            wait_for(READY, || exists().then_some(())).is_some(),
            "server tap {} never appeared",
            self.tap
        );
        self.srv
            .ip(&["link", "set", &self.tap, "master", &self.bridge]);
        self.srv.ip(&["link", "set", &self.tap, "up"]);
    }

    fn start(&self, imp: Impl, ns: &Netns, name: &str, text: &str) -> Peer {
        Peer::start(imp, ns, self.dir.path(), name, text)
    }
}

/// `ip -o link` output of `dev` in `ns`.
fn link_line(ns: &Netns, dev: &str) -> String {
    let out = Command::new("ip")
        .args(["-n", ns.name(), "-o", "link", "show", dev])
        .output()
        .expect("ip link");
    assert!(out.status.success(), "no link {dev} in {}", ns.name());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The MAC address of `dev` in `ns`.
fn mac_of(ns: &Netns, dev: &str) -> String {
    let line = link_line(ns, dev);
    let mut words = line.split_whitespace();
    assert!(
        words.any(|w| w == "link/ether"),
        "{dev} is not an Ethernet (tap) device: {line}"
    );
    words.next().expect("a MAC after link/ether").to_owned()
}

/// The only tap device in `ns` (the client's, named by the kernel).
fn tap_in(ns: &Netns) -> String {
    let out = Command::new("ip")
        .args(["-n", ns.name(), "-o", "-d", "link", "show", "type", "tun"])
        .output()
        .expect("ip link");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains("type tap"))
        .unwrap_or_else(|| panic!("no tap device in {}: {text}", ns.name()));
    line.split(':')
        .nth(1)
        .map(|s| s.trim().split('@').next().unwrap_or_default().to_owned())
        .expect("a device name")
}

/// Whether `ns` has a device with `addr` (e.g. "192.168.77.100/24").
fn has_addr(ns: &Netns, dev: &str, addr: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", ns.name(), "-o", "addr", "show", "dev", dev])
        .output()
        .expect("ip addr");
    String::from_utf8_lossy(&out.stdout).contains(&format!("inet {addr} "))
}

/// The neighbour entry (lower-case MAC) of `addr` in `ns`.
fn neighbour(ns: &Netns, addr: &str) -> Option<String> {
    let out = Command::new("ip")
        .args(["-n", ns.name(), "neigh", "show", addr])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut w = text.split_whitespace();
    w.find(|x| *x == "lladdr")?;
    w.next().map(str::to_lowercase)
}

/// The client at `client_addr` on its tap pings the LAN host and the LAN
/// host pings it back; each side resolved the other by ARP across the
/// bridge, the tunnel and the tap server's MAC routing.
fn assert_lan_reachable(lab: &BridgeLab, client_addr: &str) {
    let tap = tap_in(&lab.cli);
    let addressed = wait_for(READY, || {
        has_addr(&lab.cli, &tap, &format!("{client_addr}/24")).then_some(())
    });
    assert!(
        addressed.is_some(),
        "client tap {tap} never got {client_addr}/24: {}",
        link_line(&lab.cli, &tap)
    );
    assert!(
        ping_until(&lab.cli, LAN_HOST, 20),
        "client cannot ping the LAN host {LAN_HOST}"
    );
    assert!(
        ping_until(&lab.lan, client_addr, 10),
        "the LAN host cannot ping the client {client_addr}"
    );
    let client_mac = mac_of(&lab.cli, &tap).to_lowercase();
    assert_eq!(
        neighbour(&lab.lan, client_addr).as_deref(),
        Some(client_mac.as_str()),
        "the LAN host did not learn the client's tap MAC by ARP"
    );
    let lan_dev = {
        let out = Command::new("ip")
            .args(["-n", lab.lan.name(), "-o", "route", "get", client_addr])
            .output()
            .expect("ip route get");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut w = text.split_whitespace();
        w.find(|x| *x == "dev");
        w.next().expect("a device").to_owned()
    };
    assert_eq!(
        neighbour(&lab.cli, LAN_HOST).as_deref(),
        Some(mac_of(&lab.lan, &lan_dev).to_lowercase().as_str()),
        "the client did not learn the LAN host's MAC by ARP"
    );
}

#[test]
fn our_bridged_tap_server_gives_a_stock_client_a_pool_address_on_the_lan() {
    if !require_root() {
        return;
    }
    let lab = BridgeLab::new();
    let line = format!("server-bridge {BRIDGE_ADDR} 255.255.255.0 {POOL_START} 192.168.77.110");
    let mut server = lab.start(
        Impl::Ours,
        &lab.srv,
        "server",
        &lab.server_config(&line, ""),
    );
    server.wait_ready(READY);
    lab.bridge_tap();
    let mut client = lab.start(
        Impl::OpenVpn,
        &lab.cli,
        "client",
        &lab.client_config("tap", ""),
    );
    client.wait_ready(READY);
    assert_lan_reachable(&lab, POOL_START);
    assert!(
        client.count("route-gateway 192.168.77.1") > 0,
        "the pushed route-gateway is not in the client's log:\n{}",
        client.log_text()
    );
}

#[test]
fn our_bridged_tap_server_without_pool_serves_a_static_stock_client() {
    if !require_root() {
        return;
    }
    let lab = BridgeLab::new();
    // The classic bridge-start set-up: a persistent tap already in the
    // bridge before the server starts; the server attaches to it.
    lab.srv
        .ip(&["tuntap", "add", "dev", &lab.tap, "mode", "tap"]);
    lab.bridge_tap();
    let mut server = lab.start(
        Impl::Ours,
        &lab.srv,
        "server",
        &lab.server_config("server-bridge", ""),
    );
    server.wait_ready(READY);
    let mut client = lab.start(
        Impl::OpenVpn,
        &lab.cli,
        "client",
        &lab.client_config("tap", &format!("ifconfig {STATIC_CLIENT} 255.255.255.0")),
    );
    client.wait_ready(READY);
    assert_lan_reachable(&lab, STATIC_CLIENT);
    assert!(
        client.count("route-gateway dhcp") > 0,
        "'server-bridge' did not push route-gateway dhcp:\n{}",
        client.log_text()
    );
}

#[test]
fn our_tap_client_reaches_the_lan_of_a_stock_bridged_server() {
    if !require_root() {
        return;
    }
    let lab = BridgeLab::new();
    let line = format!("server-bridge {BRIDGE_ADDR} 255.255.255.0 {POOL_START} 192.168.77.110");
    let mut server = lab.start(
        Impl::OpenVpn,
        &lab.srv,
        "server",
        &lab.server_config(&line, "push \"route 10.77.0.0 255.255.0.0\""),
    );
    lab.bridge_tap();
    server.wait_ready(READY);
    let mut client = lab.start(
        Impl::Ours,
        &lab.cli,
        "client",
        &lab.client_config("tap", "lladdr 02:5a:00:00:00:07"),
    );
    client.wait_ready(READY);
    assert_lan_reachable(&lab, POOL_START);
    let tap = tap_in(&lab.cli);
    assert_eq!(mac_of(&lab.cli, &tap), "02:5a:00:00:00:07");
    // A pushed route on a tap goes via the pushed route-gateway.
    let out = Command::new("ip")
        .args(["-n", lab.cli.name(), "-o", "route", "show", "10.77.0.0/16"])
        .output()
        .expect("ip route");
    let route = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        route.contains(&format!("via {BRIDGE_ADDR} dev {tap}")),
        "pushed route not via the route-gateway: {route:?}"
    );
}

#[test]
fn our_dev_null_client_connects_and_opens_no_device() {
    if !require_root() {
        return;
    }
    let lab = BridgeLab::new();
    let line = format!("server-bridge {BRIDGE_ADDR} 255.255.255.0 {POOL_START} 192.168.77.110");
    let mut server = lab.start(
        Impl::OpenVpn,
        &lab.srv,
        "server",
        &lab.server_config(&line, ""),
    );
    lab.bridge_tap();
    server.wait_ready(READY);
    let mut client = lab.start(
        Impl::Ours,
        &lab.cli,
        "client",
        &lab.client_config("null", ""),
    );
    client.wait_ready(READY);
    // Keepalive pings (every 2 s, restart after 10) flow and nothing
    // tears the session down.
    std::thread::sleep(Duration::from_secs(3));
    assert!(client.exited().is_none(), "{}", client.log_text());
    let out = Command::new("ip")
        .args(["-n", lab.cli.name(), "-o", "link", "show", "type", "tun"])
        .output()
        .expect("ip link");
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "dev null opened a device: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(client.count("dev null") > 0, "{}", client.log_text());
}

#[test]
fn client_to_client_switches_frames_between_two_stock_tap_clients() {
    if !require_root() {
        return;
    }
    let lab = BridgeLab::new();
    // A second client namespace on its own underlay link.
    let cli2 = Netns::new("tpd");
    cli2.disable_ipv6();
    VethPair::new(&lab.srv, &cli2)
        .addr_a([10, 202, 0, 1])
        .addr_b([10, 202, 0, 2])
        .create();
    let line = format!("server-bridge {BRIDGE_ADDR} 255.255.255.0 {POOL_START} 192.168.77.110");
    let mut server = lab.start(
        Impl::Ours,
        &lab.srv,
        "server",
        &lab.server_config(&line, "client-to-client"),
    );
    server.wait_ready(READY);
    lab.bridge_tap();
    let mut a = lab.start(
        Impl::OpenVpn,
        &lab.cli,
        "client-a",
        &lab.client_config("tap", ""),
    );
    a.wait_ready(READY);
    let b_conf = lab
        .client_config("tap", "")
        .replace(SERVER_UNDERLAY, "10.202.0.1");
    let mut b = lab.start(Impl::OpenVpn, &cli2, "client-b", &b_conf);
    b.wait_ready(READY);
    let b_addr = "192.168.77.101";
    let addressed = wait_for(READY, || {
        has_addr(&cli2, &tap_in(&cli2), &format!("{b_addr}/24")).then_some(())
    });
    assert!(addressed.is_some(), "client b never got {b_addr}");
    // Both clients sit behind the one tap port of the bridge, which never
    // sends a frame back out of the port it came in on: only the server's
    // own switching (client-to-client by learnt MAC) gets a's frames to b.
    assert!(
        ping_until(&lab.cli, b_addr, 20),
        "client a cannot ping client b"
    );
}

/// A helper process killed (and reaped) when the test ends, also on panic.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends one raw Ethernet frame out of `dev` in `ns` (AF_PACKET).
fn inject(ns: &Netns, dev: &str, frame: &[u8]) {
    let ifindex = ns.ifindex(dev);
    ns.run(|| {
        // SAFETY: plain socket calls on a fresh fd with a zeroed, fully
        // initialised sockaddr_ll; the fd is closed before returning.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(
                fd >= 0,
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
            let mut sa: libc::sockaddr_ll = std::mem::zeroed();
            sa.sll_family = libc::AF_PACKET as u16;
            sa.sll_ifindex = ifindex as i32;
            sa.sll_halen = 6;
            let n = libc::sendto(
                fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const sa).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            );
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            assert_eq!(n, frame.len() as isize, "sendto: {err}");
        }
    });
}

fn parse_mac(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (b, p) in m.iter_mut().zip(s.split(':')) {
        *b = u8::from_str_radix(p, 16).expect("hex MAC");
    }
    m
}

/// An 802.1Q-tagged ARP reply "`spa` is at `sha`" to `tha`/`tpa`.
fn tagged_arp_reply(vid: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&tha);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x81, 0x00]);
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2]);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa);
    f
}

/// The kernel here has no 802.1Q devices (and a bridge without VLAN
/// filtering), so the LAN side of VLAN 20 is played by tcpdump (what the
/// server tagged) and a raw socket (tagged frames it must untag and steer).
#[test]
fn vlan_tagging_puts_a_client_on_its_ccd_vlan() {
    if !require_root() {
        return;
    }
    let lab = BridgeLab::new();
    let ccd = lab.dir.path().join("ccd");
    std::fs::create_dir_all(&ccd).expect("mkdir ccd");
    std::fs::write(ccd.join("client"), "vlan-pvid 20\n").expect("write ccd");
    let extra = format!("vlan-tagging\nclient-config-dir {}", ccd.display());
    let mut server = lab.start(
        Impl::Ours,
        &lab.srv,
        "server",
        &lab.server_config("server-bridge nogw", &extra),
    );
    server.wait_ready(READY);
    lab.bridge_tap();
    let mut client = lab.start(
        Impl::OpenVpn,
        &lab.cli,
        "client",
        &lab.client_config("tap", "ifconfig 192.168.20.10 255.255.255.0"),
    );
    client.wait_ready(READY);
    let client_mac = parse_mac(&mac_of(&lab.cli, &tap_in(&lab.cli)));
    let lan_mac = parse_mac(&mac_of(&lab.lan, &lab.lan_if));
    // 1. The client's ARP request leaves the bridge tagged with VID 20.
    let dump = Command::new("timeout")
        .args([
            "20",
            "ip",
            "netns",
            "exec",
            lab.lan.name(),
            "tcpdump",
            "-l",
            "-e",
            "-n",
            "-c",
            "1",
        ])
        .args(["-i", &lab.lan_if, "vlan 20 and arp"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tcpdump");
    // tcpdump needs a moment to attach; the pings retry ARP every second.
    // `ip netns exec` execs ping: the child is ping itself, killed on drop.
    let _pinger = KillOnDrop(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                lab.cli.name(),
                "ping",
                "-c",
                "15",
                "-i",
                "1",
            ])
            .arg("192.168.20.50")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ping"),
    );
    let out = dump.wait_with_output().expect("tcpdump output");
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        line.contains("vlan 20") && line.contains("who-has 192.168.20.50 tell 192.168.20.10"),
        "no VID 20 tagged ARP request from the client on the LAN: {line:?}"
    );
    // 2. A reply tagged for another VLAN does not reach the client; the
    //    one tagged 20 does, untagged (the client's kernel takes it).
    let reply = |vid| {
        tagged_arp_reply(
            vid,
            lan_mac,
            [192, 168, 20, 50],
            client_mac,
            [192, 168, 20, 10],
        )
    };
    inject(&lab.lan, &lab.lan_if, &reply(30));
    std::thread::sleep(Duration::from_secs(1));
    let lan_mac_text = mac_of(&lab.lan, &lab.lan_if).to_lowercase();
    assert_ne!(
        neighbour(&lab.cli, "192.168.20.50").as_deref(),
        Some(lan_mac_text.as_str()),
        "a frame of VLAN 30 reached the VLAN 20 client"
    );
    let learnt = wait_for(Duration::from_secs(10), || {
        inject(&lab.lan, &lab.lan_if, &reply(20));
        (neighbour(&lab.cli, "192.168.20.50").as_deref() == Some(lan_mac_text.as_str()))
            .then_some(())
    });
    assert!(
        learnt.is_some(),
        "the VID 20 ARP reply never reached the client"
    );
}

#[test]
fn our_tap_client_and_our_bridged_server_over_tcp() {
    if !require_root() {
        return;
    }
    let lab = BridgeLab::new();
    let line = format!("server-bridge {BRIDGE_ADDR} 255.255.255.0 {POOL_START} 192.168.77.110");
    let mut server = lab.start(
        Impl::Ours,
        &lab.srv,
        "server",
        &lab.server_config(&line, "proto tcp-server"),
    );
    server.wait_ready(READY);
    lab.bridge_tap();
    let mut client = lab.start(
        Impl::Ours,
        &lab.cli,
        "client",
        &lab.client_config("tap", "proto tcp-client"),
    );
    client.wait_ready(READY);
    assert_lan_reachable(&lab, POOL_START);
}

#[test]
fn our_tap_server_with_the_server_helper_is_reachable_on_its_own_tap() {
    if !require_root() {
        return;
    }
    let lab = BridgeLab::new();
    // No bridge: the server's tap itself holds 10.9.0.1/24.
    let mut server = lab.start(
        Impl::Ours,
        &lab.srv,
        "server",
        &lab.server_config("server 10.9.0.0 255.255.255.0", ""),
    );
    server.wait_ready(READY);
    let mut client = lab.start(
        Impl::OpenVpn,
        &lab.cli,
        "client",
        &lab.client_config("tap", ""),
    );
    client.wait_ready(READY);
    let tap = tap_in(&lab.cli);
    let addressed = wait_for(READY, || {
        has_addr(&lab.cli, &tap, "10.9.0.2/24").then_some(())
    });
    assert!(addressed.is_some(), "client tap never got 10.9.0.2/24");
    assert!(
        ping_until(&lab.cli, "10.9.0.1", 20),
        "client cannot ping the server's tap"
    );
    assert!(
        client.count("route-gateway 10.9.0.1") > 0 && client.count("topology") == 0,
        "tap 'server' pushes route-gateway and no topology:\n{}",
        client.log_text()
    );
}

/// A broadcast DHCPACK from `src_mac`/`src` naming `router`.
fn dhcp_ack(src_mac: [u8; 6], src: [u8; 4], router: [u8; 4]) -> Vec<u8> {
    let mut bootp = vec![0u8; 240];
    bootp[0] = 2; // BOOTREPLY
    bootp[1] = 1;
    bootp[2] = 6;
    bootp[236..240].copy_from_slice(&[99, 130, 83, 99]);
    bootp.extend_from_slice(&[53, 1, 5, 1, 4, 255, 255, 255, 0, 3, 4]);
    bootp.extend_from_slice(&router);
    bootp.push(255);
    let b = etherparse::PacketBuilder::ethernet2(src_mac, [0xff; 6])
        .ipv4(src, [255, 255, 255, 255], 64)
        .udp(67, 68);
    let mut out = Vec::new();
    b.write(&mut out, &bootp).expect("DHCP frame");
    out
}

#[test]
fn our_tap_client_routes_via_the_router_of_a_dhcp_answer() {
    if !require_root() {
        return;
    }
    let lab = BridgeLab::new();
    let mut server = lab.start(
        Impl::OpenVpn,
        &lab.srv,
        "server",
        &lab.server_config("server-bridge", "push \"route 10.78.0.0 255.255.0.0\""),
    );
    lab.bridge_tap();
    server.wait_ready(READY);
    let mut client = lab.start(
        Impl::Ours,
        &lab.cli,
        "client",
        &lab.client_config("tap", &format!("ifconfig {STATIC_CLIENT} 255.255.255.0")),
    );
    client.wait_ready(READY);
    let tap = tap_in(&lab.cli);
    let route = || {
        let out = Command::new("ip")
            .args(["-n", lab.cli.name(), "-o", "route", "show", "10.78.0.0/16"])
            .output()
            .expect("ip route");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // `route-gateway dhcp`: the pushed route waits for a gateway.
    assert!(
        ping_until(&lab.cli, LAN_HOST, 20),
        "client cannot reach the LAN"
    );
    assert_eq!(
        route(),
        "",
        "the route was installed before a gateway was known"
    );
    let lan_mac = parse_mac(&mac_of(&lab.lan, &lab.lan_if));
    let ack = dhcp_ack(lan_mac, [192, 168, 77, 50], [192, 168, 77, 254]);
    let installed = wait_for(Duration::from_secs(10), || {
        inject(&lab.lan, &lab.lan_if, &ack);
        route()
            .contains(&format!("via 192.168.77.254 dev {tap}"))
            .then_some(())
    });
    assert!(
        installed.is_some(),
        "route not via the DHCP router: {:?}\n{}",
        route(),
        client.log_text()
    );
    assert!(client.count("Extracted DHCP router address") > 0);
}
