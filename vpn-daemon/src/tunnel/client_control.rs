//! The client's control half beside the session: the checks of the
//! server's certificate chain (`tls-verify` script, TLS_VERIFY/TLS_FINAL
//! plugin hooks) and `ipchange`, run when the first key exchange ends.

use std::net::{IpAddr, SocketAddr};

use crate::host::scripts::{ScriptEnv, ScriptRunner, ScriptType};
use crate::proto::session::Session;

/// `ipchange CMD`: 2.6 runs it with the server's address and port once the
/// link is authenticated, with `trusted_ip`/`trusted_port` set.
pub(crate) async fn run_ipchange(runner: &ScriptRunner, cmd: &str, peer: SocketAddr) {
    let mut env = ScriptEnv::new();
    env.set_trusted(peer);
    let ip = match peer.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        ip => ip,
    };
    // One argument "[AF_INET]IP PORT", as ipchange_fmt prints it.
    let af = if ip.is_ipv4() { "AF_INET" } else { "AF_INET6" };
    let args = [format!("[{af}]{ip} {}", peer.port())];
    match runner
        .run(cmd, ScriptType::IpChange, &args, &env, None)
        .await
    {
        Ok(o) if o.success => tracing::info!(script = %cmd, "ipchange script done"),
        Ok(o) => tracing::warn!(script = %cmd, code = ?o.exit_code, "ipchange script failed"),
        Err(e) => tracing::warn!(error = %e, "ipchange script not run"),
    }
}

/// `tls-verify CMD DEPTH SUBJECT` for each certificate of the server's
/// chain (CA first), with the certificate variables; false on a refusal.
pub(crate) async fn client_tls_verify(
    session: &Session,
    runner: &ScriptRunner,
    cmd: &str,
    server: SocketAddr,
) -> bool {
    let mut env = ScriptEnv::new();
    env.set_untrusted(server);
    for (depth, cert) in session.peer_chain().iter().enumerate().rev() {
        crate::server::cert_env::set_cert_env(&mut env, depth, cert);
        let subject = crate::proto::tls::subject_string(cert.subject_name());
        let args = [depth.to_string(), subject];
        let ok = runner
            .run(cmd, ScriptType::TlsVerify, &args, &env, None)
            .await
            .is_ok_and(|o| o.success);
        if !ok {
            return false;
        }
    }
    true
}

/// The plugin hooks of a client's first key exchange, in 2.6's order:
/// TLS_VERIFY for each certificate of the server's chain (CA first),
/// TLS_FINAL, then IPCHANGE with the server's address. False when a
/// plugin refused (2.6 fails the handshake).
pub(crate) async fn client_tls_plugins(session: &Session, server: SocketAddr) -> bool {
    use crate::plugin::{Hook, Status};
    let Some(h) = crate::plugin::host() else {
        return true;
    };
    let mut env = ScriptEnv::new();
    env.set_untrusted(server);
    let chain = session.peer_chain();
    for (depth, cert) in chain.iter().enumerate().rev() {
        crate::server::cert_env::set_cert_env(&mut env, depth, cert);
        if depth == 0 {
            // 2.6 takes the common name from the leaf before its check.
            let cn = cert
                .subject_name()
                .entries_by_nid(openssl::nid::Nid::COMMONNAME)
                .next()
                .and_then(|e| e.data().to_string().ok());
            env.set_opt("common_name", cn);
        }
        if h.defined(Hook::TlsVerify) {
            let subject = crate::proto::tls::subject_string(cert.subject_name());
            let args = [depth.to_string(), subject];
            let r = h.call_verify(None, depth, cert.clone(), &args, &env).await;
            if r.status != Status::Success {
                return false;
            }
        }
    }
    // From here on every hook sees the certificate variables (2.6 keeps
    // them in its top-level env).
    h.export(&env);
    if h.call(Hook::TlsFinal, None, &[], &env).await.status != Status::Success {
        return false;
    }
    let mut trusted = ScriptEnv::new();
    trusted.set_trusted(server);
    h.export(&trusted);
    let r = h
        .call(
            Hook::IpChange,
            None,
            &[crate::plugin::ipchange_arg(server)],
            &trusted,
        )
        .await;
    if r.status != Status::Success {
        tracing::warn!("WARNING: ipchange plugin call failed");
    }
    true
}
