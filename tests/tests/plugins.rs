//! OpenVPN plugins loaded by our server, and `syslog`.
//!
//! - Debian's `openvpn-plugin-auth-pam.so` with a PAM service of the
//!   test's own (pam_exec checking one user's password): a stock openvpn
//!   client with the right password connects and pings, one with the wrong
//!   password gets AUTH_FAILED while the first keeps working; the same
//!   with the plugin's deferred mode (`setenv deferred_auth_pam 1`).
//! - Debian's `openvpn-plugin-down-root.so` under `user nobody`: the down
//!   command runs as root at shutdown (the file it writes is root's).
//! - A recording plugin built here from C: the hooks, argv and env our
//!   server (and our client) give it against what stock openvpn gives it
//!   on the same configuration, a renegotiation included; a 6 s password
//!   check of one client while another's traffic flows; CLIENT_CONNECT's
//!   `ifconfig-push` and CLIENT_CONNECT_V2's pushed route applied.
//! - `syslog NAME`: the daemon's messages reach a test-owned `/dev/log`
//!   (in a private mount namespace) with the name, the PID and 2.6's
//!   priorities.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    os::unix::{fs::MetadataExt as _, net::UnixDatagram},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use tests::{
    openvpn::{
        Cipher,
        Impl::{self, OpenVpn, Ours},
        READY_LINE, SERVER_TUN_ADDR, TlsWrap, TunnelSpec, client_config,
    },
    topology::{READY_TIMEOUT, SERVER_ADDR, TempDir, Tunnel, ping},
    unique_name,
};

const PLUGIN_DIR: &str = "/usr/lib/x86_64-linux-gnu/openvpn/plugins";

fn spec() -> TunnelSpec {
    TunnelSpec::new(
        tests::openvpn::Proto::Udp,
        TlsWrap::TlsCrypt,
        Cipher::Aes256Gcm,
    )
}

/// A PAM service file `/etc/pam.d/<name>`, removed when dropped.
struct PamService {
    name: String,
    path: PathBuf,
}

impl PamService {
    /// Accepts exactly `user`/`pass` (pam_exec reads the password on
    /// stdin), any account.
    fn new(dir: &Path, user: &str, pass: &str) -> Self {
        let name = unique_name("vpnpam");
        let check = dir.join("pam-check.sh");
        fs::write(
            &check,
            format!(
                "#!/bin/sh\npw=$(tr -d '\\000')\n[ \"$PAM_USER\" = '{user}' ] && [ \"$pw\" = '{pass}' ]\n"
            ),
        )
        .expect("write pam check");
        tests::run(Command::new("chmod").arg("755").arg(&check));
        let path = Path::new("/etc/pam.d").join(&name);
        fs::write(
            &path,
            format!(
                "auth required pam_exec.so expose_authtok quiet {}\naccount required pam_permit.so\n",
                check.display()
            ),
        )
        .expect("write /etc/pam.d service");
        PamService { name, path }
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// alice with the right password is in and pings; alice with a wrong one
/// gets AUTH_FAILED and no tunnel; the first tunnel still works.
fn auth_pam(deferred: bool) {
    let dir = TempDir::new("vpnpam");
    let pam = PamService::new(dir.path(), "alice", "s3cret");
    let mut s = spec();
    // By name only: found in openvpn's plugin directory, as 2.6 does.
    s.server_extra
        .push(format!("plugin openvpn-plugin-auth-pam.so {}", pam.name));
    if deferred {
        s.server_extra.push("setenv deferred_auth_pam 1".into());
    }
    let mut t = Tunnel::start_server(s, Ours, 2);
    // The same user twice: only the password tells them apart.
    for (i, pass) in ["s3cret", "wrong"].iter().enumerate() {
        let user = "alice";
        let creds = t.topo.path().join(format!("creds{i}"));
        fs::write(&creds, format!("{user}\n{pass}\n")).expect("write creds");
        let text = client_config(
            &t.spec,
            &t.pki,
            &SERVER_ADDR.to_string(),
            None,
            Some(&creds),
        );
        t.add_client(i, OpenVpn, &text);
    }
    t.clients[0].wait_ready(READY_TIMEOUT);
    t.assert_ping_both_ways(0);
    assert!(
        t.clients[1].wait_for_nth("AUTH_FAILED", 1, Duration::from_secs(30)),
        "the wrong password was not refused with AUTH_FAILED; logs in {}",
        t.topo.path().display()
    );
    assert_eq!(
        t.clients[1].count(READY_LINE),
        0,
        "the wrong password got a tunnel"
    );
    assert!(
        !ping(&t.topo.clients[1], SERVER_TUN_ADDR, 1),
        "the refused client reaches the server's tunnel address"
    );
    t.assert_ping_both_ways(0);
    if deferred {
        assert!(
            t.server.count("deferred") > 0,
            "auth-pam did not run deferred; server log {}",
            t.server.log.display()
        );
    }
}

#[test]
fn auth_pam_accepts_the_right_password_and_refuses_a_wrong_one() {
    if !tests::require_root() {
        return;
    }
    auth_pam(false);
}

#[test]
fn auth_pam_deferred_accepts_the_right_password_and_refuses_a_wrong_one() {
    if !tests::require_root() {
        return;
    }
    auth_pam(true);
}

#[test]
fn down_root_runs_the_down_command_as_root_after_user_nobody() {
    if !tests::require_root() {
        return;
    }
    let dir = TempDir::new("vpndownroot");
    // World-writable so that only the owner of the file tells who wrote it.
    tests::run(Command::new("chmod").arg("1777").arg(dir.path()));
    let out = dir.path().join("down-ran");
    let script = dir.path().join("down.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nid -u > {}\necho \"$script_type $dev\" >> {}\n",
            out.display(),
            out.display()
        ),
    )
    .expect("write down script");
    tests::run(Command::new("chmod").arg("755").arg(&script));
    let mut s = spec();
    s.server_extra.push(format!(
        "plugin {PLUGIN_DIR}/openvpn-plugin-down-root.so {}",
        script.display()
    ));
    s.server_extra.push("user nobody".into());
    s.server_extra.push("group nogroup".into());
    let mut t = Tunnel::start(s, Ours, &[OpenVpn]);
    t.assert_ping_both_ways(0);
    let pid = t.server.pid().expect("server pid");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap_or_default()
        .to_string();
    assert!(
        !uid_line.split_whitespace().skip(1).any(|u| u == "0"),
        "the server still runs as root: {uid_line}"
    );
    assert!(!out.exists(), "down ran before shutdown");
    t.server.stop();
    let meta = fs::metadata(&out).unwrap_or_else(|e| {
        panic!(
            "the down command did not run ({e}); server log:\n{}",
            t.server.log_text()
        )
    });
    assert_eq!(meta.uid(), 0, "the down file is not root's");
    let text = fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(
        text.lines().next(),
        Some("0"),
        "id -u in the down command: {text}"
    );
}

/// The recording plugin's C source: no OpenVPN header, only the few
/// declarations it needs. It appends to the file named by its first
/// argument one block per event: `OPEN`, `CALL <type> <ctx>`, `CTOR`,
/// `DTOR`, `CLOSE`, each with `A <arg>` and `E <name=value>` lines. The
/// password check of user `slow` takes 6 s (`SLOW-START`, `SLOW-END`);
/// user `static` gets `ifconfig-push 10.8.0.77` from CLIENT_CONNECT and a
/// pushed route from CLIENT_CONNECT_V2.
const RECORDER_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct open_in { int type_mask; const char **argv; const char **envp; void *callbacks;
                 int ssl_api; const char *ver; unsigned int major; unsigned int minor; const char *patch; };
struct open_ret { int type_mask; void *handle; void **return_list; };
struct func_in { int type; const char **argv; const char **envp; void *handle; void *ctx;
                 int depth; void *cert; };
struct string_list { struct string_list *next; char *name; char *value; };
struct func_ret { struct string_list **return_list; };
struct handle { char path[4096]; int next_ctx; };

static void block(struct handle *h, const char *head, const char **argv, const char **envp)
{
    FILE *f = fopen(h->path, "a");
    if (!f) return;
    fprintf(f, "%s\n", head);
    for (int i = 0; argv && argv[i]; i++) fprintf(f, "A %s\n", argv[i]);
    for (int i = 0; envp && envp[i]; i++) fprintf(f, "E %s\n", envp[i]);
    fclose(f);
}

int openvpn_plugin_open_v3(int v, const struct open_in *in, struct open_ret *ret)
{
    if (v < 5 || !in->argv[1]) return 1;
    struct handle *h = calloc(1, sizeof *h);
    snprintf(h->path, sizeof h->path, "%s", in->argv[1]);
    char head[128];
    snprintf(head, sizeof head, "OPEN %s %u %u", in->ver, in->major, in->minor);
    block(h, head, in->argv + 1, in->envp);
    ret->type_mask = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8)
                   | (1 << 9) | (1 << 10) | (1 << 12);
    /* On a client a password hook would make openvpn expect the server's
     * credentials: ask only for the client-side hooks there. */
    if (in->argv[2] && !strcmp(in->argv[2], "client"))
        ret->type_mask = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 10) | (1 << 12);
    ret->handle = h;
    return 0;
}

int openvpn_plugin_func_v3(int v, const struct func_in *in, struct func_ret *ret)
{
    (void)v; (void)ret;
    struct handle *h = in->handle;
    char head[64];
    snprintf(head, sizeof head, "CALL %d %d%s", in->type, in->ctx ? *(int *)in->ctx : 0,
             in->type == 4 ? (in->cert && in->depth >= 0 ? " cert" : " nocert") : "");
    block(h, head, in->argv + 1, in->envp);
    /* User "static": a fixed address through CLIENT_CONNECT's file and a
     * route through CLIENT_CONNECT_V2's "config" return. */
    for (int i = 0; (in->type == 6 || in->type == 9) && in->envp[i]; i++)
    {
        if (strcmp(in->envp[i], "username=static"))
            continue;
        if (in->type == 6)
        {
            FILE *f = fopen(in->argv[1], "w");
            if (f)
            {
                fprintf(f, "ifconfig-push 10.8.0.77 255.255.255.0\n");
                fclose(f);
            }
        }
        else
        {
            struct string_list *l = calloc(1, sizeof *l);
            l->name = strdup("config");
            l->value = strdup("push \"route 10.99.0.0 255.255.0.0\"");
            *ret->return_list = l;
        }
    }
    /* A slow password check for user "slow" (PAM asking a far server). */
    for (int i = 0; in->type == 5 && in->envp[i]; i++)
    {
        if (!strcmp(in->envp[i], "username=slow"))
        {
            block(h, "SLOW-START", NULL, NULL);
            sleep(6);
            block(h, "SLOW-END", NULL, NULL);
        }
    }
    return 0;
}

void *openvpn_plugin_client_constructor_v1(void *handle)
{
    struct handle *h = handle;
    int *c = malloc(sizeof *c);
    *c = ++h->next_ctx;
    block(h, "CTOR", NULL, NULL);
    return c;
}

void openvpn_plugin_client_destructor_v1(void *handle, void *ctx)
{
    block(handle, "DTOR", NULL, NULL);
    free(ctx);
}

void openvpn_plugin_close_v1(void *handle)
{
    block(handle, "CLOSE", NULL, NULL);
    free(handle);
}
"#;

/// Builds the recording plugin in `dir`.
fn build_recorder(dir: &Path) -> PathBuf {
    let src = dir.join("recorder.c");
    let so = dir.join("recorder.so");
    fs::write(&src, RECORDER_C).expect("write recorder.c");
    tests::run(
        Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-o"])
            .arg(&so)
            .arg(&src),
    );
    so
}

/// One recorded event.
#[derive(Debug, Clone)]
struct Event {
    head: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

fn parse_record(text: &str) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    for l in text.lines() {
        if let Some(a) = l.strip_prefix("A ") {
            if let Some(e) = out.last_mut() {
                e.args.push(a.to_string());
            }
        } else if let Some(kv) = l.strip_prefix("E ") {
            if let (Some(e), Some((k, v))) = (out.last_mut(), kv.split_once('=')) {
                e.env.insert(k.to_string(), v.to_string());
            }
        } else {
            out.push(Event {
                head: l.to_string(),
                args: Vec::new(),
                env: BTreeMap::new(),
            });
        }
    }
    out
}

/// Runs `server` with the recorder and one openvpn client (ping, then
/// both stop) and returns the record.
fn record(server: Impl, so: &Path, out: &Path) -> Vec<Event> {
    let mut s = spec();
    s.server_extra.push(format!(
        "plugin {} {} extra-arg",
        so.display(),
        out.display()
    ));
    s.server_extra.push("setenv RECORDER_TEST yes".into());
    s.server_extra.push("script-security 2".into());
    s.reneg_sec = Some(3);
    let mut t = Tunnel::start_server(s, server, 1);
    let creds = t.topo.path().join("creds");
    fs::write(&creds, "alice\npw1\n").expect("write creds");
    let text = client_config(
        &t.spec,
        &t.pki,
        &SERVER_ADDR.to_string(),
        None,
        Some(&creds),
    );
    t.add_client(0, OpenVpn, &text).wait_ready(READY_TIMEOUT);
    t.assert_ping_both_ways(0);
    // reneg-sec 3: wait for the renegotiation's password check (2.6 calls
    // AUTH_USER_PASS_VERIFY and TLS_FINAL again, client-connect not).
    let calls = |n: &str| {
        fs::read_to_string(out)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(n))
            .count()
    };
    for _ in 0..150 {
        if calls("CALL 10 ") >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        calls("CALL 10 ") >= 2,
        "no renegotiation seen by the plugin ({})",
        server.label()
    );
    t.assert_ping_both_ways(0);
    t.clients[0].stop();
    // The server notices the client is gone (explicit-exit-notify is off:
    // keepalive 2 10 ends it) or at its own shutdown.
    t.server.stop();
    parse_record(&fs::read_to_string(out).unwrap_or_default())
}

/// The event's kind: `OPEN 2.6.14`, `CALL 5`, `CTOR`...
fn hook_of(e: &Event) -> String {
    e.head
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Variables stock openvpn gives that we do not (see docs/directives.md,
/// `plugin`): the config file's name, pool addresses of client-connect.
/// Matched as prefixes.
const NOT_PROVIDED: &[&str] = &[
    "config",
    "ifconfig_pool_",
    // 2.6 leaves the deferred-auth file names in the client's env after
    // AUTH_USER_PASS_VERIFY; we give them to that call only.
    "auth_control_file",
    "auth_pending_file",
    "auth_failed_reason_file",
];

/// Values that differ from run to run.
const VOLATILE: &[&str] = &[
    "daemon_pid",
    "daemon_start_time",
    "untrusted_port",
    "trusted_port",
    "time_unix",
    "time_ascii",
    "time_duration",
    "bytes_received",
    "bytes_sent",
    "auth_control_file",
    "auth_pending_file",
    "auth_failed_reason_file",
    "client_connect_config_file",
    "client_connect_deferred_file",
];

/// Temporary file names become `TMP`, the record's own name `REC`, a
/// client's port `PORT`.
fn normal_arg(a: &str) -> String {
    if a.starts_with("/tmp/openvpn_") {
        "TMP".into()
    } else if let (true, Some((host, _port))) = (a.starts_with("[AF_INET"), a.rsplit_once(' ')) {
        // IPCHANGE's "[AF_INET]ip port": the client's port is its own.
        format!("{host} PORT")
    } else if a.ends_with(".rec") {
        "REC".into()
    } else {
        a.to_string()
    }
}

#[test]
fn recording_plugin_sees_what_stock_openvpn_gives_it() {
    if !tests::require_root() {
        return;
    }
    let dir = TempDir::new("vpnrec");
    let so = build_recorder(dir.path());
    let theirs = record(OpenVpn, &so, &dir.path().join("openvpn.rec"));
    let ours = record(Ours, &so, &dir.path().join("ours.rec"));
    let seq = |r: &[Event]| r.iter().map(hook_of).collect::<Vec<_>>();
    // Open, server up and route-up, one client's auth → tls-final →
    // client-connect v1, v2 → learn-address, its disconnect, then the
    // server's route-pre-down and down, contexts and close.
    assert_eq!(
        seq(&theirs),
        seq(&ours),
        "hook order differs; records in {}",
        dir.path().display()
    );
    assert!(
        seq(&ours).contains(&"CALL 5".to_string()),
        "no AUTH_USER_PASS_VERIFY"
    );
    same_calls(&theirs, &ours, &[]);
}

/// Each event's head, argv (normalised) and environment (names, and
/// values but for [`VOLATILE`] ones) are the same in both records; we may
/// set the variables named in `extra_ok` where openvpn does not.
fn same_calls(theirs: &[Event], ours: &[Event], extra_ok: &[&str]) {
    for (t, o) in theirs.iter().zip(ours) {
        let what = &t.head;
        // Per-client context numbers: the same instance gets the same one.
        assert_eq!(t.head, o.head, "event head (version, context)");
        let ta: Vec<String> = t.args.iter().map(|a| normal_arg(a)).collect();
        let oa: Vec<String> = o.args.iter().map(|a| normal_arg(a)).collect();
        assert_eq!(ta, oa, "argv of {what}");
        let tn: BTreeSet<&String> = t.env.keys().collect();
        let on: BTreeSet<&String> = o.env.keys().collect();
        let extra: Vec<_> = on
            .difference(&tn)
            .filter(|n| !extra_ok.contains(&n.as_str()))
            .collect();
        assert!(
            extra.is_empty(),
            "{what}: we set variables openvpn does not: {extra:?}"
        );
        let missing: Vec<_> = tn
            .difference(&on)
            .filter(|n| !NOT_PROVIDED.iter().any(|p| n.starts_with(p)))
            .collect();
        assert!(missing.is_empty(), "{what}: variables missing: {missing:?}");
        for (k, v) in &o.env {
            if VOLATILE.contains(&k.as_str()) || extra_ok.contains(&k.as_str()) {
                continue;
            }
            assert_eq!(Some(v), t.env.get(k), "{what}: value of {k}");
        }
    }
}

/// A `/dev/log` of the test's own: a Unix datagram socket, seen as
/// `/dev/log` by a command run through [`with_dev_log`].
struct DevLog {
    sock: UnixDatagram,
    path: PathBuf,
}

impl DevLog {
    fn new(dir: &Path) -> Self {
        let path = dir.join("log.sock");
        let sock = UnixDatagram::bind(&path).expect("bind log socket");
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("socket timeout");
        DevLog { sock, path }
    }

    /// Every datagram that arrived, waiting at most 0.5 s for each.
    fn drain(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        for _ in 0..1000 {
            match self.sock.recv(&mut buf) {
                Ok(n) => out.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(_) => break,
            }
        }
        out
    }
}

/// Runs `program args` in a private mount namespace whose `/dev` is a
/// tmpfs holding links to the real device nodes (kept under `dir`) and
/// `/dev/log` pointing at the test's socket; nothing leaks out
/// (`unshare -m` makes the mounts private), and everything is gone when
/// the command ends.
fn with_dev_log(
    dir: &Path,
    log: &DevLog,
    program: &Path,
    args: &[&str],
) -> (Option<i32>, u32, String) {
    let real = dir.join("realdev");
    fs::create_dir_all(&real).expect("mkdir realdev");
    let script = format!(
        "set -e; mount --bind /dev {real}; mount -t tmpfs -o mode=755 vpntest /dev; \
         for f in {real}/* {real}/.[!.]*; do [ -e \"$f\" ] && ln -s \"$f\" /dev/; done; \
         rm -f /dev/log; ln -s {sock} /dev/log; exec \"$0\" \"$@\"",
        real = real.display(),
        sock = log.path.display()
    );
    let mut child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start unshare");
    let pid = child.id();
    let end = vpn_daemon::io::clock::now() + Duration::from_secs(20);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s.code(),
            _ if vpn_daemon::io::clock::now() >= end => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let out = child.wait_with_output().map(|o| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (status, pid, out.unwrap_or_default())
}

/// A client configuration that gets as far as opening its plugins.
fn syslog_config(dir: &Path, extra: &str) -> PathBuf {
    let pki = tests::openvpn::Pki::new(&dir.join("pki"));
    let text = client_config(&spec(), &pki, "127.0.0.1", None, None);
    let path = dir.join("client.conf");
    fs::write(&path, format!("{text}{extra}")).expect("write config");
    path
}

#[test]
fn syslog_name_gets_the_messages_with_pid_and_priorities() {
    if !tests::require_root() {
        return;
    }
    let dir = TempDir::new("vpnsyslog");
    let log = DevLog::new(dir.path());
    let tag = unique_name("vpnlog");
    // The plugin fails to load: one error message after the start-up
    // notices, then the daemon exits. No network is touched.
    let conf = syslog_config(
        dir.path(),
        &format!("syslog {tag}\nplugin /nonexistent/vpn-test-plugin.so\n"),
    );
    let conf_s = conf.display().to_string();
    let (code, pid, out) = with_dev_log(
        dir.path(),
        &log,
        &tests::daemon_binary(),
        &["--config", &conf_s],
    );
    let lines = log.drain();
    assert_eq!(
        code,
        Some(1),
        "the daemon should fail on the plugin; output:\n{out}"
    );
    assert!(
        !lines.is_empty(),
        "nothing reached /dev/log; output:\n{out}"
    );
    // <PRI>TIMESTAMP TAG[PID]: MESSAGE, facility daemon (3).
    let head = format!(" {tag}[{pid}]: ");
    for l in &lines {
        assert!(l.contains(&head), "not from {head:?}: {l}");
    }
    let pri = |l: &String| {
        l.strip_prefix('<')
            .and_then(|r| r.split_once('>'))
            .map(|(p, _)| p.to_string())
    };
    let notice: Vec<_> = lines
        .iter()
        .filter(|l| pri(l).as_deref() == Some("29"))
        .collect();
    let err: Vec<_> = lines
        .iter()
        .filter(|l| pri(l).as_deref() == Some("27"))
        .collect();
    assert!(
        !notice.is_empty(),
        "no LOG_DAEMON|LOG_NOTICE line: {lines:?}"
    );
    assert!(
        err.iter()
            .any(|l| l
                .contains("could not load plugin shared object /nonexistent/vpn-test-plugin.so")),
        "no LOG_DAEMON|LOG_ERR line naming the plugin: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| matches!(pri(l).as_deref(), Some("27" | "28" | "29"))),
        "{lines:?}"
    );
}

#[test]
fn log_after_syslog_wins() {
    if !tests::require_root() {
        return;
    }
    let dir = TempDir::new("vpnsyslog");
    let log = DevLog::new(dir.path());
    let file = dir.path().join("daemon.log");
    let conf = syslog_config(
        dir.path(),
        &format!(
            "syslog {}\nlog {}\nplugin /nonexistent/vpn-test-plugin.so\n",
            unique_name("vpnlog"),
            file.display()
        ),
    );
    let conf_s = conf.display().to_string();
    let (code, _, out) = with_dev_log(
        dir.path(),
        &log,
        &tests::daemon_binary(),
        &["--config", &conf_s],
    );
    assert_eq!(code, Some(1), "output:\n{out}");
    assert_eq!(
        log.drain(),
        Vec::<String>::new(),
        "syslog used despite 'log'"
    );
    let text = fs::read_to_string(&file).unwrap_or_default();
    assert!(
        text.contains("/nonexistent/vpn-test-plugin.so"),
        "log file: {text}"
    );
}

#[test]
fn a_slow_auth_plugin_does_not_stall_other_clients() {
    if !tests::require_root() {
        return;
    }
    let dir = TempDir::new("vpnslow");
    let so = build_recorder(dir.path());
    let rec = dir.path().join("slow.rec");
    let mut s = spec();
    s.server_extra
        .push(format!("plugin {} {}", so.display(), rec.display()));
    let mut t = Tunnel::start_server(s, Ours, 2);
    for (i, user) in ["alice", "slow"].iter().enumerate() {
        let creds = t.topo.path().join(format!("creds{i}"));
        fs::write(&creds, format!("{user}\npw\n")).expect("write creds");
        let text = client_config(
            &t.spec,
            &t.pki,
            &SERVER_ADDR.to_string(),
            None,
            Some(&creds),
        );
        t.add_client(i, OpenVpn, &text);
        if i == 0 {
            t.clients[0].wait_ready(READY_TIMEOUT);
            t.assert_ping_both_ways(0);
        }
    }
    let seen = |what: &str| {
        fs::read_to_string(&rec)
            .unwrap_or_default()
            .lines()
            .any(|l| l == what)
    };
    for _ in 0..200 {
        if seen("SLOW-START") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen("SLOW-START"), "the slow check never started");
    // While the plugin sits in its check, alice's traffic flows.
    assert!(
        ping(&t.topo.clients[0], SERVER_TUN_ADDR, 3),
        "alice's tunnel stalled during another client's password check"
    );
    assert!(
        !seen("SLOW-END"),
        "the pings were not sent during the slow check (the check ended first)"
    );
    // And the slow client gets in once its check is done.
    t.clients[1].wait_ready(READY_TIMEOUT);
    assert!(seen("SLOW-END"));
    t.assert_ping_both_ways(1);
}

#[test]
fn client_connect_plugins_set_the_address_and_push_a_route() {
    if !tests::require_root() {
        return;
    }
    let dir = TempDir::new("vpncc");
    let so = build_recorder(dir.path());
    let rec = dir.path().join("cc.rec");
    let mut s = spec();
    s.server_extra
        .push(format!("plugin {} {}", so.display(), rec.display()));
    let mut t = Tunnel::start_server(s, Ours, 1);
    let creds = t.topo.path().join("creds");
    fs::write(&creds, "static\npw\n").expect("write creds");
    let text = client_config(
        &t.spec,
        &t.pki,
        &SERVER_ADDR.to_string(),
        None,
        Some(&creds),
    );
    t.add_client(0, OpenVpn, &text).wait_ready(READY_TIMEOUT);
    assert_eq!(
        t.client_tun_addr(0).to_string(),
        "10.8.0.77",
        "CLIENT_CONNECT's ifconfig-push not applied"
    );
    t.assert_ping_both_ways(0);
    let routes = Command::new("ip")
        .args(["netns", "exec", t.topo.clients[0].name(), "ip", "route"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(
        routes.contains("10.99.0.0/16"),
        "CLIENT_CONNECT_V2's pushed route missing: {routes}"
    );
}

/// Runs one `client` with the recorder against a stock openvpn server.
fn record_client(client: Impl, so: &Path, out: &Path) -> Vec<Event> {
    let mut s = spec();
    s.client_extra
        .push(format!("plugin {} {} client", so.display(), out.display()));
    let mut t = Tunnel::start_server(s, OpenVpn, 1);
    let text = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
    t.add_client(0, client, &text).wait_ready(READY_TIMEOUT);
    t.assert_ping_both_ways(0);
    t.clients[0].stop();
    parse_record(&fs::read_to_string(out).unwrap_or_default())
}

#[test]
fn recording_plugin_on_a_client_sees_what_stock_openvpn_gives_it() {
    if !tests::require_root() {
        return;
    }
    let dir = TempDir::new("vpnrecc");
    let so = build_recorder(dir.path());
    let theirs = record_client(OpenVpn, &so, &dir.path().join("openvpn.rec"));
    let ours = record_client(Ours, &so, &dir.path().join("ours.rec"));
    let seq = |r: &[Event]| r.iter().map(hook_of).collect::<Vec<_>>();
    // TLS_VERIFY of the server's chain, TLS_FINAL, IPCHANGE, then up,
    // route-up, route-pre-down, down.
    assert_eq!(
        seq(&theirs),
        seq(&ours),
        "hook order differs; records in {}",
        dir.path().display()
    );
    // The client's up/down environment (shared with its scripts) names
    // the pushed route-gateway where 2.6 waits for a route to do so.
    same_calls(&theirs, &ours, &["route_vpn_gateway"]);
}
