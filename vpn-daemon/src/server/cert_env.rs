//! The certificate variables 2.6 exports for each certificate of a
//! client's chain (`verify_cert_set_env`, `x509_setenv` of its OpenSSL
//! backend): `X509_{depth}_{attr}`, `tls_id_{depth}`, `tls_digest_{depth}`,
//! `tls_digest_sha256_{depth}`, `tls_serial_{depth}`,
//! `tls_serial_hex_{depth}`; and the client's peer-info as `IV_*`/`UV_*`
//! variables (`output_peer_info_env`).

use openssl::hash::MessageDigest;
use openssl::x509::X509Ref;

use crate::config::Topology;
use crate::host::scripts::ScriptEnv;
use crate::proto::key_method::PeerInfo;
use crate::proto::tls::subject_string;
use crate::server::push::ClientAddresses;

fn colon_hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Removes every `X509_*` variable before a new handshake's chain is
/// exported (2.6's `tls_x509_clear_env`; the `tls_*` ones are overwritten).
pub(crate) fn clear_x509_env(env: &mut ScriptEnv) {
    let old: Vec<String> = env
        .iter()
        .filter(|(k, _)| k.starts_with("X509_"))
        .map(|(k, _)| k.to_string())
        .collect();
    for k in old {
        env.unset(&k);
    }
}

/// Sets the variables of the certificate at `depth` (0 is the leaf).
pub(crate) fn set_cert_env(env: &mut ScriptEnv, depth: usize, cert: &X509Ref) {
    for e in cert.subject_name().entries() {
        let Ok(sn) = e.object().nid().short_name() else {
            continue;
        };
        let Ok(v) = e.data().to_string() else {
            continue;
        };
        // A repeated attribute (two OUs) gets _1, _2... as setenv_str_incr.
        let base = format!("X509_{depth}_{sn}");
        let mut name = base.clone();
        let mut n = 0;
        while env.get(&name).is_some() && n < 999 {
            n += 1;
            name = format!("{base}_{n}");
        }
        env.set(&name, v.replace(['\r', '\n'], "_"));
    }
    env.set(
        &format!("tls_id_{depth}"),
        subject_string(cert.subject_name()),
    );
    if let Ok(d) = cert.digest(MessageDigest::sha1()) {
        env.set(&format!("tls_digest_{depth}"), colon_hex(&d));
    }
    if let Ok(d) = cert.digest(MessageDigest::sha256()) {
        env.set(&format!("tls_digest_sha256_{depth}"), colon_hex(&d));
    }
    if let Ok(bn) = cert.serial_number().to_bn() {
        if let Ok(dec) = bn.to_dec_str() {
            env.set(&format!("tls_serial_{depth}"), &*dec);
        }
        env.set(&format!("tls_serial_hex_{depth}"), colon_hex(&bn.to_vec()));
    }
}

/// The client's peer-info lines as variables (only `IV_*` and `UV_*`, as
/// 2.6), rebuilt from the parsed form.
pub(crate) fn set_peer_info_env(env: &mut ScriptEnv, p: &PeerInfo) {
    env.set_opt("IV_VER", p.version.as_deref())
        .set_opt("IV_PLAT", p.platform.as_deref())
        .set_opt("IV_MTU", p.mtu.map(|m| m.to_string()))
        .set_opt("IV_NCP", p.ncp.map(|n| n.to_string()))
        .set_opt("IV_CIPHERS", p.ciphers.as_ref().map(|c| c.join(":")));
    if !p.proto.is_empty() {
        env.set("IV_PROTO", p.proto.bits().to_string());
    }
    for (flag, name) in [
        (p.tcpnl, "IV_TCPNL"),
        (p.lzo_stub, "IV_LZO_STUB"),
        (p.comp_stub, "IV_COMP_STUB"),
        (p.comp_stub_v2, "IV_COMP_STUBv2"),
    ] {
        if flag {
            env.set(name, "1");
        }
    }
    for r in &p.real_compression {
        env.set(r, "1");
    }
    for (k, v) in &p.other {
        if k.starts_with("IV_") || k.starts_with("UV_") {
            env.set(k, v);
        }
    }
}

/// A client's pool/static addresses for `client-connect` and later
/// scripts (2.6 `multi_set_virtual_addr_env`):
/// `ifconfig_pool_remote_ip`, then `ifconfig_pool_local_ip` (net30,
/// p2p) or `ifconfig_pool_netmask` (subnet), and the IPv6 trio.
pub(crate) fn set_client_addresses<'a>(
    env: &'a mut ScriptEnv,
    addrs: &ClientAddresses,
    topology: Topology,
) -> &'a mut ScriptEnv {
    if let Some(v4) = addrs.ipv4 {
        env.set("ifconfig_pool_remote_ip", v4.local.to_string());
        let other = v4.remote_netmask.to_string();
        match topology {
            Topology::Subnet => env.set("ifconfig_pool_netmask", other),
            Topology::Net30 | Topology::P2p => env.set("ifconfig_pool_local_ip", other),
        };
    }
    if let Some(v6) = addrs.ipv6 {
        env.set("ifconfig_pool_remote_ip6", v6.local.to_string())
            .set("ifconfig_pool_local_ip6", v6.remote.to_string())
            .set("ifconfig_pool_ip6_netbits", v6.prefix_len.to_string());
    }
    env
}
