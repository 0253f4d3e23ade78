//! Server mode logic: the sans-IO state the server loops
//! (`tunnel_server_udp` / `tunnel_server_tcp` analogues) glue sessions to.
//!
//! Everything here is a plain data structure: no sockets, no tokio, no
//! clock, no crypto. Time, when it matters, is passed in. The pieces:
//!
//! - [`pool`]: the `ifconfig-pool` / `ifconfig-ipv6-pool` address pool and
//!   its `ifconfig-pool-persist` file;
//! - [`peers`]: the peer table (peer-id, transport address, VPN address /
//!   `iroute` longest-prefix match) and the internal multiplexer's routing
//!   decision;
//! - [`ccd`]: `client-config-dir` files;
//! - [`push`]: a client's push list in 2.6's order.
//!
//! How a driver strings them together for one client (2.6's order):
//!
//! ```text
//! start:    AddressPool::from_config, load_persist(file, seconds == 0),
//!           ClientConfigDir::from_config, scan_static_addresses -> pool.reserve
//! packet from a new address (UDP) / new stream (TCP):
//!           peers.insert(addr, session)             -> peer-id, or MaxClients
//! TLS done, common name known:
//!           peers.set_common_name; admit_common_name -> close the replaced instances
//!           ccd.load(cn)                            -> options / ccd-exclusive refusal / `disable`
//!           needs_pool_lease -> pool.acquire(cn)    -> Lease
//!           client_addresses -> peers.set_routes(vpn_routes(..))
//!           client_push_list -> session appends peer-id, cipher... -> build_push_reply
//! data:     peers.route(PacketSource::Tun | Peer(id), packet, client_to_client)
//! float:    peers.float(id, new_addr, same_client) after the packet authenticated
//! gone:     peers.remove(id); pool.release(lease.handle, false)
//! status:   peers.iter() + peers.route_list() -> mgmt::status::ServerStatus
//! ```

pub mod ccd;
pub(crate) mod cert_env;
pub mod compress;
pub mod connect_freq;
pub mod mac;
pub mod peers;
pub mod pool;
pub mod push;
pub mod vlan;

/// The pieces together, as a server driver would use them for a client's
/// connection: ccd, pool, push list, peer table, routing, status.
#[cfg(test)]
mod scenario_tests {
    use std::{
        net::SocketAddr,
        sync::atomic::{AtomicU32, Ordering},
    };

    use super::{
        ccd::{ClientConfigDir, StaticAddress},
        peers::{CnAdmission, PacketSource, PeerTable, RouteDecision},
        pool::{AddressPool, Lease},
        push::{
            ServerAddressing, client_addresses, client_push_list, needs_pool_lease, vpn_routes,
        },
    };
    use crate::mgmt::status::{
        ClientEntry, FastPathCounters, LineEnd, RouteEntry, ServerStatus, StatusVersion, Utc,
        render_server,
    };

    struct Client {
        cn: String,
        lease: Option<Lease>,
        since: u64,
    }

    fn v4pkt(src: &str, dst: &str) -> Vec<u8> {
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[12..16].copy_from_slice(&src.parse::<std::net::Ipv4Addr>().unwrap().octets());
        p[16..20].copy_from_slice(&dst.parse::<std::net::Ipv4Addr>().unwrap().octets());
        p
    }

    #[test]
    fn two_clients_connect_route_and_show_in_status() {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vpn-scenario-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("branch"),
            "ifconfig-push 10.8.0.2 255.255.255.0\niroute 192.168.50.0 255.255.255.0\npush \"route 192.168.60.0 255.255.255.0\"\n",
        )
        .unwrap();
        let text = format!(
            "dev tun\nca ca.pem\ncert c.pem\nkey k.pem\ndh none\ntopology subnet\nserver 10.8.0.0 255.255.255.0\nkeepalive 10 60\nclient-to-client\nclient-config-dir {}\n",
            dir.display()
        );
        let cfg = crate::config::Loader::new("/")
            .check_files(false)
            .load_str("server.conf", &text)
            .unwrap();

        let ccd = ClientConfigDir::from_config(&cfg, "/").unwrap();
        let mut pool = AddressPool::from_config(&cfg).unwrap().unwrap();
        let (statics, errors) = ccd.scan_static_addresses().unwrap();
        assert!(errors.is_empty());
        for StaticAddress { ipv4, ipv6, .. } in &statics {
            pool.reserve(*ipv4, *ipv6);
        }
        let server = ServerAddressing::from_config(&cfg);
        let mut peers: PeerTable<Client> = PeerTable::new(cfg.max_clients);

        let mut connect = |peers: &mut PeerTable<Client>, cn: &str, from: &str, since: u64| {
            let addr: SocketAddr = from.parse().unwrap();
            let id = peers
                .insert(
                    addr,
                    Client {
                        cn: cn.into(),
                        lease: None,
                        since,
                    },
                )
                .unwrap();
            peers.set_common_name(id, Some(cn.into())).unwrap();
            assert_eq!(
                peers.admit_common_name(cn, id, cfg.duplicate_cn),
                CnAdmission::Admit
            );
            let opts = ccd.load(cn).unwrap();
            let o = opts.options();
            let lease = needs_pool_lease(o).then(|| pool.acquire(Some(cn)).unwrap());
            let addrs = client_addresses(&server, lease.as_ref(), o);
            peers.set_routes(id, vpn_routes(&addrs, o)).unwrap();
            peers.get_mut(id).unwrap().payload.lease = lease;
            (id, client_push_list(&cfg.push, o, &addrs))
        };

        let (branch, branch_push) = connect(&mut peers, "branch", "198.51.100.7:43451", 100);
        let (laptop, laptop_push) = connect(&mut peers, "laptop", "203.0.113.20:51820", 200);
        assert_eq!((branch, laptop), (0, 1));
        assert_eq!(
            branch_push,
            vec![
                "route-gateway 10.8.0.1",
                "topology subnet",
                "ping 10",
                "ping-restart 60",
                "route 192.168.60.0 255.255.255.0",
                "ifconfig 10.8.0.2 255.255.255.0"
            ]
        );
        // 10.8.0.2 is reserved for "branch": the laptop gets .3.
        assert_eq!(
            laptop_push.last().unwrap(),
            "ifconfig 10.8.0.3 255.255.255.0"
        );

        // Internal multiplexer: laptop -> branch's LAN, inside the daemon.
        assert_eq!(
            peers.route(
                PacketSource::Peer(laptop),
                &v4pkt("10.8.0.3", "192.168.50.10"),
                true
            ),
            RouteDecision::Peer(branch)
        );
        assert_eq!(
            peers.route(PacketSource::Tun, &v4pkt("10.8.0.1", "10.8.0.3"), true),
            RouteDecision::Peer(laptop)
        );

        // Status snapshot from the table.
        let clients = peers
            .iter()
            .map(|p| ClientEntry {
                common_name: Some(p.payload.cn.clone()),
                real_address: p.transport(),
                virtual_ipv4: p.routes().ipv4,
                virtual_ipv6: p.routes().ipv6,
                bytes_received: 0,
                bytes_sent: 0,
                connected_since: p.payload.since,
                username: None,
                client_id: u64::from(p.id()),
                peer_id: p.id(),
                cipher: "AES-256-GCM".into(),
                fast_path: FastPathCounters::default(),
            })
            .collect();
        let routes = peers
            .route_list()
            .into_iter()
            .map(|(network, id)| {
                let p = peers.get(id).unwrap();
                RouteEntry {
                    network,
                    cached: false,
                    common_name: Some(p.payload.cn.clone()),
                    real_address: p.transport(),
                    last_ref: 300,
                }
            })
            .collect();
        let status = ServerStatus {
            title: "OpenVPN 2.6.14 x86_64-pc-linux-gnu".into(),
            now: 400,
            clients,
            routes,
            max_bcast_mcast_queue_len: 0,
            dco_enabled: false,
            xdp: None,
        };
        let out = render_server(&status, StatusVersion::V2, LineEnd::Lf, &Utc);
        assert!(out.contains("\nCLIENT_LIST,branch,198.51.100.7:43451,10.8.0.2,,0,0,1970-01-01 00:01:40,100,UNDEF,0,0,AES-256-GCM\n"));
        assert!(out.contains(
            "\nROUTING_TABLE,192.168.50.0/24,branch,198.51.100.7:43451,1970-01-01 00:05:00,300\n"
        ));
        assert!(out.contains("\nROUTING_TABLE,10.8.0.3,laptop,203.0.113.20:51820,"));

        // Disconnect: every index is cleaned, the address is remembered.
        let gone = peers.remove(laptop).unwrap();
        pool.release(gone.payload.lease.unwrap().handle, false)
            .unwrap();
        assert_eq!(peers.by_vpn_addr("10.8.0.3".parse().unwrap()), None);
        assert_eq!(pool.render_persist(), "laptop,10.8.0.3,\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
