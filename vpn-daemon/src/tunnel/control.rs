//! The control half of the server's clients (OpenVPN's `multi.c` and
//! `ssl_verify.c` around the sessions): authentication run as a task
//! (`auth-user-pass-verify`, plugins, ccd, `client-connect`), so a slow
//! script never stalls the data path; then addresses from ccd and the
//! pool, the push list, routes and `learn-address` when it succeeds.

use crate::host::scripts::{ScriptEnv, ScriptType};
use crate::io::clock;
use crate::proto::push::PushedOptions;
use crate::proto::session::AuthDecision;
use crate::server::ccd::{CcdOptions, ClientConfigDir};
use crate::server::compress::client_compression;
use crate::server::peers::Peer;
use crate::server::peers::{CnAdmission, PeerId, VpnRoutes};
use crate::server::push::{
    ClientAddresses, client_addresses, client_push_list, needs_pool_lease, vpn_routes,
};
use crate::server::vlan;
use crate::tunnel::auth::{AuthResult, authenticate, merge_ccd};
use crate::tunnel::input::Input;
use crate::tunnel::multi::{Client, Multi};

impl Multi {
    /// A removed client's hooks, in 2.6's order: client-disconnect (plugin
    /// and script), the instance's plugin contexts go, its routes are
    /// withdrawn (learn-address "delete", no env).
    pub(super) fn disconnect_hooks(&self, p: &Peer<Client>) {
        if let Some(h) = crate::plugin::host() {
            if p.payload.connect_ran {
                let env = self.disconnect_env(p, p.payload.env.clone());
                let call = h.call(
                    crate::plugin::Hook::ClientDisconnect,
                    p.payload.plugin,
                    &[],
                    &env,
                );
                tokio::spawn(async move {
                    if call.await.status != crate::plugin::Status::Success {
                        tracing::warn!("WARNING: client-disconnect plugin call failed");
                    }
                });
            }
            if let Some(c) = p.payload.plugin {
                h.client_drop(c);
            }
            for a in &p.payload.learned {
                let args = ["delete".to_string(), a.clone()];
                let call = h.call_exact(
                    crate::plugin::Hook::LearnAddress,
                    None,
                    &args,
                    &ScriptEnv::new(),
                );
                tokio::spawn(call);
            }
        }
        if p.payload.connect_ran {
            self.learn_address("delete", p.routes(), None);
        }
        if let (Some(cmd), true) = (&self.cfg.scripts.client_disconnect, p.payload.connect_ran) {
            let mut env = ScriptEnv::new();
            env.set_untrusted(p.transport());
            env.set_opt("common_name", p.common_name());
            env.set_opt("username", p.payload.username.as_deref());
            let env = self.disconnect_env(p, env);
            let runner = self.runner.clone();
            let cmd = cmd.clone();
            tokio::spawn(async move {
                if let Err(e) = runner
                    .run(&cmd, ScriptType::ClientDisconnect, &[], &env, None)
                    .await
                {
                    tracing::warn!(error = %e, "client-disconnect");
                }
            });
        }
    }

    /// `env` with what client-disconnect is told: the client's addresses,
    /// its byte counts and how long it was connected.
    fn disconnect_env(&self, p: &Peer<Client>, mut env: ScriptEnv) -> ScriptEnv {
        crate::server::cert_env::set_client_addresses(
            &mut env,
            &p.payload.addrs,
            self.cfg.topology,
        );
        let secs = clock::unix_time().saturating_sub(p.payload.since);
        env.set_disconnect(p.payload.bytes_in, p.payload.bytes_out, secs);
        env
    }

    /// Runs the credential checks (scripts in a task).
    pub(super) fn start_auth(
        &mut self,
        id: PeerId,
        username: Option<String>,
        password: Option<String>,
        common_name: Option<String>,
    ) {
        let Some(p) = self.peers.get_mut(id) else {
            return;
        };
        let auth_gen = self.next_gen;
        self.next_gen += 1;
        p.payload.auth_gen = auth_gen;
        let addr = p.transport();
        let plugin = p.payload.plugin;
        // client-connect runs once per client instance (2.6's
        // multi_connection_established), not again at renegotiations.
        let first = !p.payload.connect_ran;
        let inherited = p.payload.env.clone();
        let chain = p.payload.session.peer_chain();
        let mut peer_env = ScriptEnv::new();
        crate::server::cert_env::set_peer_info_env(&mut peer_env, &p.payload.peer_info);
        let cfg = self.cfg.clone();
        let runner = self.runner.clone();
        let tx = self.inputs.clone();
        let ccd = self.ccd.clone();
        tokio::spawn(async move {
            let accept = authenticate(
                &cfg,
                &runner,
                ccd.as_deref(),
                addr,
                plugin,
                (first, inherited, chain, peer_env),
                username,
                password,
                common_name,
            )
            .await;
            let _ = tx.send(Input::Auth(Box::new(AuthResult {
                peer: id,
                auth_gen,
                accept,
            })));
        });
    }

    /// Finishes an authentication: addresses, push list, decision.
    pub fn auth_done(&mut self, r: AuthResult) -> Option<PeerId> {
        let id = r.peer;
        let now = clock::now();
        let duplicate_cn = self.cfg.duplicate_cn;
        let p = self.peers.get(id)?;
        if p.payload.auth_gen != r.auth_gen {
            return None;
        }
        let first = p.payload.lease.is_none() && !p.payload.connect_ran;
        let acc = match r.accept {
            Err(r) => {
                tracing::warn!(peer_id = id, reason = %r.log, "authentication failed");
                if let Some(p) = self.peers.get_mut(id) {
                    let _ = p
                        .payload
                        .session
                        .auth_decision(now, AuthDecision::Deny(r.client_reason));
                }
                return Some(id);
            }
            Ok(a) => a,
        };
        if first {
            if let Some(cn) = &acc.common_name {
                let _ = self.peers.set_common_name(id, Some(cn.clone()));
                if let CnAdmission::ReplaceExisting(old) =
                    self.peers.admit_common_name(cn, id, duplicate_cn)
                {
                    for o in old {
                        tracing::info!(peer_id = o, cn = %cn, "replaced by a new connection with the same common name");
                        self.remove(o);
                    }
                }
            }
            let mut ccd = acc.ccd;
            if let Some(lines) = &acc.connect_lines {
                // Without client-config-dir the lines still apply (2.6
                // imports them either way); only their `config` includes
                // need a directory, the working one.
                let fallback;
                let dir = match &self.ccd {
                    Some(d) => d.as_ref(),
                    None => {
                        fallback = ClientConfigDir {
                            dir: std::path::PathBuf::new(),
                            exclusive: false,
                            cwd: std::env::current_dir().unwrap_or_default(),
                            ifconfig_ipv6_local: self.cfg.ifconfig_ipv6.map(|i| i.local.addr()),
                        };
                        &fallback
                    }
                };
                match crate::server::ccd::parse_ccd(
                    lines.as_bytes(),
                    std::path::Path::new("client-connect"),
                    dir,
                ) {
                    Ok(o) => ccd = Some(merge_ccd(ccd, o)),
                    // Its bad lines were skipped; output that cannot be
                    // read at all would lose what it says: refused.
                    Err(e) => {
                        tracing::warn!(peer_id = id, error = %e, "client-connect output: client refused");
                        let p = self.peers.get_mut(id)?;
                        let _ = p
                            .payload
                            .session
                            .auth_decision(now, AuthDecision::Deny(None));
                        return Some(id);
                    }
                }
            }
            let o = ccd.as_ref();
            let (pi, uses_comp) = self
                .peers
                .get(id)?
                .payload
                .session
                .client_compression_hints();
            let comp = match client_compression(self.cfg.compression, pi, uses_comp, o) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(peer_id = id, error = %e, "MULTI: client rejected");
                    let p = self.peers.get_mut(id)?;
                    let _ = p
                        .payload
                        .session
                        .auth_decision(now, AuthDecision::Deny(None));
                    return Some(id);
                }
            };
            let lease = if needs_pool_lease(o) {
                match self
                    .pool
                    .as_mut()
                    .map(|pool| pool.acquire(acc.common_name.as_deref()))
                {
                    Some(Ok(l)) => Some(l),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "no address for client");
                        None
                    }
                    None => None,
                }
            } else {
                None
            };
            let addrs = client_addresses(&self.addressing, lease.as_ref(), o);
            let lines = match comp.push {
                // 2.6's migrate handler appends to the push list before the
                // ccd file is read.
                Some(extra) => {
                    let mut global = self.cfg.push.clone();
                    global.push(extra.to_string());
                    client_push_list(&global, o, &addrs)
                }
                None => client_push_list(&self.cfg.push, o, &addrs),
            };
            let mut routes = vpn_routes(&addrs, o);
            bound_routes(&mut routes, self.cfg.host.max_routes_per_client, id);
            self.learn_address("add", &routes, acc.common_name.as_deref());
            let conflicts = self.peers.set_routes(id, routes);
            if let Ok(c) = conflicts
                && !c.is_empty()
            {
                tracing::warn!(peer_id = id, others = ?c, "address or iroute taken over from other clients");
            }
            let opts = match PushedOptions::parse(&lines.join(",")) {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(error = %e, "push list not understood");
                    PushedOptions::default()
                }
            };
            if let Some(p) = self.peers.get_mut(id) {
                p.payload.env = acc.env.clone();
            }
            let learned = self.learn_addresses(id, &addrs, o, acc.common_name.as_deref());
            let p = self.peers.get_mut(id)?;
            p.payload.learned = learned;
            p.payload.lease = lease;
            p.payload.addrs = addrs;
            p.payload.username = acc.username;
            p.payload.connect_ran = true;
            p.payload.session.set_push_reply(opts);
            p.payload.session.set_compression(comp.options);
            if let Some(o) = &ccd {
                p.payload.session.override_timers(now, o.instance_timers());
                if self.cfg.vlan.is_some() {
                    p.payload.vlan_pvid =
                        vlan::ccd_pvid(o.other.iter().map(|d| d.words.as_slice()));
                }
            }
        }
        let p = self.peers.get_mut(id)?;
        if let Err(e) = p.payload.session.auth_decision(now, AuthDecision::Accept) {
            tracing::debug!(error = %e, "auth decision");
        }
        Some(id)
    }

    /// `learn-address CMD add|update|delete ADDR [CN]` for each of a
    /// client's addresses, in order (one task, so a delete never overtakes
    /// its add).
    pub(super) fn learn_address(&self, op: &'static str, routes: &VpnRoutes, cn: Option<&str>) {
        let Some(cmd) = self.cfg.host.learn_address.clone() else {
            return;
        };
        let addrs = learned_addresses(routes);
        if addrs.is_empty() {
            return;
        }
        let runner = self.runner.clone();
        let cn = cn.map(str::to_owned);
        tokio::spawn(async move {
            for a in addrs {
                let mut args = vec![op.to_owned(), a];
                if let (Some(cn), true) = (&cn, op != "delete") {
                    args.push(cn.clone());
                }
                let env = ScriptEnv::new();
                match runner
                    .run(&cmd, ScriptType::LearnAddress, &args, &env, None)
                    .await
                {
                    Ok(o) if o.success => {}
                    Ok(o) => {
                        tracing::warn!(code = ?o.exit_code, args = ?args, "learn-address script failed")
                    }
                    Err(e) => tracing::warn!(error = %e, "learn-address script not run"),
                }
            }
        });
    }

    /// LEARN_ADDRESS "add" for a client's tunnel addresses and iroutes
    /// (2.6's multi_learn_addr calls the plugin for each new route); the
    /// addresses, to delete them when it goes.
    pub(super) fn learn_addresses(
        &self,
        id: PeerId,
        addrs: &ClientAddresses,
        ccd: Option<&CcdOptions>,
        common_name: Option<&str>,
    ) -> Vec<String> {
        let Some(h) = crate::plugin::host() else {
            return Vec::new();
        };
        if !h.defined(crate::plugin::Hook::LearnAddress) {
            return Vec::new();
        }
        let plugin = self.peers.get(id).and_then(|p| p.payload.plugin);
        let env = self
            .peers
            .get(id)
            .map(|p| p.payload.env.clone())
            .unwrap_or_default();
        let mut learned = Vec::new();
        learned.extend(addrs.ipv4.map(|a| a.local.to_string()));
        learned.extend(addrs.ipv6.map(|a| a.local.to_string()));
        if let Some(o) = ccd {
            learned.extend(o.iroutes_v4.iter().map(|r| r.to_string()));
            learned.extend(o.iroutes_v6.iter().map(|r| r.to_string()));
        }
        for a in &learned {
            let args = [
                "add".to_string(),
                a.clone(),
                common_name.unwrap_or_default().to_string(),
            ];
            tokio::spawn(h.call(crate::plugin::Hook::LearnAddress, plugin, &args, &env));
        }
        learned
    }
}

/// What `learn-address` is told, as 2.6 prints its route keys: a host
/// address bare, a network as `ADDR/BITS`.
fn learned_addresses(r: &VpnRoutes) -> Vec<String> {
    let mut v = Vec::new();
    v.extend(r.ipv4.map(|a| a.to_string()));
    v.extend(r.ipv6.map(|a| a.to_string()));
    v.extend(r.iroutes_v4.iter().map(|n| n.trunc().to_string()));
    v.extend(r.iroutes_v6.iter().map(|n| n.trunc().to_string()));
    v
}

/// `max-routes-per-client`: 2.6 refuses to learn more routes for one
/// client than this and logs it; the client's own addresses come first.
fn bound_routes(r: &mut VpnRoutes, max: u32, id: PeerId) {
    let own = usize::from(r.ipv4.is_some()) + usize::from(r.ipv6.is_some());
    let room = (max as usize).saturating_sub(own);
    let total = r.iroutes_v4.len() + r.iroutes_v6.len();
    if total > room {
        tracing::warn!(
            peer_id = id,
            max,
            "max-routes-per-client limit reached: {} iroute(s) not learned",
            total - room
        );
        r.iroutes_v4.truncate(room);
        let left = room.saturating_sub(r.iroutes_v4.len());
        r.iroutes_v6.truncate(left);
    }
}

#[cfg(test)]
mod frequency_tests {
    use super::*;

    #[test]
    fn routes_beyond_max_routes_per_client_are_not_learned() {
        let mut r = VpnRoutes {
            ipv4: Some("10.8.0.2".parse().unwrap()),
            ipv6: None,
            iroutes_v4: vec![
                "10.1.0.0/24".parse().unwrap(),
                "10.2.0.0/24".parse().unwrap(),
            ],
            iroutes_v6: vec!["fd00:1::/64".parse().unwrap()],
        };
        bound_routes(&mut r, 2, 0);
        assert_eq!(r.iroutes_v4.len(), 1);
        assert!(r.iroutes_v6.is_empty());
        assert_eq!(learned_addresses(&r), ["10.8.0.2", "10.1.0.0/24"]);
    }
}
