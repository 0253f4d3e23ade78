//! The real-world configuration corpus of `testdata/corpus`: the key
//! material its files name (made fresh for each run), turning one corpus
//! file into a runnable directory, and the two verdicts compared by the
//! acceptance test: does stock openvpn 2.6 accept it, does our
//! `vpn-daemon --check-config`.
//!
//! Scheme (see `testdata/corpus/README.md`): a corpus file names key files
//! by the fixed names of [`KEY_FILES`], relative to its own directory, and
//! an inline block holds one line `@@<name>@@` that is replaced by that
//! file's content. Scripts it names are the no-op stubs of [`SCRIPTS`].

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{Netns, daemon_binary, openvpn::Pki, run, workspace_root};

/// Key and data files every materialised corpus directory holds.
pub const KEY_FILES: &[&str] = &[
    "ca.crt",
    "server.crt",
    "server.key",
    "client.crt",
    "client.key",
    "ta.key",
    "dh.pem",
    "crl.pem",
    "tc2-server.key",
    "tc2-client.key",
    "client.p12",
    "auth.txt",
];

/// No-op scripts (exit 0) a corpus file may name in `up`, `down`,
/// `client-connect`, ... openvpn checks at start-up that they exist.
pub const SCRIPTS: &[&str] = &[
    "up.sh",
    "down.sh",
    "route-up.sh",
    "update-resolv-conf",
    "client-connect.sh",
    "client-disconnect.sh",
    "learn-address.sh",
    "auth-verify.sh",
    "tls-verify.sh",
];

/// The corpus directory.
pub fn corpus_dir() -> PathBuf {
    workspace_root().join("testdata/corpus")
}

/// Every corpus file (`*.conf`, `*.ovpn`), sorted by name.
pub fn corpus_files() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "conf" || x == "ovpn"))
        .collect();
    v.sort();
    v
}

/// The key material of one test run, made once and copied into each
/// corpus file's directory.
pub struct CorpusPki {
    dir: PathBuf,
}

impl CorpusPki {
    /// Makes every file of [`KEY_FILES`] in `dir`: the throwaway CA and
    /// certificates of [`Pki`], a fresh static key (`ta.key`, for tls-auth,
    /// tls-crypt and `secret`), tls-crypt-v2 server and client keys, DH
    /// parameters, an empty CRL signed by the CA, the client's PKCS#12
    /// bundle and `auth.txt`.
    pub fn new(dir: &Path) -> Self {
        let pki = Pki::new(dir);
        fs::rename(&pki.static_key, dir.join("ta.key"))
            .unwrap_or_else(|e| panic!("rename static key: {e}"));
        // Generating 2048-bit DH parameters takes minutes; the sample set's
        // file is public and only needs to parse.
        fs::copy(
            workspace_root().join("testdata/configs/dh2048.pem"),
            dir.join("dh.pem"),
        )
        .unwrap_or_else(|e| panic!("copy dh: {e}"));
        fs::copy(
            workspace_root().join("testdata/openvpn-2.6.14/pki/ca.key"),
            dir.join("ca.key"),
        )
        .unwrap_or_else(|e| panic!("copy ca.key: {e}"));
        fs::write(dir.join("index.txt"), "").unwrap_or_else(|e| panic!("index: {e}"));
        fs::write(
            dir.join("ca.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ndefault_md = sha256\n\
             default_crl_days = 2\n",
        )
        .unwrap_or_else(|e| panic!("ca.cnf: {e}"));
        run(Command::new("openssl")
            .current_dir(dir)
            .args(["ca", "-gencrl", "-config", "ca.cnf", "-keyfile", "ca.key"])
            .args(["-cert", "ca.crt", "-out", "crl.pem"]));
        run(Command::new("openvpn").current_dir(dir).args([
            "--genkey",
            "tls-crypt-v2-server",
            "tc2-server.key",
        ]));
        run(Command::new("openvpn")
            .current_dir(dir)
            .args(["--tls-crypt-v2", "tc2-server.key"])
            .args(["--genkey", "tls-crypt-v2-client", "tc2-client.key"]));
        // Client certificate, key and CA in one PKCS#12 file with an empty
        // password, as the pfSense/OPNsense archive exports ship it.
        run(Command::new("openssl")
            .current_dir(dir)
            .args([
                "pkcs12",
                "-export",
                "-in",
                "client.crt",
                "-inkey",
                "client.key",
            ])
            .args([
                "-certfile",
                "ca.crt",
                "-out",
                "client.p12",
                "-passout",
                "pass:",
            ]));
        fs::write(dir.join("auth.txt"), "corpus-user\ncorpus-pass\n")
            .unwrap_or_else(|e| panic!("auth.txt: {e}"));
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// Writes `corpus_file` into `dir` with its placeholders filled, the
    /// key files, the stub scripts and an empty `ccd/` beside it. Returns
    /// the written file's name.
    pub fn materialise(&self, corpus_file: &Path, dir: &Path) -> String {
        fs::create_dir_all(dir.join("ccd")).unwrap_or_else(|e| panic!("mkdir: {e}"));
        for f in KEY_FILES {
            fs::copy(self.dir.join(f), dir.join(f)).unwrap_or_else(|e| panic!("copy {f}: {e}"));
            // Installers make private keys owner-only; the rest stays
            // readable, as openvpn re-reads the CRL after dropping to `user`.
            set_mode(
                &dir.join(f),
                if f.ends_with(".key") { 0o600 } else { 0o644 },
            );
        }
        for s in SCRIPTS {
            let p = dir.join(s);
            fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap_or_else(|e| panic!("write {s}: {e}"));
            set_mode(&p, 0o755);
        }
        let text = fs::read_to_string(corpus_file)
            .unwrap_or_else(|e| panic!("read {}: {e}", corpus_file.display()));
        let name = corpus_file
            .file_name()
            .and_then(|n| n.to_str())
            .expect("corpus file name is UTF-8")
            .to_string();
        fs::write(dir.join(&name), self.fill(&text))
            .unwrap_or_else(|e| panic!("write {name}: {e}"));
        name
    }

    /// Replaces each line `@@<key file>@@` by that file's content.
    pub fn fill(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() * 2);
        for line in text.lines() {
            let t = line.trim();
            match t
                .strip_prefix("@@")
                .and_then(|r| r.strip_suffix("@@"))
                .filter(|n| KEY_FILES.contains(n))
            {
                Some(n) => {
                    let body = fs::read_to_string(self.dir.join(n))
                        .unwrap_or_else(|e| panic!("read {n}: {e}"));
                    out.push_str(body.trim_end());
                }
                None => out.push_str(line),
            }
            out.push('\n');
        }
        out
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

/// One implementation's answer on one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted; for openvpn, the evidence (the marker line seen or "still
    /// running").
    Accepted(String),
    /// Refused, with the error message.
    Refused(String),
}

impl Verdict {
    /// Whether it was accepted.
    pub fn accepted(&self) -> bool {
        matches!(self, Verdict::Accepted(_))
    }

    /// The evidence or the error.
    pub fn message(&self) -> &str {
        match self {
            Verdict::Accepted(m) | Verdict::Refused(m) => m,
        }
    }
}

/// Lines openvpn 2.6 prints only once option parsing, the option checks
/// and `init_instance`'s crypto set-up (loading CA, certificate, key,
/// tls-auth/tls-crypt/static keys, DH, CRL) are behind it: the link socket
/// and tun set-up come after them in `init_instance`.
pub const OPENVPN_PAST_INIT: &[&str] = &[
    "TUN/TAP device",
    "link local",
    "Socket Buffers",
    "Listening for incoming TCP connection",
    "Attempting to establish TCP connection",
    "TCP/UDP: Preserving recently used remote address",
    "RESOLVE: Cannot resolve host address",
    "Could not determine IPv4/IPv6 protocol",
    "Initialization Sequence Completed",
];

/// How long openvpn may take to reach a line of [`OPENVPN_PAST_INIT`].
/// Options and key errors end the process within milliseconds; a process
/// still running at the deadline is past them (e.g. a file with `verb 0`).
pub const OPENVPN_DEADLINE: Duration = Duration::from_secs(8);

/// How long openvpn keeps being watched after a line of
/// [`OPENVPN_PAST_INIT`]: the `up` script runs right after the tun device
/// opens, and a file whose `up` script openvpn will not run (no
/// `script-security 2`) ends there with a fatal error: refused.
pub const OPENVPN_GRACE: Duration = Duration::from_millis(1500);

const FATAL: &str = "Exiting due to fatal error";

/// Fatal errors that come from the test's empty namespace, not from the
/// file: binding to the host's public address, resolving a host name. A
/// file that stops on one of them after [`OPENVPN_PAST_INIT`] is accepted.
pub const OPENVPN_ENVIRONMENTAL: &[&str] = &[
    "Socket bind failed",
    "Cannot assign requested address",
    "Cannot resolve host address",
    "Network is unreachable",
];

fn is_environmental(why: &str) -> bool {
    OPENVPN_ENVIRONMENTAL.iter().any(|e| why.contains(e))
}

/// Whether the text holds an `auth-user-pass` with no file argument, which
/// makes openvpn ask on the console at start-up.
pub fn bare_auth_user_pass(text: &str) -> bool {
    text.lines().any(|l| {
        let mut w = l.split_whitespace();
        w.next() == Some("auth-user-pass") && w.next().is_none_or(|a| a.starts_with('#'))
    })
}

/// Runs stock openvpn on `dir/name` in a fresh namespace `ns` (so nothing
/// it opens or routes reaches the host) and decides from its output:
/// accepted once a line of [`OPENVPN_PAST_INIT`] shows and it is still
/// running [`OPENVPN_GRACE`] later (or stopped for a reason of
/// [`OPENVPN_ENVIRONMENTAL`]), or when it is still running at
/// [`OPENVPN_DEADLINE`]; refused when it exits before that.
/// Every process left in the namespace is killed afterwards.
pub fn openvpn_verdict(ns: &Netns, dir: &Path, name: &str) -> Verdict {
    let text = fs::read_to_string(dir.join(name)).unwrap_or_default();
    let log = dir.join("openvpn.stdout");
    let out = fs::File::create(&log).unwrap_or_else(|e| panic!("create log: {e}"));
    let err = out.try_clone().unwrap_or_else(|e| panic!("dup: {e}"));
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        ns.name(),
        "/usr/sbin/openvpn",
        "--config",
        name,
    ]);
    if bare_auth_user_pass(&text) {
        // openvpn has no check-only mode and would ask for the user name
        // on a terminal the test does not have; the credentials' source is
        // not what is being checked.
        cmd.args(["--auth-user-pass", "auth.txt"]);
    }
    let mut child = cmd
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("start openvpn: {e}"));
    let start = vpn_daemon::io::clock::now();
    let mut past_init: Option<(&str, Instant)> = None;
    let verdict = loop {
        let output = openvpn_output(dir);
        if let Some(l) = output.lines().find(|l| l.contains("Options error")) {
            break Verdict::Refused(strip_time(l));
        }
        if past_init.is_none()
            && let Some(m) = OPENVPN_PAST_INIT.iter().find(|m| output.contains(*m))
        {
            past_init = Some((m, vpn_daemon::io::clock::now()));
        }
        let exited = matches!(child.try_wait(), Ok(Some(_)));
        if exited {
            // Re-read: the last lines may have landed after the check above.
            let output = openvpn_output(dir);
            let marker = OPENVPN_PAST_INIT.iter().find(|m| output.contains(*m));
            let why = last_error(&output);
            break match marker {
                Some(m) if !output.contains(FATAL) || is_environmental(&why) => {
                    Verdict::Accepted(format!("reached {m:?}"))
                }
                _ => Verdict::Refused(why),
            };
        }
        if let Some((m, at)) = past_init
            && at.elapsed() > OPENVPN_GRACE
        {
            break Verdict::Accepted(format!("reached {m:?}"));
        }
        if start.elapsed() > OPENVPN_DEADLINE {
            break Verdict::Accepted(format!("still running after {OPENVPN_DEADLINE:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    kill_namespace(ns);
    let _ = child.kill();
    let _ = child.wait();
    verdict
}

/// openvpn's stdout plus every `*.log` file a `log`/`log-append` wrote.
fn openvpn_output(dir: &Path) -> String {
    let mut s = fs::read_to_string(dir.join("openvpn.stdout")).unwrap_or_default();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "log") {
                s.push_str(&fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    s
}

/// The line that says why openvpn stopped: the one before "Exiting due to
/// fatal error", else the last non-empty line.
fn last_error(output: &str) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    let at = lines
        .iter()
        .position(|l| l.contains(FATAL))
        .map_or(lines.len(), |i| i);
    match at.checked_sub(1).and_then(|i| lines.get(i)) {
        Some(l) => strip_time(l),
        None => "exited without output".to_string(),
    }
}

/// Drops openvpn's leading `YYYY-MM-DD HH:MM:SS ` time stamp.
fn strip_time(l: &str) -> String {
    let b = l.as_bytes();
    if b.len() > 20 && b[4] == b'-' && b[10] == b' ' && b[13] == b':' {
        l[20..].to_string()
    } else {
        l.to_string()
    }
}

/// SIGKILLs every process in `ns`: all of them were started by this test
/// (openvpn and whatever it forked, e.g. after `daemon`).
pub fn kill_namespace(ns: &Netns) {
    for _ in 0..3 {
        let out = Command::new("ip")
            .args(["netns", "pids", ns.name()])
            .output()
            .unwrap_or_else(|e| panic!("ip netns pids: {e}"));
        let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.is_empty() {
            return;
        }
        for p in pids {
            // SAFETY: kill(2) on a process inside the namespace this test
            // created; nothing else runs there.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `vpn-daemon --check-config --config name` in `dir`.
pub fn ours_verdict(dir: &Path, name: &str) -> Verdict {
    let out = Command::new(daemon_binary())
        .args(["--check-config", "--config", name])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run vpn-daemon: {e}"));
    if out.status.success() {
        Verdict::Accepted("check-config ok".to_string())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let msg = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("exited without a message");
        Verdict::Refused(msg.to_string())
    }
}

/// Every refusal of ours on `dir/name`, not only the first: the line each
/// error names is dropped (an inline block with its closing tag) and the
/// check runs again, at most `limit` times. Each entry is the error without
/// its `file:line:` prefix. For the report: which directives the corpus
/// still needs, with counts.
pub fn ours_all_refusals(dir: &Path, name: &str, limit: usize) -> Vec<String> {
    let probe = format!("probe-{name}");
    let mut lines: Vec<String> = fs::read_to_string(dir.join(name))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let mut found = Vec::new();
    for _ in 0..limit {
        fs::write(dir.join(&probe), lines.join("\n") + "\n")
            .unwrap_or_else(|e| panic!("write probe: {e}"));
        let Verdict::Refused(msg) = ours_verdict(dir, &probe) else {
            break;
        };
        let Some((line_no, text)) = error_line(&msg, &probe) else {
            // A whole-file error after lines were dropped is usually their
            // consequence (no `dev` once `dev tap` is gone): only the first
            // error counts then.
            if found.is_empty() {
                found.push(msg.replace(&probe, name));
            }
            break;
        };
        found.push(text.to_string());
        let Some(i) = line_no.checked_sub(1).filter(|i| *i < lines.len()) else {
            break;
        };
        let tag = lines[i].trim().to_string();
        let end = match tag.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
            Some(t) => {
                let close = format!("</{t}>");
                lines[i..]
                    .iter()
                    .position(|l| l.trim() == close)
                    .map_or(i, |k| i + k)
            }
            None => i,
        };
        for l in &mut lines[i..=end] {
            l.clear();
        }
    }
    let _ = fs::remove_file(dir.join(&probe));
    found
}

/// Splits `<file>:<line>: <message>` into the line number and the message.
fn error_line<'a>(msg: &'a str, file: &str) -> Option<(usize, &'a str)> {
    let rest = msg.strip_prefix(file)?.strip_prefix(':')?;
    let (n, text) = rest.split_once(": ")?;
    Some((n.parse().ok()?, text))
}
