//! The small network lab that `demo` and `bench` share: namespaces joined
//! by veth pairs (addresses only inside them), tunnel configs for either
//! implementation from the test PKI, peer processes with their logs, and
//! the measurements (ping, readiness, CPU time from /proc). Everything is
//! removed on drop, also when a step fails.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::util::root;

/// Which program runs one end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Impl {
    OpenVpn,
    Ours,
}

impl Impl {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Impl::OpenVpn => "openvpn",
            Impl::Ours => "ours",
        }
    }
}

/// The server's tunnel address.
pub(crate) const SERVER_TUN: &str = "10.8.0.1";

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("run ip")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Namespaces `<prefix>-srv` and `<prefix>-cN`; client N reaches the server
/// at 10.201.N.1 from 10.201.N.2 over its own veth pair.
pub(crate) struct Lab {
    pub(crate) server: String,
    pub(crate) clients: Vec<String>,
    pub(crate) dir: PathBuf,
    procs: Vec<Peer>,
    aux: Vec<Child>,
}

impl Lab {
    pub(crate) fn new(prefix: &str, n: usize) -> Result<Self> {
        let tag = format!("{prefix}{}", std::process::id());
        let dir = std::env::temp_dir().join(&tag);
        fs::create_dir_all(&dir)?;
        let mut lab = Self {
            server: format!("{tag}-srv"),
            clients: Vec::new(),
            dir,
            procs: Vec::new(),
            aux: Vec::new(),
        };
        ip(&["netns", "add", &lab.server])?;
        ip(&["-n", &lab.server, "link", "set", "lo", "up"])?;
        for i in 1..=n {
            let ns = format!("{tag}-c{i}");
            ip(&["netns", "add", &ns])?;
            lab.clients.push(ns.clone());
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            let srv_if = format!("s{i}");
            ip(&[
                "link",
                "add",
                &srv_if,
                "netns",
                &lab.server,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &ns,
            ])?;
            ip(&[
                "-n",
                &lab.server,
                "addr",
                "add",
                &format!("10.201.{i}.1/24"),
                "dev",
                &srv_if,
            ])?;
            ip(&["-n", &lab.server, "link", "set", &srv_if, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("10.201.{i}.2/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        let key = lab.dir.join("tls-crypt.key");
        let ok = Command::new("openvpn")
            .args(["--genkey", "secret"])
            .arg(&key)
            .status()?
            .success();
        if !ok {
            bail!("openvpn --genkey secret failed");
        }
        Ok(lab)
    }

    /// The server's underlay address as client `i` (1-based) sees it.
    pub(crate) fn server_addr(i: usize) -> String {
        format!("10.201.{i}.1")
    }

    fn common(&self) -> String {
        let pki = root().join("testdata/openvpn-2.6.14/pki");
        format!(
            "dev tun0\ndev-type tun\nverb 3\nca {}\ntls-crypt {}\ndata-ciphers AES-256-GCM\ndisable-dco\n",
            pki.join("ca.crt").display(),
            self.dir.join("tls-crypt.key").display()
        )
    }

    /// UDP server on every address, tunnel 10.8.0.0/24, status every second.
    pub(crate) fn server_config(&self) -> String {
        let pki = root().join("testdata/openvpn-2.6.14/pki");
        format!(
            "mode server\ntls-server\nproto udp\nport 1194\ntopology subnet\nserver 10.8.0.0 255.255.255.0\n\
             cert {}\nkey {}\ndh none\nremote-cert-tls client\nduplicate-cn\nkeepalive 2 10\n\
             status {} 1\nstatus-version 2\n{}",
            pki.join("server.crt").display(),
            pki.join("server.key").display(),
            self.status_path().display(),
            self.common()
        )
    }

    /// A client of the server, from client namespace `i` (1-based).
    pub(crate) fn client_config(&self, i: usize) -> String {
        let pki = root().join("testdata/openvpn-2.6.14/pki");
        format!(
            "client\nnobind\nproto udp\nremote {} 1194\nconnect-retry 1 2\ncert {}\nkey {}\nremote-cert-tls server\n{}",
            Self::server_addr(i),
            pki.join("client.crt").display(),
            pki.join("client.key").display(),
            self.common()
        )
    }

    pub(crate) fn status_path(&self) -> PathBuf {
        self.dir.join("status.txt")
    }

    /// Starts `imp` in `ns` on `config`; returns its index in the lab.
    pub(crate) fn start(
        &mut self,
        imp: Impl,
        ns: &str,
        name: &str,
        config: &str,
        daemon: &Path,
    ) -> Result<usize> {
        let conf = self.dir.join(format!("{name}.conf"));
        let log = self.dir.join(format!("{name}.log"));
        fs::write(&conf, config)?;
        let file = fs::File::create(&log)?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]);
        match imp {
            Impl::OpenVpn => cmd.arg("openvpn"),
            Impl::Ours => cmd.arg(daemon),
        };
        let child = cmd
            .arg("--config")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("start {}", imp.label()))?;
        self.procs.push(Peer {
            child,
            log,
            imp,
            server: config.contains("mode server"),
            started: Instant::now(),
        });
        Ok(self.procs.len() - 1)
    }

    /// Starts an iperf3 server on the server's tunnel address, stopped
    /// with the lab; waits until it listens.
    pub(crate) fn start_iperf_server(&mut self) -> Result<()> {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.server,
                "iperf3",
                "-s",
                "-B",
                SERVER_TUN,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start iperf3 -s")?;
        self.aux.push(child);
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            let ss = ns_output(&self.server, "ss", &["-Hltn", "sport = :5201"])?;
            if !ss.trim().is_empty() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(50));
        }
        bail!("iperf3 -s did not start listening")
    }

    pub(crate) fn peer(&mut self, idx: usize) -> &mut Peer {
        &mut self.procs[idx]
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.aux {
            let _ = c.kill();
            let _ = c.wait();
        }
        for p in &mut self.procs {
            p.stop();
        }
        for ns in self.clients.iter().chain([&self.server]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// One running peer.
pub(crate) struct Peer {
    child: Child,
    pub(crate) log: PathBuf,
    pub(crate) imp: Impl,
    server: bool,
    pub(crate) started: Instant,
}

impl Peer {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the ready line (ours as a server: "server listening").
    pub(crate) fn wait_ready(&mut self, timeout: Duration) -> Result<Duration> {
        let line = match (self.imp, self.server) {
            (Impl::Ours, true) => "server listening",
            _ => "Initialization Sequence Completed",
        };
        let end = Instant::now() + timeout;
        loop {
            if fs::read_to_string(&self.log)
                .unwrap_or_default()
                .contains(line)
            {
                return Ok(self.started.elapsed());
            }
            if let Ok(Some(s)) = self.child.try_wait() {
                bail!(
                    "{} exited ({s}) before it was ready:\n{}",
                    self.imp.label(),
                    fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if Instant::now() >= end {
                bail!(
                    "{} not ready within {timeout:?}:\n{}",
                    self.imp.label(),
                    fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// User + system CPU seconds so far, from /proc/PID/stat.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the parenthesised command name; utime and stime are
        // the 14th and 15th fields of the whole line.
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = f.get(11)?.parse().ok()?;
        let stime: f64 = f.get(12)?.parse().ok()?;
        let hz = clk_tck();
        Some((utime + stime) / hz)
    }

    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid().to_string()])
                .status();
            let end = Instant::now() + Duration::from_secs(3);
            while Instant::now() < end {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Clock ticks per second for /proc times (`getconf CLK_TCK`, 100 on
/// Linux everywhere in practice).
fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Runs a command inside `ns` and returns its stdout.
pub(crate) fn ns_output(ns: &str, program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .output()
        .with_context(|| format!("run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Time until the first echo reply through the tunnel (10 ms steps), from
/// `since`.
pub(crate) fn first_packet(
    ns: &str,
    dst: &str,
    since: Instant,
    timeout: Duration,
) -> Result<Duration> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        // -W 0.1 keeps each probe short; a missing route fails at once.
        if ns_output(ns, "ping", &["-n", "-q", "-c", "1", "-W", "0.1", dst]).is_ok() {
            return Ok(since.elapsed());
        }
        thread::sleep(Duration::from_millis(10));
    }
    bail!("no echo reply from {dst} within {timeout:?}")
}

/// Average ping RTT in ms over `count` probes.
pub(crate) fn ping_rtt_ms(ns: &str, dst: &str, count: u32) -> Result<f64> {
    let out = ns_output(
        ns,
        "ping",
        &["-n", "-q", "-i", "0.05", "-c", &count.to_string(), dst],
    )?;
    out.lines()
        .find(|l| l.contains("min/avg/max"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse().ok())
        .context("no rtt line in ping's output")
}

/// Builds vpn-daemon (release or debug) and returns the binary's path.
pub(crate) fn build_daemon(release: bool) -> Result<PathBuf> {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root()).args(["build", "-p", "vpn-daemon"]);
    if release {
        cmd.arg("--release");
    }
    crate::util::exec(&mut cmd)?;
    Ok(root()
        .join("target")
        .join(if release { "release" } else { "debug" })
        .join("vpn-daemon"))
}
