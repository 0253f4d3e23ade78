//! The peer-info lines a 2.6 client adds to the ones every client sends:
//! `IV_GUI_VER`/`IV_SSO` from `setenv` (pulling clients), and with
//! `push-peer-info` (or `setenv PUSH_PEER_INFO`) also `IV_HWADDR`, `IV_SSL`,
//! `IV_PLAT_VER` and every `UV_*` variable, in 2.6's order.

use crate::config::Config;

/// The extra `(name, value)` lines, in the order 2.6 writes them after
/// `IV_PROTO` and the compression lines.
pub fn extra_lines(cfg: &Config) -> Vec<(String, String)> {
    let all = cfg.push_peer_info;
    let mut out = Vec::new();
    if !all && !cfg.pull {
        return out;
    }
    if all {
        // 2.6: the MAC of the interface the default route leaves by.
        if let Some(mac) = default_route_iface().and_then(|i| iface_mac(&i)) {
            out.push(("IV_HWADDR".into(), mac));
        }
        out.push(("IV_SSL".into(), openssl::version::version().to_string()));
        if let Some(rel) = kernel_release() {
            out.push(("IV_PLAT_VER".into(), rel));
        }
    }
    for (k, v) in &cfg.setenv {
        let pass = k == "IV_GUI_VER"
            || k == "IV_SSO"
            || (all && (k.starts_with("UV_") || k == "IV_PLAT_VER"));
        if pass {
            out.push((k.clone(), v.clone()));
        }
    }
    out
}

fn kernel_release() -> Option<String> {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    Some(r.trim().to_string()).filter(|s| !s.is_empty())
}

fn default_route_iface() -> Option<String> {
    let text = std::fs::read_to_string("/proc/net/route").ok()?;
    default_iface_in(&text)
}

/// The interface of the IPv4 default route in `/proc/net/route` text.
fn default_iface_in(text: &str) -> Option<String> {
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let dst = f.get(1)?;
        let mask = f.get(7)?;
        (*dst == "00000000" && *mask == "00000000").then(|| f[0].to_string())
    })
}

fn iface_mac(iface: &str) -> Option<String> {
    // Interface names never contain '/', but the value comes from a file.
    if iface.contains('/') || iface.starts_with('.') {
        return None;
    }
    let mac = std::fs::read_to_string(format!("/sys/class/net/{iface}/address")).ok()?;
    let mac = mac.trim();
    (mac.len() == 17 && mac != "00:00:00:00:00:00").then(|| mac.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_interface_is_the_zero_destination_zero_mask_line() {
        let t = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
                 eth1\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n\
                 eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\n";
        assert_eq!(default_iface_in(t).as_deref(), Some("eth0"));
        assert_eq!(default_iface_in("Iface\n"), None);
    }

    #[test]
    fn setenv_variables_pass_by_detail_level() {
        let mut cfg = crate::config::Loader::new("/")
            .check_files(false)
            .load_str(
                "t.conf",
                "client\ndev tun\nremote 192.0.2.1\nca ca.crt\nauth-user-pass up.txt\n",
            )
            .unwrap();
        cfg.setenv = vec![
            ("UV_SITE".into(), "berlin".into()),
            ("IV_GUI_VER".into(), "gui 1".into()),
            ("OTHER".into(), "x".into()),
        ];
        let names =
            |c: &Config| -> Vec<String> { extra_lines(c).into_iter().map(|(k, _)| k).collect() };
        assert_eq!(names(&cfg), ["IV_GUI_VER"]);
        cfg.push_peer_info = true;
        let n = names(&cfg);
        assert!(
            n.contains(&"IV_SSL".to_string()) && n.contains(&"UV_SITE".to_string()),
            "{n:?}"
        );
        assert!(!n.contains(&"OTHER".to_string()));
    }
}
