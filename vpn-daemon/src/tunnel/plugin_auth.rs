//! The server's plugin hooks of one client's authentication, as 2.6's
//! `verify_user_pass_plugin` (ssl_verify.c) and
//! `multi_client_connect_call_plugin_v1/_v2` (multi.c) do them, deferred
//! answers included. They run inside the client's authentication task, so
//! waiting for a plugin stalls nobody else.

use std::path::Path;
use std::time::Duration;

use crate::config::Config;
use crate::host::scripts::ScriptEnv;
use crate::plugin::{AuthControlFiles, ClientId, ControlState, Hook, PluginHost, Status};

/// AUTH_USER_PASS_VERIFY: `Ok` when the plugins accept (at once or through
/// `auth_control_file` within `hand-window`), else the reason for the log
/// and the plugin's reason for the client (`auth_failed_reason_file`).
pub(crate) async fn verify_user_pass(
    cfg: &Config,
    host: &PluginHost,
    client: Option<ClientId>,
    tmp_dir: &Path,
    base: &ScriptEnv,
    username: &str,
    password: &str,
) -> Result<(), (String, Option<String>)> {
    if username.is_empty() {
        return Err((
            "TLS Auth Error: peer provided a blank username".into(),
            None,
        ));
    }
    let files = AuthControlFiles::create(tmp_dir).map_err(|e| {
        (
            format!(
                "could not create deferred auth control file in {}: {e}",
                tmp_dir.display()
            ),
            None,
        )
    })?;
    let mut env = base.clone();
    env.set("username", username).set("password", password);
    files.set_env(&mut env);
    let r = host.call(Hook::AuthUserPassVerify, client, &[], &env).await;
    let reason = || files.failed_reason();
    match r.status {
        Status::Success => Ok(()),
        Status::Error => Err(("auth plugin refused the credentials".into(), reason())),
        Status::Deferred => {
            // A request for a pending-auth method (web login...) needs
            // AUTH_PENDING, which we do not send; 2.6 refuses such a
            // client too when it does not announce the method in IV_SSO.
            match files.pending_request() {
                Ok(None) => {}
                Ok(Some((_, method, _))) => {
                    let why = format!(
                        "Authentication failed, required pending auth method '{method}' not supported"
                    );
                    return Err((why.clone(), Some(why)));
                }
                Err(e) => return Err((e, None)),
            }
            match files.wait(crate::plugin::deferred_limit(cfg)).await {
                ControlState::Accepted => Ok(()),
                ControlState::Denied => Err((
                    "deferred auth plugin refused the credentials".into(),
                    reason(),
                )),
                ControlState::Pending => Err((
                    "deferred authentication did not finish within hand-window".into(),
                    None,
                )),
            }
        }
    }
}

/// CLIENT_CONNECT (a config file as argument, deferral through
/// `client_connect_deferred_file`) then CLIENT_CONNECT_V2 (config lines
/// in the `config` return column, deferral through DEFER_V2 calls): the
/// config lines they produced.
pub(crate) async fn client_connect(
    cfg: &Config,
    host: &PluginHost,
    client: Option<ClientId>,
    tmp_dir: &Path,
    base: &ScriptEnv,
) -> Result<String, String> {
    let mut lines = String::new();
    let limit = crate::plugin::deferred_limit(cfg);
    if host.defined(Hook::ClientConnect) {
        let mk = |tag| {
            crate::host::scripts::create_temp_path(tmp_dir, tag)
                .map_err(|e| format!("client-connect plugin: {e}"))
        };
        let config = TempPath(mk("cc")?);
        let deferred = TempPath(mk("ccr")?);
        let mut env = base.clone();
        env.set("client_connect_config_file", config.0.display().to_string())
            .set(
                "client_connect_deferred_file",
                deferred.0.display().to_string(),
            );
        let args = [config.0.display().to_string()];
        let r = host.call(Hook::ClientConnect, client, &args, &env).await;
        let mut state = match r.status {
            Status::Success => Cc::Succeeded,
            Status::Deferred => Cc::Deferred,
            Status::Error => return Err("WARNING: client-connect plugin call failed".into()),
        };
        // The file's answer overrides (ccs_test_deferred_ret_file).
        match deferred_file(&deferred.0) {
            Some(Cc::Failed) => state = Cc::Failed,
            Some(Cc::Deferred) if state == Cc::Succeeded => state = Cc::Deferred,
            _ => {}
        }
        let step = Duration::from_millis(100);
        let mut left = (limit.as_millis() / step.as_millis()).max(1);
        while state == Cc::Deferred && left > 0 {
            left -= 1;
            tokio::time::sleep(step).await;
            match deferred_file(&deferred.0) {
                Some(Cc::Succeeded) => state = Cc::Succeeded,
                Some(Cc::Failed) => state = Cc::Failed,
                _ => {}
            }
        }
        match state {
            Cc::Succeeded => {
                // Bounded like any ccd file a client's connect produces.
                if let Some(b) = crate::plugin::read_bounded(&config.0, 256 * 1024) {
                    lines.push_str(&String::from_utf8_lossy(&b));
                }
            }
            Cc::Deferred => return Err("deferred client-connect plugin timed out".into()),
            Cc::Failed => return Err("client-connect plugin refused the client".into()),
        }
    }
    if host.defined(Hook::ClientConnectV2) {
        let mut r = host.call(Hook::ClientConnectV2, client, &[], base).await;
        if r.status == Status::Deferred {
            if !host.defined(Hook::ClientConnectDeferV2) {
                return Err("A plugin that defers from the OPENVPN_PLUGIN_CLIENT_CONNECT_V2 call must also declare support for OPENVPN_PLUGIN_CLIENT_CONNECT_DEFER_V2".into());
            }
            // 2.6 asks again from its loop until the plugin stops deferring.
            let step = Duration::from_millis(250);
            let mut left = (limit.as_millis() / step.as_millis()).max(1);
            while r.status == Status::Deferred && left > 0 {
                left -= 1;
                tokio::time::sleep(step).await;
                r = host
                    .call(Hook::ClientConnectDeferV2, client, &[], base)
                    .await;
            }
        }
        match r.status {
            Status::Success => {
                for v in r.column("config") {
                    if !lines.is_empty() && !lines.ends_with('\n') {
                        lines.push('\n');
                    }
                    lines.push_str(&v);
                }
            }
            Status::Deferred => return Err("deferred client-connect-v2 plugin timed out".into()),
            Status::Error => return Err("WARNING: client-connect-v2 plugin call failed".into()),
        }
    }
    Ok(lines)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cc {
    Succeeded,
    Deferred,
    Failed,
}

/// `ccs_test_deferred_ret_file`: `1`, `2`, `0`; empty or missing is no
/// say (`None`); anything else is a failure.
fn deferred_file(p: &Path) -> Option<Cc> {
    match crate::plugin::read_bounded(p, 1)?.first()? {
        b'1' => Some(Cc::Succeeded),
        b'2' => Some(Cc::Deferred),
        _ => Some(Cc::Failed),
    }
}

/// A temporary file removed when dropped.
struct TempPath(std::path::PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
