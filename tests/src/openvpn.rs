//! One description of a tunnel ([`TunnelSpec`]) rendered as configuration
//! files that both stock openvpn 2.6 and our `vpn-daemon` read, the
//! throwaway PKI they use (plus a foreign CA made at test time), and the
//! peer processes ([`Peer`]) started inside network namespaces with their
//! logs captured to files and polled for readiness.
//!
//! Both implementations take the same directive language, so a test's
//! matrix cell only changes which binary runs each side.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::{Netns, daemon_binary, run};

/// Which program runs one end of the tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    /// Stock `openvpn` 2.6 from the distribution.
    OpenVpn,
    /// This project's `vpn-daemon`.
    Ours,
}

impl Impl {
    /// Short label for test output and bench tables.
    pub fn label(self) -> &'static str {
        match self {
            Impl::OpenVpn => "openvpn",
            Impl::Ours => "ours",
        }
    }
}

/// Transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// UDP (`proto udp`).
    Udp,
    /// TCP (`proto tcp-server` / `tcp-client`).
    Tcp,
}

/// Control-channel wrapping (`tls_wrap` in OpenVPN's sources).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsWrap {
    /// Plain control channel.
    None,
    /// `tls-auth` HMAC with key direction 0 (server) / 1 (client).
    TlsAuth,
    /// `tls-crypt`.
    TlsCrypt,
}

/// Data-channel AEAD cipher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    /// AES-256-GCM.
    Aes256Gcm,
    /// AES-128-GCM.
    Aes128Gcm,
    /// CHACHA20-POLY1305.
    Chacha20Poly1305,
}

impl Cipher {
    /// OpenVPN's cipher name.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes256Gcm => "AES-256-GCM",
            Cipher::Aes128Gcm => "AES-128-GCM",
            Cipher::Chacha20Poly1305 => "CHACHA20-POLY1305",
        }
    }
}

/// The port the server listens on (inside its own namespace).
pub const PORT: u16 = 1194;
/// The tunnel subnet (`server 10.8.0.0 255.255.255.0`, topology subnet).
pub const TUN_NET: &str = "10.8.0.0";
/// The server's tunnel address in [`TUN_NET`].
pub const SERVER_TUN_ADDR: &str = "10.8.0.1";
/// The line both implementations print once a client's tunnel is up
/// (openvpn's server prints it too).
pub const READY_LINE: &str = "Initialization Sequence Completed";
/// The line our server prints once its socket and tun are set up.
pub const OURS_SERVER_READY: &str = "server listening";

/// The log line that says `imp` is ready, as a server or a client.
pub fn ready_line(imp: Impl, server: bool) -> &'static str {
    match (imp, server) {
        (Impl::Ours, true) => OURS_SERVER_READY,
        _ => READY_LINE,
    }
}

/// What a test wants from a tunnel; rendered by [`server_config`] and
/// [`client_config`] for either implementation.
#[derive(Clone, Debug)]
pub struct TunnelSpec {
    /// Transport.
    pub proto: Proto,
    /// Control-channel wrapping.
    pub wrap: TlsWrap,
    /// The one data cipher both sides offer.
    pub cipher: Cipher,
    /// `keepalive PING RESTART` on the server (pushed to clients).
    pub keepalive: Option<(u32, u32)>,
    /// `reneg-sec` on both sides.
    pub reneg_sec: Option<u32>,
    /// `client-to-client` on the server.
    pub client_to_client: bool,
    /// `duplicate-cn`: several clients with the one test certificate.
    pub duplicate_cn: bool,
    /// `auth-user-pass-verify SCRIPT via-file` on the server.
    pub verify_script: Option<PathBuf>,
    /// Extra server directives, one a line.
    pub server_extra: Vec<String>,
    /// Extra client directives, one a line.
    pub client_extra: Vec<String>,
    /// Extra command-line arguments of the server (after `--config`).
    pub server_args: Vec<String>,
    /// Extra command-line arguments of each client (after `--config`).
    pub client_args: Vec<String>,
}

impl TunnelSpec {
    /// A UDP, tls-crypt, AES-256-GCM tunnel with `keepalive 2 10`.
    pub fn new(proto: Proto, wrap: TlsWrap, cipher: Cipher) -> Self {
        Self {
            proto,
            wrap,
            cipher,
            keepalive: Some((2, 10)),
            reneg_sec: None,
            client_to_client: false,
            duplicate_cn: true,
            verify_script: None,
            server_extra: Vec::new(),
            client_extra: Vec::new(),
            server_args: Vec::new(),
            client_args: Vec::new(),
        }
    }

    /// A short name of the matrix cell, e.g. `udp-tls-crypt-AES-256-GCM`.
    pub fn label(&self) -> String {
        let proto = match self.proto {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        };
        let wrap = match self.wrap {
            TlsWrap::None => "plain",
            TlsWrap::TlsAuth => "tls-auth",
            TlsWrap::TlsCrypt => "tls-crypt",
        };
        format!("{proto}-{wrap}-{}", self.cipher.name())
    }
}

/// Key and certificate files of one test, copied into its temp directory.
pub struct Pki {
    /// The directory holding every file below.
    pub dir: PathBuf,
    /// CA certificate both sides trust.
    pub ca: PathBuf,
    /// Server certificate and key.
    pub server_cert: PathBuf,
    /// Server private key.
    pub server_key: PathBuf,
    /// Client certificate (CN `client`).
    pub client_cert: PathBuf,
    /// Client private key.
    pub client_key: PathBuf,
    /// `openvpn --genkey secret` output, for tls-auth and tls-crypt.
    pub static_key: PathBuf,
}

fn testdata_pki() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/openvpn-2.6.14/pki")
}

impl Pki {
    /// Copies the throwaway PKI of `testdata/openvpn-2.6.14/pki` into `dir`
    /// and generates a fresh static key with openvpn itself.
    pub fn new(dir: &Path) -> Self {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let copy = |name: &str| {
            let to = dir.join(name);
            fs::copy(testdata_pki().join(name), &to).unwrap_or_else(|e| panic!("copy {name}: {e}"));
            to
        };
        let static_key = dir.join("static.key");
        run(Command::new("openvpn")
            .args(["--genkey", "secret"])
            .arg(&static_key));
        Self {
            dir: dir.to_path_buf(),
            ca: copy("ca.crt"),
            server_cert: copy("server.crt"),
            server_key: copy("server.key"),
            client_cert: copy("client.crt"),
            client_key: copy("client.key"),
            static_key,
        }
    }

    /// Makes a second CA and a client certificate signed by it with the
    /// `openssl` CLI: a client the server must refuse. Returns (cert, key).
    pub fn foreign_client(&self) -> (PathBuf, PathBuf) {
        let d = &self.dir;
        let (ca_key, ca_crt) = (d.join("evil-ca.key"), d.join("evil-ca.crt"));
        let (key, csr, crt) = (d.join("evil.key"), d.join("evil.csr"), d.join("evil.crt"));
        let ext = d.join("evil.ext");
        fs::write(
            &ext,
            "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n",
        )
        .unwrap_or_else(|e| panic!("write ext: {e}"));
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "2", "-subj", "/CN=Evil CA", "-keyout"])
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca_crt));
        run(Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-subj", "/CN=client", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&ca_crt)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-CAcreateserial")
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&crt));
        (crt, key)
    }
}

fn common(spec: &TunnelSpec, pki: &Pki, out: &mut String, server: bool) {
    let p = |p: &Path| p.display().to_string();
    let _ = writeln!(out, "dev tun0\ndev-type tun\nverb 3");
    let _ = writeln!(out, "ca {}", p(&pki.ca));
    match spec.wrap {
        TlsWrap::None => {}
        TlsWrap::TlsAuth => {
            let _ = writeln!(out, "tls-auth {} {}", p(&pki.static_key), u8::from(!server));
        }
        TlsWrap::TlsCrypt => {
            let _ = writeln!(out, "tls-crypt {}", p(&pki.static_key));
        }
    }
    let _ = writeln!(out, "data-ciphers {}", spec.cipher.name());
    if let Some(r) = spec.reneg_sec {
        let _ = writeln!(out, "reneg-sec {r}");
    }
    // Stock openvpn would otherwise try the kernel ovpn module; the
    // interop tests compare user-space implementations.
    let _ = writeln!(out, "disable-dco");
}

/// The server's configuration: listening on `local`, status file and log in
/// `dir`.
pub fn server_config(spec: &TunnelSpec, pki: &Pki, local: &str, status: &Path) -> String {
    let mut c = String::new();
    let _ = writeln!(c, "mode server\ntls-server");
    let _ = writeln!(
        c,
        "proto {}",
        match spec.proto {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp-server",
        }
    );
    let _ = writeln!(c, "local {local}\nport {PORT}\ntopology subnet");
    let _ = writeln!(c, "server {TUN_NET} 255.255.255.0");
    let _ = writeln!(
        c,
        "cert {}\nkey {}\ndh none\nremote-cert-tls client",
        pki.server_cert.display(),
        pki.server_key.display()
    );
    let _ = writeln!(c, "status {} 1\nstatus-version 2", status.display());
    if let Some((ping, restart)) = spec.keepalive {
        let _ = writeln!(c, "keepalive {ping} {restart}");
    }
    if spec.client_to_client {
        let _ = writeln!(c, "client-to-client");
    }
    if spec.duplicate_cn {
        let _ = writeln!(c, "duplicate-cn");
    }
    if let Some(script) = &spec.verify_script {
        let _ = writeln!(
            c,
            "script-security 2\nauth-user-pass-verify {} via-file",
            script.display()
        );
    }
    common(spec, pki, &mut c, true);
    for l in &spec.server_extra {
        let _ = writeln!(c, "{l}");
    }
    c
}

/// A client's configuration: `remote` is the server's underlay address;
/// `cert` overrides the client certificate/key; `auth` names an
/// `auth-user-pass` file.
pub fn client_config(
    spec: &TunnelSpec,
    pki: &Pki,
    remote: &str,
    cert: Option<(&Path, &Path)>,
    auth: Option<&Path>,
) -> String {
    let mut c = String::new();
    let _ = writeln!(c, "client\nnobind\nremote {remote} {PORT}");
    let _ = writeln!(
        c,
        "proto {}",
        match spec.proto {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp-client",
        }
    );
    let (crt, key) = cert.unwrap_or((&pki.client_cert, &pki.client_key));
    let _ = writeln!(
        c,
        "cert {}\nkey {}\nremote-cert-tls server",
        crt.display(),
        key.display()
    );
    // Bounded reconnection attempts keep a failing test short; the
    // ping-restart test overrides it.
    let _ = writeln!(c, "connect-retry 1 2");
    if let Some(a) = auth {
        let _ = writeln!(c, "auth-user-pass {}", a.display());
    }
    common(spec, pki, &mut c, false);
    for l in &spec.client_extra {
        let _ = writeln!(c, "{l}");
    }
    c
}

/// Writes a `via-file` verify script to `dir` that accepts exactly
/// `user`/`pass` and refuses everyone else.
pub fn write_verify_script(dir: &Path, user: &str, pass: &str) -> PathBuf {
    let path = dir.join("verify.sh");
    let body = format!(
        "#!/bin/sh\n# $1 holds the username line, then the password line.\n\
         u=$(sed -n 1p \"$1\"); p=$(sed -n 2p \"$1\")\n\
         [ \"$u\" = '{user}' ] && [ \"$p\" = '{pass}' ] && exit 0\nexit 1\n"
    );
    fs::write(&path, body).unwrap_or_else(|e| panic!("write verify script: {e}"));
    run(Command::new("chmod").arg("755").arg(&path));
    path
}

/// One peer process (openvpn or ours) running inside a namespace, with its
/// stdout and stderr in one log file. Dropping it kills the process.
pub struct Peer {
    child: Option<Child>,
    /// The implementation running.
    pub imp: Impl,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its combined stdout/stderr.
    pub log: PathBuf,
    /// Wall time at which it was started.
    pub started: Instant,
    /// What [`Peer::wait_ready`] waits for ([`ready_line`]).
    pub ready: &'static str,
}

/// The command line that runs `imp` with `config` inside `ns`.
pub fn command(imp: Impl, ns: &Netns, config: &Path) -> Command {
    command_with_args(imp, ns, config, &[])
}

/// [`command`] with extra arguments after `--config FILE` (e.g. `--xdp off`).
pub fn command_with_args(imp: Impl, ns: &Netns, config: &Path, args: &[String]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns.name()]);
    match imp {
        Impl::OpenVpn => cmd.arg("openvpn"),
        Impl::Ours => cmd.arg(daemon_binary()),
    };
    cmd.arg("--config").arg(config).args(args);
    cmd
}

impl Peer {
    /// Writes `config_text` to `dir/<name>.conf` and starts `imp` on it in
    /// `ns`; the log goes to `dir/<name>.log` (appended, so a restarted
    /// peer keeps its history).
    pub fn start(imp: Impl, ns: &Netns, dir: &Path, name: &str, config_text: &str) -> Self {
        Self::start_with_args(imp, ns, dir, name, config_text, &[])
    }

    /// [`Peer::start`] with extra command-line arguments after `--config`.
    pub fn start_with_args(
        imp: Impl,
        ns: &Netns,
        dir: &Path,
        name: &str,
        config_text: &str,
        args: &[String],
    ) -> Self {
        let config = dir.join(format!("{name}.conf"));
        fs::write(&config, config_text).unwrap_or_else(|e| panic!("write config: {e}"));
        Self::start_file_with_args(imp, ns, &config, &dir.join(format!("{name}.log")), args)
    }

    /// Starts `imp` on an existing config file, logging to `log`.
    pub fn start_file(imp: Impl, ns: &Netns, config: &Path, log: &Path) -> Self {
        Self::start_file_with_args(imp, ns, config, log, &[])
    }

    /// [`Peer::start_file`] with extra command-line arguments after `--config`.
    pub fn start_file_with_args(
        imp: Impl,
        ns: &Netns,
        config: &Path,
        log: &Path,
        args: &[String],
    ) -> Self {
        let is_server = fs::read_to_string(config)
            .unwrap_or_default()
            .lines()
            .any(|l| l.trim() == "mode server");
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("open {}: {e}", log.display()));
        let err = file
            .try_clone()
            .unwrap_or_else(|e| panic!("dup log fd: {e}"));
        // `ip netns exec` execs the program, so the child's pid is the
        // peer's own (the bench reads its CPU time from /proc).
        let child = command_with_args(imp, ns, config, args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", imp.label()));
        Self {
            child: Some(child),
            imp,
            config: config.to_path_buf(),
            log: log.to_path_buf(),
            started: vpn_daemon::io::clock::now(),
            ready: ready_line(imp, is_server),
        }
    }

    /// The process id (while running).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The log's text so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many lines of the log contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until at least `n` log lines contain `needle`; false on
    /// timeout or when the process exited first.
    pub fn wait_for_nth(&mut self, needle: &str, n: usize, timeout: Duration) -> bool {
        let end = vpn_daemon::io::clock::now() + timeout;
        loop {
            if self.count(needle) >= n {
                return true;
            }
            if vpn_daemon::io::clock::now() >= end || self.exited().is_some() {
                return self.count(needle) >= n;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for its ready line; panics with the log when it does not come.
    pub fn wait_ready(&mut self, timeout: Duration) {
        if !self.wait_for_nth(self.ready, 1, timeout) {
            let exit = self.exited();
            panic!(
                "{} ({}) not ready within {timeout:?}; exit: {:?}; log:\n{}",
                self.imp.label(),
                self.config.display(),
                exit,
                self.log_text()
            );
        }
    }

    /// The exit status once the process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits up to `timeout` for the process to end by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = vpn_daemon::io::clock::now() + timeout;
        while vpn_daemon::io::clock::now() < end {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Ends the process: SIGTERM, then SIGKILL after 3 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill on our own child's pid, which we have not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let end = vpn_daemon::io::clock::now() + Duration::from_secs(3);
        while vpn_daemon::io::clock::now() < end {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `imp` on a config file and returns (exit code, stderr+stdout),
/// killing it after `timeout` (a config error must end it much sooner).
pub fn run_to_exit(imp: Impl, config: &Path, timeout: Duration) -> (Option<i32>, String) {
    let mut cmd = match imp {
        Impl::OpenVpn => Command::new("openvpn"),
        Impl::Ours => Command::new(daemon_binary()),
    };
    let mut child = cmd
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", imp.label()));
    let end = vpn_daemon::io::clock::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            _ if vpn_daemon::io::clock::now() >= end => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            _ => thread::sleep(Duration::from_millis(20)),
        }
    };
    let out = child.wait_with_output().map_or_else(
        |e| e.to_string(),
        |o| String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    );
    (status.and_then(|s| s.code()), out)
}
