//! OpenVPN plugins (`plugin FILE [ARGS]`, ABI v3 of 2.6): the plugin
//! thread that owns every loaded plugin, the hooks the daemon calls, and
//! deferred authentication through `auth_control_file`.
//!
//! Plugins are written for OpenVPN's single-threaded loop: they are never
//! called concurrently and some (auth-pam, down-root) talk to a helper
//! process over one socket per plugin. So one dedicated thread loads,
//! opens, calls and closes them, taking requests in order from a channel;
//! async callers await the answer, so a slow plugin (PAM asking LDAP)
//! holds up only the client being authenticated, never the data path.
//!
//! The running host is process-wide ([`host`]), as 2.6's
//! `static_plugin_common`: the hooks sit in the server, client and tunnel
//! code, which reach it without threading a handle through every loop.

mod ffi;

use std::collections::HashMap;
use std::ffi::{c_int, c_uint, c_void};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::Duration;

pub use ffi::PluginError;

use crate::config::Config;
use crate::host::scripts::ScriptEnv;

/// `OPENVPN_PLUGIN_FUNC_SUCCESS`.
const FUNC_SUCCESS: c_int = 0;
/// `OPENVPN_PLUGIN_FUNC_DEFERRED`.
const FUNC_DEFERRED: c_int = 2;
/// `OPENVPN_PLUGIN_INIT_PRE_CONFIG_PARSE`.
const INIT_PRE_CONFIG_PARSE: c_int = 1;
/// `OPENVPN_PLUGIN_INIT_PRE_DAEMON`, the default.
const INIT_PRE_DAEMON: c_int = 2;
/// `OPENVPN_PLUGIN_INIT_POST_DAEMON`.
const INIT_POST_DAEMON: c_int = 3;
/// `OPENVPN_PLUGIN_INIT_POST_UID_CHANGE`.
const INIT_POST_UID_CHANGE: c_int = 4;

/// The hooks (`OPENVPN_PLUGIN_*` type numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Hook {
    /// `OPENVPN_PLUGIN_UP`.
    Up = 0,
    /// `OPENVPN_PLUGIN_DOWN`.
    Down = 1,
    /// `OPENVPN_PLUGIN_ROUTE_UP`.
    RouteUp = 2,
    /// `OPENVPN_PLUGIN_IPCHANGE`.
    IpChange = 3,
    /// `OPENVPN_PLUGIN_TLS_VERIFY`.
    TlsVerify = 4,
    /// `OPENVPN_PLUGIN_AUTH_USER_PASS_VERIFY`.
    AuthUserPassVerify = 5,
    /// `OPENVPN_PLUGIN_CLIENT_CONNECT`.
    ClientConnect = 6,
    /// `OPENVPN_PLUGIN_CLIENT_DISCONNECT`.
    ClientDisconnect = 7,
    /// `OPENVPN_PLUGIN_LEARN_ADDRESS`.
    LearnAddress = 8,
    /// `OPENVPN_PLUGIN_CLIENT_CONNECT_V2`.
    ClientConnectV2 = 9,
    /// `OPENVPN_PLUGIN_TLS_FINAL`.
    TlsFinal = 10,
    /// `OPENVPN_PLUGIN_ROUTE_PREDOWN`.
    RoutePredown = 12,
    /// `OPENVPN_PLUGIN_CLIENT_CONNECT_DEFER`.
    ClientConnectDefer = 13,
    /// `OPENVPN_PLUGIN_CLIENT_CONNECT_DEFER_V2`.
    ClientConnectDeferV2 = 14,
    /// `OPENVPN_PLUGIN_CLIENT_CRRESPONSE`.
    ClientCrResponse = 15,
}

impl Hook {
    fn bit(self) -> c_uint {
        1 << (self as i32)
    }

    /// 2.6's `plugin_type_name`.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Up => "PLUGIN_UP",
            Hook::Down => "PLUGIN_DOWN",
            Hook::RouteUp => "PLUGIN_ROUTE_UP",
            Hook::IpChange => "PLUGIN_IPCHANGE",
            Hook::TlsVerify => "PLUGIN_TLS_VERIFY",
            Hook::AuthUserPassVerify => "PLUGIN_AUTH_USER_PASS_VERIFY",
            Hook::ClientConnect => "PLUGIN_CLIENT_CONNECT",
            Hook::ClientDisconnect => "PLUGIN_CLIENT_DISCONNECT",
            Hook::LearnAddress => "PLUGIN_LEARN_ADDRESS",
            Hook::ClientConnectV2 => "PLUGIN_CLIENT_CONNECT_V2",
            Hook::TlsFinal => "PLUGIN_TLS_FINAL",
            Hook::RoutePredown => "PLUGIN_ROUTE_PREDOWN",
            Hook::ClientConnectDefer => "PLUGIN_CLIENT_CONNECT_DEFER",
            Hook::ClientConnectDeferV2 => "PLUGIN_CLIENT_CONNECT_DEFER_V2",
            Hook::ClientCrResponse => "PLUGIN_CRRESPONSE",
        }
    }
}

/// What a hook's plugins said together (2.6's `plugin_call_ssl`): any
/// error is an error, else one deferral makes it deferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OPENVPN_PLUGIN_FUNC_SUCCESS` from all (or none intercepts it).
    Success,
    /// Some plugin failed.
    Error,
    /// A plugin will answer later (auth control file, DEFER_V2).
    Deferred,
}

/// A hook call's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResult {
    /// The combined status.
    pub status: Status,
    /// Each plugin's `return_list`, in plugin order.
    pub returns: Vec<Vec<(String, String)>>,
}

impl CallResult {
    fn success() -> Self {
        CallResult {
            status: Status::Success,
            returns: Vec::new(),
        }
    }

    /// The values named `name` (at most one per plugin, the first, as
    /// `plugin_return_get_column`), e.g. `config` of CLIENT_CONNECT_V2.
    pub fn column(&self, name: &str) -> Vec<String> {
        self.returns
            .iter()
            .filter_map(|l| l.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
            .collect()
    }
}

/// A client instance's plugin contexts (`openvpn_plugin_client_constructor_v1`).
pub type ClientId = u64;

enum Request {
    Open {
        point: c_int,
        env: Vec<String>,
        reply: mpsc::Sender<Result<(), PluginError>>,
    },
    Call {
        hook: Hook,
        client: Option<ClientId>,
        argv: Vec<String>,
        env: Vec<String>,
        /// TLS_VERIFY's certificate and its depth.
        cert: Option<(c_int, openssl::x509::X509)>,
        reply: tokio::sync::oneshot::Sender<CallResult>,
    },
    ClientNew(ClientId),
    ClientDrop(ClientId),
}

/// The plugin thread's handle.
pub struct PluginHost {
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    mask: Arc<AtomicU32>,
    next_client: AtomicU64,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Variables every call gets: 2.6's top-level environment, which
    /// starts with `setenv_settings` and `setenv` and gains the tunnel's
    /// variables at `up` and `redirect_gateway` at route-up; client
    /// instances inherit it.
    top_env: Mutex<ScriptEnv>,
}

static HOST: RwLock<Option<Arc<PluginHost>>> = RwLock::new(None);

/// The running plugins, if any `plugin` line is configured.
pub fn host() -> Option<Arc<PluginHost>> {
    HOST.read().ok().and_then(|h| h.clone())
}

/// Loads and opens the configured plugins (PRE_CONFIG_PARSE, PRE_DAEMON
/// and POST_DAEMON ones; POST_UID_CHANGE ones wait for
/// [`PluginHost::uid_changed`]) and makes them the process's [`host`].
/// Nothing to do without `plugin` lines. A plugin that does not load or
/// whose open fails is an error naming its file.
pub fn start(cfg: &Config) -> Result<(), PluginError> {
    stop();
    if cfg.plugins.is_empty() {
        return Ok(());
    }
    let h = PluginHost::start(cfg)?;
    if let Ok(mut g) = HOST.write() {
        *g = Some(Arc::new(h));
    }
    Ok(())
}

/// Closes every plugin (client contexts, then `openvpn_plugin_close_v1`,
/// then dlclose), waiting for the thread. A no-op without plugins.
pub fn stop() {
    let h = HOST.write().ok().and_then(|mut g| g.take());
    if let Some(h) = h {
        h.shutdown();
    }
}

/// How long a deferred authentication may take (2.6 gives it the
/// handshake window, `hand-window`).
pub fn deferred_limit(cfg: &Config) -> Duration {
    Duration::from_secs(u64::from(cfg.hand_window.max(1)))
}

impl PluginHost {
    fn start(cfg: &Config) -> Result<Self, PluginError> {
        let (tx, rx) = mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let mask = Arc::new(AtomicU32::new(0));
        let specs: Vec<(PathBuf, Vec<String>)> = cfg
            .plugins
            .iter()
            .map(|p| (p.path.clone(), p.argv.clone()))
            .collect();
        let base_env = base_env(cfg);
        let open_env = env_strings(&base_env);
        let m = mask.clone();
        let thread = std::thread::Builder::new()
            .name("plugins".into())
            .spawn(move || {
                let mut t = match Thread::load(&specs, m) {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for point in [INIT_PRE_CONFIG_PARSE, INIT_PRE_DAEMON, INIT_POST_DAEMON] {
                    if let Err(e) = t.open(point, &open_env) {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                }
                let _ = ready_tx.send(Ok(()));
                t.serve(rx);
            })
            .map_err(|_| PluginError::Stopped)?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(PluginError::Stopped);
            }
        }
        Ok(PluginHost {
            tx: Mutex::new(Some(tx)),
            mask,
            next_client: AtomicU64::new(1),
            thread: Mutex::new(Some(thread)),
            top_env: Mutex::new(base_env),
        })
    }

    fn send(&self, r: Request) -> bool {
        match self.tx.lock() {
            Ok(g) => g.as_ref().is_some_and(|tx| tx.send(r).is_ok()),
            Err(_) => false,
        }
    }

    /// Whether an opened plugin intercepts `hook` (`plugin_defined`).
    pub fn defined(&self, hook: Hook) -> bool {
        self.mask.load(Ordering::Acquire) & hook.bit() != 0
    }

    /// Opens the POST_UID_CHANGE plugins, after `user`/`group` took effect.
    pub fn uid_changed(&self) -> Result<(), PluginError> {
        let (reply, rx) = mpsc::channel();
        if !self.send(Request::Open {
            point: INIT_POST_UID_CHANGE,
            env: env_strings(&self.top()),
            reply,
        }) {
            return Err(PluginError::Stopped);
        }
        rx.recv().map_err(|_| PluginError::Stopped)?
    }

    fn top(&self) -> ScriptEnv {
        self.top_env.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Adds variables to the top-level environment every later call sees
    /// (the tunnel's after `up`, as 2.6 keeps them in its `es`).
    pub fn export(&self, env: &ScriptEnv) {
        if let Ok(mut e) = self.top_env.lock() {
            e.extend(env);
        }
    }

    /// A new client instance: its per-client plugin contexts.
    pub fn client_new(&self) -> ClientId {
        let id = self.next_client.fetch_add(1, Ordering::Relaxed);
        self.send(Request::ClientNew(id));
        id
    }

    /// The client instance is gone: its contexts are destroyed (after any
    /// call already queued for it).
    pub fn client_drop(&self, id: ClientId) {
        self.send(Request::ClientDrop(id));
    }

    /// Calls `hook` in every plugin that intercepts it, in order, with
    /// `args` after the plugin's path in argv, and `env` plus the base
    /// variables (never `script_type`, which 2.6 deletes for plugins).
    /// The request is queued before this returns, so calls made one after
    /// the other reach the plugins in that order even when the futures
    /// are awaited elsewhere.
    pub fn call(
        &self,
        hook: Hook,
        client: Option<ClientId>,
        args: &[String],
        env: &ScriptEnv,
    ) -> impl Future<Output = CallResult> + Send + use<> {
        let mut e = self.top();
        e.extend(env);
        self.submit(hook, client, args, &e, None)
    }

    /// TLS_VERIFY for the certificate at `depth` of a client's chain: the
    /// plugin gets it as `current_cert` (an OpenSSL `X509 *`, `ssl_api`
    /// says so) and `current_cert_depth`.
    pub fn call_verify(
        &self,
        client: Option<ClientId>,
        depth: usize,
        cert: openssl::x509::X509,
        args: &[String],
        env: &ScriptEnv,
    ) -> impl Future<Output = CallResult> + Send + use<> {
        let mut e = self.top();
        e.extend(env);
        let depth = c_int::try_from(depth).unwrap_or(c_int::MAX);
        self.submit(Hook::TlsVerify, client, args, &e, Some((depth, cert)))
    }

    /// [`Self::call`] with exactly `env` and nothing of the top-level
    /// environment (2.6 calls LEARN_ADDRESS "delete" for a client already
    /// gone with an empty one).
    pub fn call_exact(
        &self,
        hook: Hook,
        client: Option<ClientId>,
        args: &[String],
        env: &ScriptEnv,
    ) -> impl Future<Output = CallResult> + Send + use<> {
        self.submit(hook, client, args, env, None)
    }

    fn submit(
        &self,
        hook: Hook,
        client: Option<ClientId>,
        args: &[String],
        env: &ScriptEnv,
        cert: Option<(c_int, openssl::x509::X509)>,
    ) -> impl Future<Output = CallResult> + Send + use<> {
        let rx = if self.defined(hook) {
            let mut e = env.clone();
            e.unset("script_type");
            let (reply, rx) = tokio::sync::oneshot::channel();
            self.send(Request::Call {
                hook,
                client,
                argv: args.to_vec(),
                env: env_strings(&e),
                cert,
                reply,
            })
            .then_some(Some(rx))
        } else {
            Some(None)
        };
        async move {
            match rx {
                Some(None) => CallResult::success(),
                Some(Some(rx)) => rx.await.unwrap_or(CallResult {
                    status: Status::Error,
                    returns: Vec::new(),
                }),
                None => CallResult {
                    status: Status::Error,
                    returns: Vec::new(),
                },
            }
        }
    }

    fn shutdown(&self) {
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
        let t = self.thread.lock().ok().and_then(|mut g| g.take());
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

/// `NAME=VALUE` strings of an environment.
fn env_strings(env: &ScriptEnv) -> Vec<String> {
    env.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The variables 2.6 keeps in its top-level environment from the start
/// (`setenv_settings`, `setenv_connection_entry` for each connection),
/// plus `setenv` lines. (`config`, the file's name, is not known here.)
fn base_env(cfg: &Config) -> ScriptEnv {
    use crate::config::Transport;
    let mut e = ScriptEnv::new();
    let proto = |t: Transport| match t {
        Transport::Udp => "udp",
        Transport::TcpServer => "tcp-server",
        Transport::TcpClient => "tcp-client",
    };
    let entries: Vec<(Transport, Option<&str>, u16)> = if cfg.remotes.is_empty() {
        vec![(cfg.proto.transport, None, cfg.rport)]
    } else {
        cfg.remotes
            .iter()
            .map(|r| (r.proto.transport, Some(r.host.as_str()), r.port))
            .collect()
    };
    for (i, (t, remote, rport)) in entries.into_iter().enumerate() {
        let i = i + 1;
        e.set(&format!("proto_{i}"), proto(t))
            .set_opt(&format!("local_{i}"), cfg.local.as_deref())
            // 2.6 clears the local port of a `nobind` connection entry.
            .set_opt(
                &format!("local_port_{i}"),
                (!cfg.nobind).then(|| cfg.lport.to_string()),
            )
            .set_opt(&format!("remote_{i}"), remote)
            .set(&format!("remote_port_{i}"), rport.to_string());
    }
    let daemon = cfg.daemon.is_some();
    e.set("verb", cfg.verb.to_string())
        .set("daemon", if daemon { "1" } else { "0" })
        .set(
            "daemon_log_redirect",
            if cfg.log.is_some() { "1" } else { "0" },
        )
        .set(
            "daemon_start_time",
            crate::io::clock::unix_time().to_string(),
        )
        .set("daemon_pid", std::process::id().to_string());
    for (k, v) in &cfg.setenv {
        e.set(k, v);
    }
    e
}

/// State of the plugin thread.
struct Thread {
    plugins: Vec<(ffi::Loaded, Vec<String>)>,
    clients: HashMap<ClientId, Vec<*mut c_void>>,
    /// Top-level contexts (`plugin_list_open`'s own per_client), used for
    /// calls that belong to no client instance.
    top: Vec<*mut c_void>,
    mask: Arc<AtomicU32>,
    /// Each opened plugin's argv: plugins may keep these pointers (down-root
    /// keeps its command), and 2.6's live as long as the process.
    open_argv: Vec<ffi::CArray>,
}

impl Thread {
    fn load(specs: &[(PathBuf, Vec<String>)], mask: Arc<AtomicU32>) -> Result<Self, PluginError> {
        let mut plugins = Vec::new();
        for (path, argv) in specs {
            let l = ffi::Loaded::load(path)?;
            if !path.is_absolute() {
                tracing::warn!(
                    "WARNING: plugin '{}' specified by a relative pathname -- using an absolute pathname would be more secure",
                    path.display()
                );
            }
            plugins.push((l, argv.clone()));
        }
        let n = plugins.len();
        Ok(Thread {
            plugins,
            clients: HashMap::new(),
            top: vec![std::ptr::null_mut(); n],
            mask,
            open_argv: Vec::new(),
        })
    }

    /// `plugin_list_open` at `point`: opens the plugins that chose it, and
    /// constructs their top-level client context.
    fn open(&mut self, point: c_int, env: &[String]) -> Result<(), PluginError> {
        let envp = ffi::CArray::new(env.iter().map(String::as_str))?;
        for (i, (p, argv)) in self.plugins.iter_mut().enumerate() {
            if p.is_open() || p.init_point != point {
                continue;
            }
            let a = ffi::CArray::new(argv.iter().map(String::as_str))?;
            p.open(&a, &envp)?;
            self.open_argv.push(a);
            tracing::info!(
                "PLUGIN_INIT: POST {} '[{}]' intercepted={}",
                p.path.display(),
                argv.join("] ["),
                mask_names(p.mask)
            );
            if let Some(slot) = self.top.get_mut(i) {
                *slot = p.construct();
            }
        }
        let m = self
            .plugins
            .iter()
            .filter(|(p, _)| p.is_open())
            .fold(0, |m, (p, _)| m | p.mask);
        self.mask.store(m, Ordering::Release);
        Ok(())
    }

    fn serve(&mut self, rx: mpsc::Receiver<Request>) {
        while let Ok(r) = rx.recv() {
            match r {
                Request::Open { point, env, reply } => {
                    let _ = reply.send(self.open(point, &env));
                }
                Request::Call {
                    hook,
                    client,
                    argv,
                    env,
                    cert,
                    reply,
                } => {
                    use foreign_types_shared::ForeignType as _;
                    let cert = cert
                        .as_ref()
                        .map(|(d, c)| (*d, c.as_ptr().cast::<c_void>()));
                    let _ = reply.send(self.call(hook, client, &argv, &env, cert));
                }
                Request::ClientNew(id) => {
                    let ctx = self.plugins.iter().map(|(p, _)| p.construct()).collect();
                    self.clients.insert(id, ctx);
                }
                Request::ClientDrop(id) => {
                    if let Some(ctx) = self.clients.remove(&id) {
                        self.destroy(&ctx);
                    }
                }
            }
        }
        // Channel closed: clients first, then the plugins themselves.
        let clients: Vec<_> = self.clients.drain().map(|(_, c)| c).collect();
        for c in clients {
            self.destroy(&c);
        }
        let top = std::mem::take(&mut self.top);
        self.destroy(&top);
        for (p, _) in self.plugins.drain(..) {
            tracing::info!("PLUGIN_CLOSE: {}", p.path.display());
            drop(p);
        }
    }

    fn destroy(&self, ctx: &[*mut c_void]) {
        for ((p, _), c) in self.plugins.iter().zip(ctx) {
            p.destruct(*c);
        }
    }

    /// `plugin_call_ssl`.
    fn call(
        &mut self,
        hook: Hook,
        client: Option<ClientId>,
        args: &[String],
        env: &[String],
        cert: Option<(c_int, *mut c_void)>,
    ) -> CallResult {
        let mut out = CallResult::success();
        let Ok(envp) = ffi::CArray::new(env.iter().map(String::as_str)) else {
            out.status = Status::Error;
            return out;
        };
        let mut error = false;
        let mut deferred = false;
        // A client already destroyed (its authentication outlived it)
        // gets no context, never another one's.
        let ctxs = match client {
            Some(c) => self
                .clients
                .get(&c)
                .cloned()
                .unwrap_or_else(|| vec![std::ptr::null_mut(); self.plugins.len()]),
            None => self.top.clone(),
        };
        for (i, (p, _)) in self.plugins.iter().enumerate() {
            if !p.is_open() || p.mask & hook.bit() == 0 {
                out.returns.push(Vec::new());
                continue;
            }
            let path = p.path.display().to_string();
            let argv = std::iter::once(path.as_str()).chain(args.iter().map(String::as_str));
            let Ok(a) = ffi::CArray::new(argv) else {
                error = true;
                out.returns.push(Vec::new());
                continue;
            };
            let ctx = ctxs.get(i).copied().unwrap_or(std::ptr::null_mut());
            let (status, list) = p.call(hook as c_int, &a, &envp, ctx, cert);
            tracing::debug!("PLUGIN_CALL: POST {}/{} status={status}", path, hook.name());
            match status {
                FUNC_SUCCESS => {}
                FUNC_DEFERRED if hook == Hook::AuthUserPassVerify && deferred => {
                    // 2.6 exits here: the shared auth_control_file cannot
                    // carry two answers. We refuse this client instead.
                    tracing::error!(
                        "more than one authentication plugin deferred; only one may do deferred authentication"
                    );
                    error = true;
                }
                FUNC_DEFERRED => deferred = true,
                s => {
                    tracing::warn!(
                        "PLUGIN_CALL: plugin function {} failed with status {s}: {path}",
                        hook.name()
                    );
                    error = true;
                }
            }
            out.returns.push(list);
        }
        out.status = if error {
            Status::Error
        } else if deferred {
            Status::Deferred
        } else {
            Status::Success
        };
        out
    }
}

/// IPCHANGE's argument, as 2.6's `print_sockaddr_ex` with a space before
/// the port: `[AF_INET]192.0.2.1 1194`, `[AF_INET6]2001:db8::1 1194`.
pub fn ipchange_arg(addr: std::net::SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        ip => ip,
    };
    let family = if ip.is_ipv4() { "AF_INET" } else { "AF_INET6" };
    format!("[{family}]{ip} {}", addr.port())
}

/// `plugin_mask_string`.
fn mask_names(mask: c_uint) -> String {
    const ALL: [Hook; 15] = [
        Hook::Up,
        Hook::Down,
        Hook::RouteUp,
        Hook::IpChange,
        Hook::TlsVerify,
        Hook::AuthUserPassVerify,
        Hook::ClientConnect,
        Hook::ClientDisconnect,
        Hook::LearnAddress,
        Hook::ClientConnectV2,
        Hook::TlsFinal,
        Hook::RoutePredown,
        Hook::ClientConnectDefer,
        Hook::ClientConnectDeferV2,
        Hook::ClientCrResponse,
    ];
    ALL.iter()
        .filter(|h| mask & h.bit() != 0)
        .map(|h| h.name())
        .collect::<Vec<_>>()
        .join("|")
}

/// A plugin's log line, at the level 2.6's `plugin_vlog` gives it.
fn log_line(flags: c_int, name: &str, line: &str) {
    const PLOG_ERR: c_int = 1;
    const PLOG_WARN: c_int = 2;
    const PLOG_NOTE: c_int = 4;
    const PLOG_DEBUG: c_int = 8;
    if name.is_empty() {
        tracing::trace!("PLUGIN: suppressed log message from plugin with unknown name");
        return;
    }
    let line = line.trim_end_matches('\n');
    if flags & PLOG_ERR != 0 {
        tracing::error!("PLUGIN {name}: {line}");
    } else if flags & PLOG_WARN != 0 {
        tracing::warn!("PLUGIN {name}: {line}");
    } else if flags & PLOG_NOTE != 0 {
        tracing::info!("PLUGIN {name}: {line}");
    } else if flags & PLOG_DEBUG != 0 {
        tracing::trace!("PLUGIN {name}: {line}");
    }
}

/// The files of one deferred plugin authentication (2.6's
/// `key_state_gen_auth_control_files`): created empty in `tmp-dir`,
/// exported as `auth_control_file`, `auth_pending_file` and
/// `auth_failed_reason_file`, removed when dropped.
pub struct AuthControlFiles {
    /// `auth_control_file`: the plugin writes `1` (accept) or `0` (deny).
    pub control: PathBuf,
    /// `auth_pending_file`: timeout, method, extra (three lines).
    pub pending: PathBuf,
    /// `auth_failed_reason_file`: a reason for the client.
    pub failed_reason: PathBuf,
}

/// What an auth control file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlState {
    /// Nothing written yet.
    Pending,
    /// `1`.
    Accepted,
    /// `0`.
    Denied,
}

impl AuthControlFiles {
    /// Creates the three files (mode 0600) in `dir`.
    pub fn create(dir: &std::path::Path) -> std::io::Result<Self> {
        let mk = |prefix: &str| crate::host::scripts::create_temp_path(dir, prefix);
        let control = mk("acf")?;
        let pending = mk("apf").inspect_err(|_| {
            let _ = std::fs::remove_file(&control);
        })?;
        let failed_reason = mk("afr").inspect_err(|_| {
            let _ = std::fs::remove_file(&control);
            let _ = std::fs::remove_file(&pending);
        })?;
        Ok(AuthControlFiles {
            control,
            pending,
            failed_reason,
        })
    }

    /// The three variables.
    pub fn set_env(&self, env: &mut ScriptEnv) {
        env.set("auth_control_file", self.control.display().to_string())
            .set("auth_pending_file", self.pending.display().to_string())
            .set(
                "auth_failed_reason_file",
                self.failed_reason.display().to_string(),
            );
    }

    /// The control file's first byte (`key_state_test_auth_control_file`).
    pub fn state(&self) -> ControlState {
        match read_bounded(&self.control, 1).and_then(|b| b.first().copied()) {
            Some(b'1') => ControlState::Accepted,
            Some(b'0') => ControlState::Denied,
            _ => ControlState::Pending,
        }
    }

    /// The plugin's reason for a refusal, if it wrote one.
    pub fn failed_reason(&self) -> Option<String> {
        let b = read_bounded(&self.failed_reason, 1024)?;
        let s = String::from_utf8_lossy(&b).trim().to_string();
        (!s.is_empty()).then_some(s)
    }

    /// The auth-pending request (timeout, method, extra), if the plugin
    /// wrote one; `Err` for a malformed file (2.6 then fails the client).
    pub fn pending_request(&self) -> Result<Option<(u64, String, String)>, String> {
        let Some(b) = read_bounded(&self.pending, 1024) else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&b);
        if text.is_empty() {
            return Ok(None);
        }
        let mut l = text.lines();
        let (Some(t), Some(m), Some(x)) = (l.next(), l.next(), l.next()) else {
            return Err("auth pending control file is not at least three lines long".into());
        };
        match t.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Some((n, m.to_string(), x.to_string()))),
            _ => Err("could not parse auth pending file timeout".into()),
        }
    }

    /// Waits (polling, bounded by `limit`) for the plugin's answer.
    pub async fn wait(&self, limit: Duration) -> ControlState {
        let step = Duration::from_millis(100);
        let rounds = (limit.as_millis() / step.as_millis()).max(1);
        for _ in 0..rounds {
            match self.state() {
                ControlState::Pending => tokio::time::sleep(step).await,
                s => return s,
            }
        }
        self.state()
    }
}

/// At most `max` bytes of a file a plugin wrote (2.6 reads these files
/// into 1 KiB buffers too).
pub fn read_bounded(path: &std::path::Path, max: u64) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(max)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

impl Drop for AuthControlFiles {
    fn drop(&mut self) {
        for p in [&self.control, &self.pending, &self.failed_reason] {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_takes_the_first_value_per_plugin() {
        let r = CallResult {
            status: Status::Success,
            returns: vec![
                vec![(
                    "config".into(),
                    "push \"route 10.1.0.0 255.255.0.0\"".into(),
                )],
                vec![],
                vec![
                    ("x".into(), "y".into()),
                    ("config".into(), "a".into()),
                    ("config".into(), "b".into()),
                ],
            ],
        };
        assert_eq!(
            r.column("config"),
            vec![
                "push \"route 10.1.0.0 255.255.0.0\"".to_string(),
                "a".into()
            ]
        );
    }

    #[test]
    fn ipchange_arg_is_print_sockaddr_ex() {
        assert_eq!(
            ipchange_arg("10.200.0.10:60455".parse().unwrap()),
            "[AF_INET]10.200.0.10 60455"
        );
        assert_eq!(
            ipchange_arg("[::ffff:192.0.2.1]:1194".parse().unwrap()),
            "[AF_INET]192.0.2.1 1194"
        );
        assert_eq!(
            ipchange_arg("[2001:db8::1]:1194".parse().unwrap()),
            "[AF_INET6]2001:db8::1 1194"
        );
    }

    #[test]
    fn mask_names_follow_plugin_type_name() {
        assert_eq!(
            mask_names(Hook::Up.bit() | Hook::AuthUserPassVerify.bit()),
            "PLUGIN_UP|PLUGIN_AUTH_USER_PASS_VERIFY"
        );
    }

    #[test]
    fn a_missing_plugin_is_an_error_naming_the_file() {
        let e = ffi::Loaded::load(std::path::Path::new("/nonexistent/openvpn-plugin-x.so"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("/nonexistent/openvpn-plugin-x.so"), "{e}");
    }

    #[test]
    fn control_files_read_like_2_6() {
        let dir = std::env::temp_dir();
        let f = AuthControlFiles::create(&dir).unwrap();
        assert_eq!(f.state(), ControlState::Pending);
        assert_eq!(f.pending_request(), Ok(None));
        std::fs::write(&f.pending, "60\nwebauth\nhttps://x\n").unwrap();
        assert_eq!(
            f.pending_request(),
            Ok(Some((60, "webauth".into(), "https://x".into())))
        );
        std::fs::write(&f.pending, "0\nwebauth\n").unwrap();
        assert!(f.pending_request().is_err());
        std::fs::write(&f.control, "1").unwrap();
        assert_eq!(f.state(), ControlState::Accepted);
        std::fs::write(&f.control, "0\n").unwrap();
        assert_eq!(f.state(), ControlState::Denied);
        std::fs::write(&f.failed_reason, "locked out\n").unwrap();
        assert_eq!(f.failed_reason().as_deref(), Some("locked out"));
        let paths = [
            f.control.clone(),
            f.pending.clone(),
            f.failed_reason.clone(),
        ];
        drop(f);
        assert!(paths.iter().all(|p| !p.exists()));
    }
}
