//! `cargo xtask package`: the Debian package, built with cargo-deb.
//!
//! Steps: the BPF object (`VPN_EBPF_OBJECT` if set, else `build-ebpf`), a
//! release build of the daemon embedding it, the man page generated from the
//! clap definition and `docs/directives.md` (`examples/manpage.rs`), then
//! `cargo deb --no-build`. What goes where is `[package.metadata.deb]` in
//! `vpn-daemon/Cargo.toml`; the units are in `packaging/`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{
    build_ebpf, setup,
    util::{exec, root},
};

/// The workspace's target directory (cargo's, unless CARGO_TARGET_DIR moves it).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn cargo(obj: &Path) -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(root()).env("VPN_EBPF_OBJECT", obj);
    c
}

/// Builds the package and returns the path of the .deb. `obj` is the BPF
/// object to embed (else `VPN_EBPF_OBJECT`, else a fresh `build-ebpf`).
pub(crate) fn run(obj: Option<&Path>) -> Result<PathBuf> {
    setup::ensure()?;
    let obj = match (obj, std::env::var_os("VPN_EBPF_OBJECT")) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(p)) => PathBuf::from(p),
        (None, None) => build_ebpf::run()?,
    };
    if !obj.is_file() {
        bail!("BPF object {} is missing", obj.display());
    }
    exec(cargo(&obj).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "vpn-daemon",
        "--bin",
        "vpn-daemon",
    ]))?;
    let man = target_dir().join("release/vpn-daemon.8");
    exec(
        cargo(&obj)
            .args([
                "run",
                "--locked",
                "-q",
                "-p",
                "vpn-daemon",
                "--example",
                "manpage",
                "--",
            ])
            .arg(&man)
            .arg(root().join("docs/directives.md")),
    )?;
    // -n: no name or time stamp, so the same sources give the same package.
    exec(Command::new("gzip").args(["-9", "-n", "-f"]).arg(&man))?;
    let out_dir = target_dir().join("debian");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let out = Command::new("cargo")
        .current_dir(root())
        // --dbgsym: a stripped daemon; its symbols go to a -dbgsym .ddeb
        // beside the package, as Debian ships them.
        .args([
            "deb",
            "--no-build",
            "--locked",
            "--dbgsym",
            "-p",
            "vpn-daemon",
            "--output",
        ])
        .arg(&out_dir)
        .output()
        .context("running cargo deb (is cargo-deb installed? `cargo xtask setup`)")?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("cargo deb failed: {}", out.status);
    }
    // cargo-deb prints the path of the package it wrote.
    let deb = String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with(".deb"))
        .map(|l| PathBuf::from(l.trim()))
        .context("cargo deb did not name the package it wrote")?;
    println!("{}", deb.display());
    Ok(deb)
}
