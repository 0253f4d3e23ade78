//! Rows of the directive table for the options of [`crate::config::host`]:
//! sockets, the process, pull filtering, extra scripts and the server's
//! bounds. Values and messages follow 2.6.14's `add_option`.

use super::{Args, Builder, ConfigErrorKind, Scope, Spec, d};
use crate::config::host::{MtuDisc, PortShare, PullFilterAction, RemapUsr1, Show};

fn flag(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    let h = &mut b.cfg.host;
    let f = match a.name {
        "route-nopull" => &mut h.route_nopull,
        "route-noexec" => &mut h.route_noexec,
        "ifconfig-noexec" => &mut h.ifconfig_noexec,
        "block-ipv6" => &mut h.block_ipv6,
        "mlock" => &mut h.mlock,
        "suppress-timestamps" => &mut h.suppress_timestamps,
        "machine-readable-output" => &mut h.machine_readable_output,
        "up-delay" => &mut h.up_delay,
        "up-restart" => &mut h.up_restart,
        "persist-local-ip" => &mut h.persist_local_ip,
        "mtu-test" => &mut h.mtu_test,
        "allow-recursive-routing" => &mut h.allow_recursive_routing,
        "opt-verify" => &mut h.opt_verify,
        "multihome" => &mut h.multihome,
        other => unreachable!("flag() is only given its own names, not {other}"),
    };
    *f = true;
    Ok(())
}

/// 2.6 takes these numbers with `atoi`, so a negative value is read, and
/// then refused by the check each directive has.
fn int(a: &Args<'_>, i: usize) -> Result<i64, ConfigErrorKind> {
    a.word(i)?
        .parse::<i64>()
        .map_err(|_| a.invalid(i, "a decimal number"))
}

fn positive(a: &Args<'_>, i: usize, msg: &str) -> Result<u32, ConfigErrorKind> {
    match int(a, i)? {
        n @ 1..=0xFFFF_FFFF => Ok(n as u32),
        _ => Err(a.invalid(i, msg)),
    }
}

/// The network, process and script directives.
pub(crate) static HOST_DIRECTIVES: &[Spec] = &[
    // what the client takes from a PUSH_REPLY
    d("route-nopull", 0, 0, flag),
    d("pull-filter", 2, 2, |b, a| {
        let action = match a.word(0)? {
            "accept" => PullFilterAction::Accept,
            "ignore" => PullFilterAction::Ignore,
            "reject" => PullFilterAction::Reject,
            _ => return Err(a.invalid(0, "accept, ignore or reject (Unknown --pull-filter type)")),
        };
        let text = a.word(1)?.to_string();
        b.cfg.host.pull_filter.rules.push((action, text));
        Ok(())
    }),
    // host effects
    d("route-noexec", 0, 0, flag),
    d("ifconfig-noexec", 0, 0, flag),
    d("block-ipv6", 0, 0, flag),
    // sockets
    d("mark", 1, 1, |b, a| {
        // atoi: 2.6 passes the value to SO_MARK as an unsigned int.
        b.cfg.host.mark = Some(int(a, 0)? as u32);
        Ok(())
    }),
    d("bind", 0, 1, |b, a| {
        match a.words.first().map(String::as_str) {
            None => {}
            Some("ipv6only") => b.cfg.host.bind_ipv6only = true,
            // 2.6 ignores any other word here.
            Some(_) => {}
        }
        b.cfg.host.bind = true;
        Ok(())
    }),
    d("mtu-disc", 1, 1, |b, a| {
        b.cfg.host.mtu_disc = Some(match a.word(0)? {
            "no" => MtuDisc::No,
            "maybe" => MtuDisc::Maybe,
            "yes" => MtuDisc::Yes,
            _ => return Err(a.invalid(0, "'yes', 'maybe', or 'no' (invalid --mtu-disc type)")),
        });
        Ok(())
    }),
    d("tcp-nodelay", 0, 0, |b, _| {
        b.cfg.host.tcp_nodelay = true;
        b.cfg.host.push_tcp_nodelay = true;
        Ok(())
    }),
    d("socket-flags", 0, 16, |b, a| {
        for (i, w) in a.words.iter().enumerate() {
            if w != "TCP_NODELAY" {
                return Err(a.invalid(i, "TCP_NODELAY (unknown socket flag)"));
            }
            b.cfg.host.tcp_nodelay = true;
        }
        Ok(())
    })
    .scope(Scope::CONFIG_INSTANCE),
    d("link-mtu", 1, 1, link_mtu),
    d("udp-mtu", 1, 1, link_mtu),
    d("shaper", 1, 1, |b, a| {
        let v = int(a, 0)?;
        if !(1..=100_000_000).contains(&v) {
            return Err(a.invalid(0, "a shaper value between 1 and 100000000"));
        }
        b.cfg.host.shaper = Some(v as u32);
        Ok(())
    }),
    // the process
    d("nice", 1, 1, |b, a| {
        b.cfg.host.nice = Some(int(a, 0)?.clamp(-20, 19) as i32);
        Ok(())
    }),
    d("mlock", 0, 0, flag),
    d("chroot", 1, 1, |b, a| {
        b.cfg.host.chroot = Some(a.path(0)?);
        Ok(())
    }),
    d("tmp-dir", 1, 1, |b, a| {
        b.cfg.host.tmp_dir = Some(a.path(0)?);
        Ok(())
    }),
    d("remap-usr1", 1, 1, |b, a| {
        b.cfg.host.remap_usr1 = Some(match a.word(0)? {
            "SIGHUP" => RemapUsr1::Hup,
            "SIGTERM" => RemapUsr1::Term,
            _ => return Err(a.invalid(0, "'SIGHUP' or 'SIGTERM' (--remap-usr1 parm)")),
        });
        Ok(())
    }),
    d("suppress-timestamps", 0, 0, flag),
    d("machine-readable-output", 0, 0, flag),
    d("up-delay", 0, 0, flag),
    d("up-restart", 0, 0, flag),
    d("persist-local-ip", 0, 0, flag),
    d("mtu-test", 0, 0, flag),
    d("allow-recursive-routing", 0, 0, flag),
    d("opt-verify", 0, 0, flag),
    d("multihome", 0, 0, flag),
    d("echo", 0, 255, echo).scope(Scope::CONFIG_INSTANCE),
    d("parameter", 0, 255, echo).scope(Scope::CONFIG_INSTANCE),
    // scripts
    d("learn-address", 1, 1, |b, a| {
        b.cfg.host.learn_address = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    d("ipchange", 1, 1, |b, a| {
        // 2.6 turns commas into blanks (the script once came from a
        // pushed option).
        b.cfg.host.ipchange = Some(a.nonempty(0)?.replace(',', " "));
        Ok(())
    }),
    d("tls-verify", 1, 1, |b, a| {
        b.cfg.host.tls_verify = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    d("max-routes", 1, 1, |b, a| {
        b.warn(
            a.span,
            "DEPRECATED OPTION: --max-routes option ignored. The number of routes is unlimited \
             as of OpenVPN 2.4. This option will be removed in a future version, please remove \
             it from your configuration."
                .into(),
        );
        Ok(())
    }),
    d("route-pre-down", 1, 1, |b, a| {
        b.cfg.host.route_pre_down = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    d("setenv-safe", 1, 2, |b, a| {
        // 2.6's setenv_str_safe: the name gains the OPENVPN_ prefix.
        let name = format!("OPENVPN_{}", a.nonempty(0)?);
        let value = a.words.get(1).cloned().unwrap_or_default();
        b.cfg.setenv.push((name, value));
        Ok(())
    }),
    // the server's bounds
    d("connect-freq", 2, 2, |b, a| {
        let (n, per) = (int(a, 0)?, int(a, 1)?);
        if n < 0 || per < 0 {
            return Err(a.invalid(0, "numbers > 0 (--connect-freq parms)"));
        }
        b.cfg.host.connect_freq = Some((n as u32, per as u32));
        Ok(())
    }),
    d("max-routes-per-client", 1, 1, |b, a| {
        b.cfg.host.max_routes_per_client = int(a, 0)?.clamp(1, i64::from(u32::MAX)) as u32;
        Ok(())
    })
    .scope(Scope::CONFIG_INSTANCE),
    d("stale-routes-check", 1, 2, |b, a| {
        let age = int(a, 0)?;
        let every = if a.words.len() > 1 { int(a, 1)? } else { age };
        if age < 1 || every < 1 {
            return Err(a.invalid(0, "an aging time and check interval >= 1"));
        }
        b.cfg.host.stale_routes_check = Some((age as u32, every as u32));
        Ok(())
    }),
    d("tcp-queue-limit", 1, 1, |b, a| {
        b.cfg.host.tcp_queue_limit = positive(a, 0, "a tcp-queue-limit > 0")?;
        Ok(())
    }),
    d("bcast-buffers", 1, 1, |b, a| {
        b.cfg.host.bcast_buffers = positive(a, 0, "a bcast-buffers value > 0")?;
        Ok(())
    }),
    d("port-share", 2, 3, |b, a| {
        b.cfg.host.port_share = Some(PortShare {
            host: a.nonempty(0)?.to_string(),
            port: a.port(1)?,
            journal: a.words.get(2).map(std::path::PathBuf::from),
        });
        Ok(())
    }),
    d("show-ciphers", 0, 0, show),
    d("show-digests", 0, 0, show),
    d("show-tls", 0, 0, show),
    d("show-curves", 0, 0, show),
    d("show-groups", 0, 0, show),
    d("show-engines", 0, 0, show),
    d("hash-size", 2, 2, |b, a| {
        let (r, v) = (int(a, 0)?, int(a, 1)?);
        if r < 1 || v < 1 {
            return Err(a.invalid(0, "sizes >= 1 (preferably a power of 2)"));
        }
        b.cfg.host.hash_size = (r as u32, v as u32);
        Ok(())
    }),
];

fn link_mtu(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    // positive_atoi: anything not a positive number counts as 0, which
    // 2.6 then refuses when it sizes the frame.
    b.cfg.host.link_mtu = Some(positive(a, 0, "a positive link MTU")?);
    Ok(())
}

fn echo(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    b.cfg.host.echo.push(a.words.join(" "));
    Ok(())
}

fn show(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    b.cfg.host.show = Show::from_arg(a.name);
    Ok(())
}
