//! A client's push list, built the way 2.6 builds it (`multi.c`
//! `multi_select_virtual_addr`, `push.c` `prepare_push_reply`; order in
//! `openvpn-protocol.md` §9.2):
//!
//! ```text
//!   global `push` list (config lines + helper options: route-gateway, topology, ping...)
//!     edited by the ccd file in order: push-reset / push-remove PREFIX / push "OPT"
//!   ifconfig-ipv6 ADDR/BITS REMOTE       (unless `push-remove ifconfig-ipv6`)
//!   ifconfig ADDR NETMASK|REMOTE         (unless `push-remove ifconfig`)
//!   ---- added by the protocol session, not here ----
//!   peer-id, auth-token, cipher, key-derivation / protocol-flags, tun-mtu
//! ```
//!
//! The result feeds [`crate::proto::push::build_push_reply`] once the
//! session has appended its own options. As in 2.6, `push-reset` also
//! drops the helper's `route-gateway` and `topology`: a ccd file that
//! resets must push them again.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::{
    config::{Config, Topology},
    server::{
        ccd::{CcdOptions, PushEdit},
        peers::VpnRoutes,
        pool::Lease,
    },
};

/// The client's IPv4 tunnel configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIpv4 {
    /// Its address (what the server routes to it).
    pub local: Ipv4Addr,
    /// Netmask (subnet) or the other end (net30, p2p).
    pub remote_netmask: Ipv4Addr,
    /// `ifconfig-push`'s third parameter: pushed in place of `local`.
    pub alias: Option<Ipv4Addr>,
}

/// The client's IPv6 tunnel configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIpv6 {
    /// Its address.
    pub local: Ipv6Addr,
    /// Prefix length pushed with it.
    pub prefix_len: u8,
    /// The server's tunnel address.
    pub remote: Ipv6Addr,
}

/// A client's tunnel addresses, from its ccd file or the pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientAddresses {
    /// IPv4, if any.
    pub ipv4: Option<ClientIpv4>,
    /// IPv6, if any.
    pub ipv6: Option<ClientIpv6>,
}

/// What the server's addressing looks like (from [`Config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerAddressing {
    /// `topology`.
    pub topology: Topology,
    /// Our tun IPv4 address (`ifconfig` LOCAL).
    pub ifconfig_local: Option<Ipv4Addr>,
    /// Our `ifconfig` second parameter: netmask (subnet) or peer (net30).
    pub ifconfig_remote_netmask: Option<Ipv4Addr>,
    /// `ifconfig-pool`'s netmask, if given.
    pub pool_netmask: Option<Ipv4Addr>,
    /// Our tun IPv6 address (`ifconfig-ipv6`).
    pub ifconfig_ipv6_local: Option<Ipv6Addr>,
    /// Prefix length of `ifconfig-ipv6-pool`.
    pub ipv6_pool_prefix_len: Option<u8>,
}

impl ServerAddressing {
    /// Reads the relevant fields of a server configuration.
    pub fn from_config(cfg: &Config) -> Self {
        ServerAddressing {
            topology: cfg.topology,
            ifconfig_local: cfg.ifconfig.map(|i| i.local),
            ifconfig_remote_netmask: cfg.ifconfig.map(|i| i.remote_netmask),
            pool_netmask: cfg.ifconfig_pool.and_then(|p| p.netmask),
            ifconfig_ipv6_local: cfg.ifconfig_ipv6.map(|i| i.local.addr()),
            ipv6_pool_prefix_len: cfg.ifconfig_ipv6_pool.map(|n| n.prefix_len()),
        }
    }
}

/// Whether the pool should be asked for a lease: 2.6 uses the pool only
/// when the ccd file has no `ifconfig-push` (and then a pool IPv6 address
/// is not assigned either: "static IPv4, pool IPv6" does not work in 2.6).
pub fn needs_pool_lease(ccd: Option<&CcdOptions>) -> bool {
    ccd.is_none_or(|c| c.ifconfig_push.is_none())
}

/// The client's addresses: `ifconfig-push` / `ifconfig-ipv6-push` from its
/// ccd file win over the pool lease.
pub fn client_addresses(
    server: &ServerAddressing,
    lease: Option<&Lease>,
    ccd: Option<&CcdOptions>,
) -> ClientAddresses {
    let mut out = ClientAddresses::default();
    if let Some(p) = ccd.and_then(|c| c.ifconfig_push) {
        out.ipv4 = Some(ClientIpv4 {
            local: p.local,
            remote_netmask: p.remote_netmask,
            alias: p.alias,
        });
    } else if let Some(lease) = lease {
        if let Some(addr) = lease.ipv4 {
            let remote_netmask = match server.topology {
                Topology::Subnet => server.pool_netmask.or(server.ifconfig_remote_netmask),
                Topology::P2p => server.ifconfig_local,
                Topology::Net30 => lease.ipv4_net30_remote,
            };
            out.ipv4 = remote_netmask.map(|rn| ClientIpv4 {
                local: addr,
                remote_netmask: rn,
                alias: None,
            });
        }
        if let (Some(a), Some(len), Some(remote)) = (
            lease.ipv6,
            server.ipv6_pool_prefix_len,
            server.ifconfig_ipv6_local,
        ) {
            out.ipv6 = Some(ClientIpv6 {
                local: a,
                prefix_len: len,
                remote,
            });
        }
    }
    if let Some(p) = ccd.and_then(|c| c.ifconfig_ipv6_push) {
        out.ipv6 = Some(ClientIpv6 {
            local: p.local.addr(),
            prefix_len: p.local.prefix_len(),
            remote: p.remote,
        });
    }
    out
}

/// The peer-table routes of a client: its addresses and ccd iroutes.
pub fn vpn_routes(addrs: &ClientAddresses, ccd: Option<&CcdOptions>) -> VpnRoutes {
    VpnRoutes {
        ipv4: addrs.ipv4.map(|a| a.local),
        ipv6: addrs.ipv6.map(|a| a.local),
        iroutes_v4: ccd.map(|c| c.iroutes_v4.clone()).unwrap_or_default(),
        iroutes_v6: ccd.map(|c| c.iroutes_v6.clone()).unwrap_or_default(),
    }
}

/// Builds the option lines for a client's PUSH_REPLY, up to (not
/// including) what the protocol session adds (`peer-id`, `cipher`...).
pub fn client_push_list(
    global: &[String],
    ccd: Option<&CcdOptions>,
    addrs: &ClientAddresses,
) -> Vec<String> {
    // (option, enabled): push-remove disables what exists at that point,
    // as 2.6 does; options pushed later in the file are not affected.
    let mut list: Vec<(String, bool)> = global.iter().map(|o| (o.clone(), true)).collect();
    let mut block_v4 = false;
    let mut block_v6 = false;
    for edit in ccd.map(|c| c.push_edits.as_slice()).unwrap_or_default() {
        match edit {
            PushEdit::Reset => list.clear(),
            PushEdit::Remove(p) if p == "ifconfig" => block_v4 = true,
            PushEdit::Remove(p) if p == "ifconfig-ipv6" => block_v6 = true,
            PushEdit::Remove(p) => {
                for (o, on) in &mut list {
                    if o.starts_with(p.as_str()) {
                        *on = false;
                    }
                }
            }
            PushEdit::Push(o) => list.push((o.clone(), true)),
        }
    }
    let mut out: Vec<String> = list
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(o, _)| o)
        .collect();
    if let Some(v6) = addrs.ipv6.filter(|_| !block_v6) {
        out.push(format!(
            "ifconfig-ipv6 {}/{} {}",
            v6.local, v6.prefix_len, v6.remote
        ));
    }
    if let Some(v4) = addrs.ipv4.filter(|_| !block_v4) {
        out.push(format!(
            "ifconfig {} {}",
            v4.alias.unwrap_or(v4.local),
            v4.remote_netmask
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{
        proto::push::{PUSH_PART_MAX, build_push_reply},
        server::{
            ccd::{ClientConfigDir, parse_ccd},
            pool::AddressPool,
        },
    };

    fn server(extra: &str) -> Config {
        let text = format!("dev tun\nca ca.pem\ncert c.pem\nkey k.pem\ndh none\n{extra}");
        crate::config::Loader::new("/")
            .check_files(false)
            .load_str("server.conf", &text)
            .unwrap()
    }

    fn ccd(text: &str) -> CcdOptions {
        let dir = ClientConfigDir {
            dir: "/ccd".into(),
            exclusive: false,
            cwd: "/".into(),
            ifconfig_ipv6_local: Some("fd00:8::1".parse().unwrap()),
        };
        parse_ccd(text.as_bytes(), Path::new("/ccd/c"), &dir).unwrap()
    }

    /// Everything but the session's own options, for one client.
    fn list_for(cfg: &Config, ccd: Option<&CcdOptions>) -> Vec<String> {
        let mut pool = AddressPool::from_config(cfg).unwrap().unwrap();
        let lease = needs_pool_lease(ccd).then(|| pool.acquire(Some("c")).unwrap());
        let addrs = client_addresses(&ServerAddressing::from_config(cfg), lease.as_ref(), ccd);
        client_push_list(&cfg.push, ccd, &addrs)
    }

    #[test]
    fn subnet_reply_matches_openvpn_2_6_capture() {
        let cfg = server("topology subnet\nserver 10.8.0.0 255.255.255.0\nkeepalive 10 60\n");
        let mut lines = list_for(&cfg, None);
        // What the protocol session appends (doc §9.2).
        for o in [
            "peer-id 0",
            "cipher AES-256-GCM",
            "protocol-flags cc-exit tls-ekm dyn-tls-crypt",
            "tun-mtu 1500",
        ] {
            lines.push(o.into());
        }
        let parts = build_push_reply(&lines, PUSH_PART_MAX).unwrap();
        assert_eq!(
            parts,
            vec![
                "PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 60,ifconfig 10.8.0.2 255.255.255.0,peer-id 0,cipher AES-256-GCM,protocol-flags cc-exit tls-ekm dyn-tls-crypt,tun-mtu 1500"
            ]
        );
    }

    /// Every committed 2.6.14 capture's server.conf gives the push list
    /// its server.log shows (up to what the session appends).
    #[test]
    fn captured_server_configs_give_the_logged_push_lists() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/openvpn-2.6.14");
        let mut n = 0;
        for scenario in [
            "udp-tlscrypt-aes256gcm",
            "tcp-tlscrypt-aes256gcm",
            "udp-aes256cbc-sha256",
            "udp-plain-aes128gcm",
            "udp-tlsauth-chacha",
            "udp-reneg",
        ] {
            let dir = base.join(scenario);
            let text = std::fs::read_to_string(dir.join("server.conf")).unwrap();
            let cfg = crate::config::Loader::new(&dir)
                .check_files(false)
                .load_str("server.conf", &text)
                .unwrap();
            assert_eq!(
                list_for(&cfg, None),
                vec![
                    "route-gateway 10.9.0.1",
                    "topology subnet",
                    "ifconfig 10.9.0.2 255.255.255.0"
                ],
                "{scenario}"
            );
            n += 1;
        }
        assert_eq!(n, 6);
    }

    #[test]
    fn net30_pushes_client_and_remote_of_its_block() {
        let cfg = server("server 10.8.0.0 255.255.255.0\n");
        let l = list_for(&cfg, None);
        assert_eq!(
            l,
            vec![
                "route 10.8.0.1",
                "topology net30",
                "ifconfig 10.8.0.6 10.8.0.5"
            ]
        );
        let c2c = server("client-to-client\nserver 10.8.0.0 255.255.255.0\n");
        assert_eq!(list_for(&c2c, None)[0], "route 10.8.0.0 255.255.255.0");
    }

    #[test]
    fn p2p_topology_pushes_server_address_as_remote() {
        let cfg = server("topology p2p\nserver 10.8.0.0 255.255.255.0\n");
        let l = list_for(&cfg, None);
        assert_eq!(l.last().unwrap(), "ifconfig 10.8.0.4 10.8.0.1");
    }

    #[test]
    fn ipv6_comes_before_ipv4_ifconfig() {
        let cfg =
            server("topology subnet\nserver 10.8.0.0 255.255.255.0\nserver-ipv6 fd00:8::/64\n");
        let l = list_for(&cfg, None);
        let n = l.len();
        assert_eq!(l[n - 2], "ifconfig-ipv6 fd00:8::1000/64 fd00:8::1");
        assert_eq!(l[n - 1], "ifconfig 10.8.0.2 255.255.255.0");
        assert!(l.contains(&"tun-ipv6".to_string()));
    }

    #[test]
    fn ccd_static_addresses_override_the_pool() {
        let cfg =
            server("topology subnet\nserver 10.8.0.0 255.255.255.0\nserver-ipv6 fd00:8::/64\n");
        let c = ccd("ifconfig-push 10.8.0.200 255.255.255.0\nifconfig-ipv6-push fd00:8::200/64\n");
        assert!(!needs_pool_lease(Some(&c)));
        let l = list_for(&cfg, Some(&c));
        let n = l.len();
        assert_eq!(l[n - 2], "ifconfig-ipv6 fd00:8::200/64 fd00:8::1");
        assert_eq!(l[n - 1], "ifconfig 10.8.0.200 255.255.255.0");
        let alias = ccd("ifconfig-push 10.8.0.200 255.255.255.0 10.8.0.201\n");
        let addrs = client_addresses(&ServerAddressing::from_config(&cfg), None, Some(&alias));
        assert_eq!(
            client_push_list(&[], Some(&alias), &addrs),
            vec!["ifconfig 10.8.0.201 255.255.255.0"]
        );
        // The route table uses the real address, not the alias.
        assert_eq!(
            vpn_routes(&addrs, Some(&alias)).ipv4,
            Some("10.8.0.200".parse().unwrap())
        );
    }

    #[test]
    fn push_reset_drops_global_options_including_helpers() {
        let cfg = server(
            "topology subnet\nserver 10.8.0.0 255.255.255.0\npush \"dhcp-option DNS 10.8.0.1\"\n",
        );
        let c = ccd("push-reset\npush \"route 192.168.9.0 255.255.255.0\"\n");
        assert_eq!(
            list_for(&cfg, Some(&c)),
            vec![
                "route 192.168.9.0 255.255.255.0",
                "ifconfig 10.8.0.2 255.255.255.0"
            ]
        );
    }

    #[test]
    fn push_remove_matches_prefixes_of_earlier_options_only() {
        let global: Vec<String> = [
            "route 10.1.0.0 255.255.0.0",
            "route-gateway 10.8.0.1",
            "dhcp-option DNS 1.1.1.1",
            "topology subnet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = ccd("push-remove route\npush \"route 10.2.0.0 255.255.0.0\"\n");
        let addrs = ClientAddresses {
            ipv4: Some(ClientIpv4 {
                local: "10.8.0.9".parse().unwrap(),
                remote_netmask: "255.255.255.0".parse().unwrap(),
                alias: None,
            }),
            ipv6: None,
        };
        assert_eq!(
            client_push_list(&global, Some(&c), &addrs),
            vec![
                "dhcp-option DNS 1.1.1.1",
                "topology subnet",
                "route 10.2.0.0 255.255.0.0",
                "ifconfig 10.8.0.9 255.255.255.0"
            ]
        );
    }

    #[test]
    fn push_remove_ifconfig_blocks_per_client_addresses() {
        let cfg =
            server("topology subnet\nserver 10.8.0.0 255.255.255.0\nserver-ipv6 fd00:8::/64\n");
        let c = ccd("push-remove ifconfig-ipv6\n");
        let l = list_for(&cfg, Some(&c));
        assert!(l.iter().all(|o| !o.starts_with("ifconfig-ipv6")));
        assert!(l.iter().any(|o| o.starts_with("ifconfig ")));
        let c = ccd("push-remove ifconfig\n");
        let l = list_for(&cfg, Some(&c));
        assert!(l.iter().all(|o| !o.starts_with("ifconfig ")));
        assert!(l.iter().any(|o| o.starts_with("ifconfig-ipv6")));
    }

    #[test]
    fn vpn_routes_carry_iroutes() {
        let c = ccd("iroute 192.168.50.0 255.255.255.0\niroute-ipv6 fd00:50::/48\n");
        let addrs = ClientAddresses {
            ipv4: Some(ClientIpv4 {
                local: "10.8.0.9".parse().unwrap(),
                remote_netmask: "255.255.255.0".parse().unwrap(),
                alias: None,
            }),
            ipv6: None,
        };
        let r = vpn_routes(&addrs, Some(&c));
        assert_eq!(r.networks().len(), 3);
    }
}
