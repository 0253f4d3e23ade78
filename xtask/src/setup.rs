//! `cargo xtask setup`: installs, idempotently, everything the build and the
//! tests need on a Debian 12 machine: apt packages, rust-src for the pinned
//! BPF toolchain, bpf-linker built against Debian's LLVM 22, cargo-deb, and
//! a Python venv with the management client library the tests drive.
//!
//! Each step first checks whether it is already done, so a second run takes
//! well under a second. Without root (or without a registry) it prints the
//! exact commands for a person to run instead of failing obscurely.

use std::process::Command;

use anyhow::{Result, bail};

use crate::util::{exec, is_root, output, succeeds};

/// Toolchain that builds vpn-ebpf (with `RUSTC_BOOTSTRAP=1`, scoped to that
/// build). Pinned by version: its LLVM (22) must not be newer than
/// bpf-linker's, which a moving nightly cannot promise.
pub(crate) const BPF_TOOLCHAIN: &str = "1.95.0";
const BPF_LINKER_VERSION: &str = "0.13.0";
/// Builds the .deb of `cargo xtask package` (pinned: its output format is
/// part of what the package test checks).
const CARGO_DEB_VERSION: &str = "3.8.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

/// Debian packages: the BPF linker's LLVM, the OpenSSL headers, the stock
/// openvpn peer of the interop tests, and the network tools the tests and
/// the demo drive.
const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libssl-dev",
    "openssl",
    "pkg-config",
    "openvpn",
    "iproute2",
    "iputils-ping",
    "iperf3",
    "nftables",
    "tcpdump",
    "ethtool",
    "procps",
    // The XDP tests read the classifier's maps from the kernel.
    "bpftool",
    // The proxy tests run real HTTP CONNECT and SOCKS5 proxies.
    "tinyproxy",
    "dante-server",
    // The package: dpkg-shlibdeps for its Depends (cargo-deb), and its
    // test: `systemd-analyze verify` on the units, `man -l` on the page.
    "dpkg-dev",
    "systemd",
    "man-db",
    // The management tests drive the daemon with a management client
    // library from PyPI, in a venv of ours.
    "python3-venv",
];

/// The management client library the management tests use (pinned: the
/// test drives its API).
const PY_MGMT_PACKAGE: &str = "openvpn-api==0.3.0";

/// The venv holding it; `tests/tests/management.rs` looks for it here.
fn py_venv() -> std::path::PathBuf {
    crate::util::root().join("target/py-mgmt")
}

fn py_venv_ok() -> bool {
    succeeds(Command::new(py_venv().join("bin/python")).args(["-c", "import openvpn_api"]))
}

fn py_venv_cmds() -> Vec<Command> {
    let venv = py_venv();
    let mut create = Command::new("/usr/bin/python3");
    create.args(["-m", "venv"]).arg(&venv);
    let mut install = Command::new(venv.join("bin/pip"));
    install.args([
        "install",
        "-q",
        "--disable-pip-version-check",
        PY_MGMT_PACKAGE,
    ]);
    vec![create, install]
}

fn missing_packages() -> Vec<&'static str> {
    APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            !output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))
                .is_some_and(|s| s.contains("install ok installed"))
        })
        .collect()
}

fn rust_src_installed() -> bool {
    output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        BPF_TOOLCHAIN,
    ]))
    .is_some_and(|s| s.lines().any(|l| l.starts_with("rust-src")))
}

fn bpf_linker_ok() -> bool {
    output(Command::new("bpf-linker").arg("--version"))
        .is_some_and(|s| s.contains(BPF_LINKER_VERSION))
}

fn cargo_deb_ok() -> bool {
    output(Command::new("cargo").args(["deb", "--version"]))
        .is_some_and(|s| s.contains(CARGO_DEB_VERSION))
}

/// True when nothing is missing.
pub(crate) fn is_complete() -> bool {
    missing_packages().is_empty()
        && rust_src_installed()
        && bpf_linker_ok()
        && cargo_deb_ok()
        && py_venv_ok()
}

fn cargo_deb_cmd() -> Command {
    let mut c = Command::new("cargo");
    c.args([
        "install",
        "cargo-deb",
        "--locked",
        "--version",
        CARGO_DEB_VERSION,
    ])
    .env_remove("RUSTUP_TOOLCHAIN")
    .env_remove("CARGO_TARGET_DIR");
    c
}

fn apt_install_cmd(pkgs: &[&str]) -> Command {
    let mut c = Command::new("apt-get");
    c.args([
        "-o",
        "DPkg::Lock::Timeout=900",
        "install",
        "-y",
        "--no-install-recommends",
    ])
    .args(pkgs)
    .env("DEBIAN_FRONTEND", "noninteractive");
    c
}

fn rust_src_cmd() -> Command {
    let mut c = Command::new("rustup");
    c.args(["component", "add", "rust-src", "--toolchain", BPF_TOOLCHAIN]);
    c
}

fn bpf_linker_cmd() -> Command {
    let mut c = Command::new("cargo");
    c.args([
        "install",
        "bpf-linker",
        "--locked",
        "--version",
        BPF_LINKER_VERSION,
        "--no-default-features",
        "--features",
        "llvm-22",
    ])
    // bpf-linker's build.rs reads LLVM_PREFIX; without it it finds Debian's
    // default llvm-config (LLVM 14) and fails to link -lLLVM.
    .env("LLVM_PREFIX", LLVM_PREFIX)
    // Never let the outer cargo's toolchain choice leak into the install.
    .env_remove("RUSTUP_TOOLCHAIN")
    .env_remove("CARGO_TARGET_DIR");
    c
}

pub(crate) fn run(check: bool) -> Result<()> {
    let pkgs = missing_packages();
    let src = rust_src_installed();
    let linker = bpf_linker_ok();
    let deb = cargo_deb_ok();
    let venv = py_venv_ok();
    if pkgs.is_empty() && src && linker && deb && venv {
        eprintln!(
            "setup: complete (apt packages, rust-src for {BPF_TOOLCHAIN}, bpf-linker {BPF_LINKER_VERSION}, cargo-deb {CARGO_DEB_VERSION}, {PY_MGMT_PACKAGE} in {})",
            py_venv().display()
        );
        return Ok(());
    }
    let mut todo: Vec<String> = Vec::new();
    if !pkgs.is_empty() {
        todo.push("apt-get update".into());
        todo.push(crate::util::show(&apt_install_cmd(&pkgs)));
    }
    if !src {
        todo.push(crate::util::show(&rust_src_cmd()));
    }
    if !linker {
        todo.push(format!(
            "LLVM_PREFIX={LLVM_PREFIX} {}",
            crate::util::show(&bpf_linker_cmd())
        ));
    }
    if !deb {
        todo.push(crate::util::show(&cargo_deb_cmd()));
    }
    if !venv {
        todo.extend(py_venv_cmds().iter().map(crate::util::show));
    }
    if check {
        eprintln!("setup: missing pieces; `cargo xtask setup` would run:");
        for t in &todo {
            eprintln!("  {t}");
        }
        bail!("set-up incomplete");
    }
    if !pkgs.is_empty() {
        if !is_root() {
            eprintln!("setup: not root; please run:");
            for t in &todo {
                eprintln!("  sudo {t}");
            }
            bail!("set-up needs root for apt-get");
        }
        exec(Command::new("apt-get").args(["-o", "DPkg::Lock::Timeout=900", "update", "-q"]))?;
        exec(&mut apt_install_cmd(&pkgs))?;
    }
    if !src {
        exec(&mut rust_src_cmd())?;
    }
    if !linker {
        // Needs llvm-22-dev, installed above.
        if !succeeds(
            Command::new("test")
                .arg("-e")
                .arg(format!("{LLVM_PREFIX}/lib/libLLVM.so")),
        ) {
            bail!("{LLVM_PREFIX}/lib/libLLVM.so is missing: install llvm-22-dev first");
        }
        exec(&mut bpf_linker_cmd())?;
    }
    if !deb {
        exec(&mut cargo_deb_cmd())?;
    }
    if !venv {
        // Needs python3-venv, installed above.
        for mut c in py_venv_cmds() {
            exec(&mut c)?;
        }
    }
    if !is_complete() {
        bail!("set-up ran but something is still missing; see `cargo xtask setup --check`");
    }
    eprintln!("setup: done");
    Ok(())
}

/// Runs the set-up only when something is missing (used by test and demo).
pub(crate) fn ensure() -> Result<()> {
    if is_complete() { Ok(()) } else { run(false) }
}
