//! The built binary's argument handling: OpenVPN-style flags, config
//! errors as `file:line: message` with exit code 1.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/configs")
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vpn-daemon"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run vpn-daemon")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A scratch directory unique to this test process and name.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("vpn-daemon-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create scratch dir");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn unknown_directive_in_a_file_exits_1_naming_file_and_line() {
    let dir = Scratch::new("unknown");
    std::fs::write(
        dir.0.join("bad.conf"),
        "dev tun\n# comment\nfrobnicate on\n",
    )
    .unwrap();
    let out = run(&dir.0, &["--config", "bad.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "bad.conf:3: unknown directive 'frobnicate'"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_flag_on_the_command_line_exits_1() {
    let out = run(
        &configs(),
        &["--config", "client.conf", "--frobnicate", "x"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "[command line]:3: unknown directive 'frobnicate'"
    );
}

#[test]
fn unsupported_directive_exits_1_saying_so() {
    let out = run(
        &configs(),
        &["--config", "server.conf", "--management-hold"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("[command line]:3: directive 'management-hold' is not supported"),
        "{err}"
    );
}

#[test]
fn check_config_prints_a_summary_and_starts_nothing() {
    // --check-config keeps this test from starting a real server in the
    // host's namespace; the running daemon is tested in tests/tunnel_*.
    let out = run(
        &configs(),
        &[
            "--check-config",
            "--config",
            "server-2.6.conf",
            "--verb",
            "4",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("server over UDP"), "{stdout}");
    assert!(stdout.contains("tls-crypt"), "{stdout}");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_lone_file_argument_is_a_config_file() {
    let out = run(&configs(), &["client.conf", "--check-config"]);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("client over UDP"), "{stdout}");
    // The sample's `cipher` line gets OpenVPN 2.6's deprecation note.
    assert!(
        text(&out.stderr).contains("client.conf:"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn help_and_version_work() {
    let out = run(&configs(), &["--help"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("--config"));
    let out = run(&configs(), &["--version"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("vpn-daemon "));
}
