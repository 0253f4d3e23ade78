//! One client's authentication as a task (OpenVPN's `ssl_verify.c` and the
//! `client-connect` part of `multi.c`): the user/pass script and plugins,
//! username-as-common-name, the ccd file, `client-connect`; and what it
//! yields for the control half to apply.

use std::net::SocketAddr;

use crate::config::Config;
use crate::host::scripts::{Credentials, ScriptEnv, ScriptRunner, ScriptType};
use crate::io::clock;
use crate::mgmt::status::SystemLocalTime;
use crate::server::ccd::{CcdError, CcdOptions, ClientConfigDir};
use crate::server::peers::PeerId;

/// The result of an authentication task.
#[derive(Debug)]
pub struct AuthResult {
    pub(super) peer: PeerId,
    pub(super) auth_gen: u64,
    pub(super) accept: Result<Accepted, Refused>,
}

/// Why a client is refused: for the log, and what its `AUTH_FAILED`
/// says (a plugin's `auth_failed_reason_file`).
#[derive(Debug)]
pub(super) struct Refused {
    pub(super) log: String,
    pub(super) client_reason: Option<String>,
}

impl From<String> for Refused {
    fn from(log: String) -> Self {
        Refused {
            log,
            client_reason: None,
        }
    }
}

impl From<&str> for Refused {
    fn from(log: &str) -> Self {
        log.to_string().into()
    }
}

#[derive(Debug)]
pub(super) struct Accepted {
    pub(super) common_name: Option<String>,
    pub(super) username: Option<String>,
    pub(super) ccd: Option<CcdOptions>,
    /// Extra config lines from a client-connect script.
    pub(super) connect_lines: Option<String>,
    /// The environment the checks ran with.
    pub(super) env: ScriptEnv,
}

/// ccd options plus a client-connect script's: the script's lines add to
/// (and for addresses override) the file's.
pub(super) fn merge_ccd(base: Option<CcdOptions>, extra: CcdOptions) -> CcdOptions {
    let Some(mut b) = base else { return extra };
    if extra.ifconfig_push.is_some() {
        b.ifconfig_push = extra.ifconfig_push;
    }
    if extra.ifconfig_ipv6_push.is_some() {
        b.ifconfig_ipv6_push = extra.ifconfig_ipv6_push;
    }
    b.iroutes_v4.extend(extra.iroutes_v4);
    b.iroutes_v6.extend(extra.iroutes_v6);
    b.push_edits.extend(extra.push_edits);
    b.disable |= extra.disable;
    b
}

/// The checks of one authentication, in 2.6's order: user/pass script,
/// username-as-common-name, ccd (`disable`, `ccd-exclusive`), client-connect.
#[allow(clippy::too_many_arguments)]
pub(super) async fn authenticate(
    cfg: &Config,
    runner: &ScriptRunner,
    ccd_dir: Option<&ClientConfigDir>,
    addr: SocketAddr,
    plugin: Option<crate::plugin::ClientId>,
    (first, inherited, chain, peer_env): (bool, ScriptEnv, Vec<openssl::x509::X509>, ScriptEnv),
    username: Option<String>,
    password: Option<String>,
    cert_cn: Option<String>,
) -> Result<Accepted, Refused> {
    // A renegotiation starts from what the instance's env already holds.
    let mut env = inherited;
    env.set_untrusted(addr);
    let host = crate::plugin::host();
    // The chain from the CA down to the client's certificate, as 2.6's
    // verify callback sees it: each depth's variables, and TLS_VERIFY.
    // (The handshake is done by now: a refusal here is an AUTH_FAILED,
    // where 2.6 fails the TLS handshake itself.)
    crate::server::cert_env::clear_x509_env(&mut env);
    for (depth, cert) in chain.iter().enumerate().rev() {
        crate::server::cert_env::set_cert_env(&mut env, depth, cert);
        if depth == 0 {
            // 2.6 takes the common name from the leaf before its check.
            env.set_opt("common_name", cert_cn.as_deref());
        }
        if let Some(h) = &host
            && h.defined(crate::plugin::Hook::TlsVerify)
        {
            let subject = crate::proto::tls::subject_string(cert.subject_name());
            let args = [depth.to_string(), subject.clone()];
            let r = h
                .call_verify(plugin, depth, cert.clone(), &args, &env)
                .await;
            if r.status != crate::plugin::Status::Success {
                return Err(format!("VERIFY PLUGIN ERROR: depth={depth}, {subject}").into());
            }
        }
        // `tls-verify CMD DEPTH SUBJECT`, after the plugin, as 2.6.
        if let Some(cmd) = &cfg.host.tls_verify {
            let subject = crate::proto::tls::subject_string(cert.subject_name());
            let args = [depth.to_string(), subject.clone()];
            let ok = runner
                .run(cmd, ScriptType::TlsVerify, &args, &env, None)
                .await
                .is_ok_and(|o| o.success);
            if !ok {
                return Err(format!("VERIFY SCRIPT ERROR: depth={depth}, {subject}").into());
            }
        }
    }
    env.set_opt("common_name", cert_cn.as_deref());
    // The peer-info arrives with the credentials (2.6's
    // output_peer_info_env in key_method_2_read).
    env.extend(&peer_env);
    // 2.6 keeps the username in the session's env from here on
    // (set_verify_user_pass_env).
    env.set_opt("username", username.as_deref().filter(|u| !u.is_empty()));
    if let Some(h) = &host
        && h.defined(crate::plugin::Hook::AuthUserPassVerify)
    {
        crate::tunnel::plugin_auth::verify_user_pass(
            cfg,
            h,
            plugin,
            &runner.tmp_dir,
            &env,
            username.as_deref().unwrap_or_default(),
            password.as_deref().unwrap_or_default(),
        )
        .await
        .map_err(|(log, client_reason)| Refused { log, client_reason })?;
    }
    if let Some(v) = &cfg.auth_user_pass_verify {
        // 2.6 refuses a client that gave no username or no password unless
        // `auth-user-pass-optional`, which hands the script empty values.
        let missing = username.as_deref().is_none_or(str::is_empty)
            || password.as_deref().is_none_or(str::is_empty);
        if missing && !cfg.extras.auth_user_pass_optional {
            return Err("Auth Username/Password was not provided by peer".into());
        }
        let creds = match v.method {
            crate::config::VerifyMethod::ViaEnv => Credentials::ViaEnv {
                username: username.clone().unwrap_or_default(),
                password: password.clone().unwrap_or_default(),
            },
            crate::config::VerifyMethod::ViaFile => Credentials::ViaFile {
                username: username.clone().unwrap_or_default(),
                password: password.clone().unwrap_or_default(),
            },
        };
        match runner
            .run(
                &v.command,
                ScriptType::UserPassVerify,
                &[],
                &env,
                Some(&creds),
            )
            .await
        {
            Ok(o) if o.success => {}
            Ok(o) => {
                return Err(format!("auth-user-pass-verify exited with {:?}", o.exit_code).into());
            }
            Err(e) => return Err(e.to_string().into()),
        }
    }
    // 2.6 calls TLS_FINAL once the key exchange (and password check) is
    // done; a failure fails the client.
    if let Some(h) = &host
        && h.defined(crate::plugin::Hook::TlsFinal)
    {
        let r = h
            .call(crate::plugin::Hook::TlsFinal, plugin, &[], &env)
            .await;
        if r.status != crate::plugin::Status::Success {
            return Err("TLS_FINAL plugin call failed".into());
        }
    }
    if first {
        // The connection counts as initiated: trusted_* and IPCHANGE
        // (2.6's link_socket_connection_initiated, with the top-level
        // plugin context and the address as one "[AF_INET]ip port" word).
        env.set_trusted(addr);
        if let Some(h) = &host
            && h.defined(crate::plugin::Hook::IpChange)
        {
            let r = h
                .call(
                    crate::plugin::Hook::IpChange,
                    None,
                    &[crate::plugin::ipchange_arg(addr)],
                    &env,
                )
                .await;
            if r.status != crate::plugin::Status::Success {
                tracing::warn!("WARNING: ipchange plugin call failed");
            }
        }
    }
    let common_name = if cfg.username_as_common_name {
        username.clone().or(cert_cn)
    } else {
        cert_cn
    };
    let ccd = match (ccd_dir, &common_name) {
        (Some(d), Some(cn)) => match d.load(cn) {
            Ok(l) => l.options().cloned(),
            // No file for this name: `ccd-exclusive` refuses below.
            Err(CcdError::ExclusiveNoFile { .. } | CcdError::UnsafeName(_)) => None,
            // A file that is there but cannot be read or tokenized would
            // lose its `disable`, `ifconfig-push` or `iroute`: the client
            // is refused (a bad line inside a readable file is skipped).
            Err(e) => return Err(format!("client-config-dir: {e}").into()),
        },
        _ => None,
    };
    if ccd.as_ref().is_some_and(|c| c.disable) {
        return Err("disabled by its client-config-dir file".into());
    }
    if cfg.ccd_exclusive && ccd.is_none() {
        return Err("ccd-exclusive and no client-config-dir file".into());
    }
    let mut connect_lines = None;
    env.set_opt("common_name", common_name.as_deref());
    env.set_opt("username", username.as_deref());
    // 2.6's client-connect environment adds the time.
    env.set_time(clock::unix_time(), &SystemLocalTime);
    // Plugins (v1, then v2) before the script, as 2.6's
    // client_connect_handlers; their config lines add up.
    if let Some(h) = host.as_ref().filter(|_| first) {
        let lines =
            crate::tunnel::plugin_auth::client_connect(cfg, h, plugin, &runner.tmp_dir, &env)
                .await
                .map_err(Refused::from)?;
        if !lines.is_empty() {
            connect_lines = Some(lines);
        }
    }
    if let Some(cmd) = cfg.scripts.client_connect.as_ref().filter(|_| first) {
        match runner.run_client_connect(cmd, &env).await {
            Ok((o, text)) if o.success => {
                connect_lines = match (connect_lines, text) {
                    (Some(a), Some(b)) => Some(a + "\n" + &b),
                    (a, b) => a.or(b),
                }
            }
            Ok((o, _)) => {
                return Err(format!("client-connect exited with {:?}", o.exit_code).into());
            }
            Err(e) => return Err(e.to_string().into()),
        }
    }
    Ok(Accepted {
        common_name,
        username,
        ccd,
        connect_lines,
        env,
    })
}
