//! The Debian package of `cargo xtask package`: unpacked with `dpkg -x`
//! into a scratch root, its files checked (the daemon runs and embeds the
//! BPF object, the man page has the directive reference, units, samples),
//! and the units checked by `systemd-analyze verify` with their paths
//! resolved inside that root.
//!
//! The .deb is `VPN_DEB` when set (`cargo xtask test` builds the package
//! once before the tests and sets it), else the newest in target/debian/,
//! else this test builds it with `cargo xtask package` (a release build:
//! minutes).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use tests::{ebpf_object_path, require_root, topology::TempDir};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

fn newest_deb(dir: &Path) -> Option<PathBuf> {
    let mut debs: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vpn-daemon_") && n.ends_with(".deb"))
        })
        .filter_map(|p| Some((fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    debs.sort();
    debs.pop().map(|(_, p)| p)
}

fn the_deb() -> PathBuf {
    if let Some(p) = std::env::var_os("VPN_DEB") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    if let Some(p) = newest_deb(&target.join("debian")) {
        return p;
    }
    let out = Command::new("cargo")
        .current_dir(workspace())
        .args(["run", "-q", "-p", "xtask", "--", "package"])
        .output()
        .expect("run cargo xtask package");
    assert!(
        out.status.success(),
        "cargo xtask package failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    newest_deb(&target.join("debian")).expect("cargo xtask package wrote no .deb")
}

fn output(cmd: &mut Command) -> (bool, String, String) {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn package_installs_into_a_scratch_root_and_its_units_verify() {
    if !require_root() {
        return;
    }
    let deb = the_deb();
    let tmp = TempDir::new("vpnpkg");
    let root = tmp.path().join("root");

    let (ok, info, err) = output(Command::new("dpkg-deb").arg("--info").arg(&deb));
    assert!(ok, "dpkg-deb --info: {err}");
    assert!(info.contains("Package: vpn-daemon"), "{info}");
    assert!(info.contains("libssl"), "Depends lacks libssl: {info}");

    let (ok, _, err) = output(Command::new("dpkg").arg("-x").arg(&deb).arg(&root));
    assert!(ok, "dpkg -x: {err}");

    // The daemon runs from the package and carries the BPF object.
    let bin = root.join("usr/sbin/vpn-daemon");
    let (ok, out, err) = output(Command::new(&bin).arg("--version"));
    assert!(ok && out.starts_with("vpn-daemon "), "{out}{err}");
    let obj = fs::read(ebpf_object_path()).expect("the BPF object the suite uses");
    let elf = fs::read(&bin).expect("read the packaged binary");
    assert!(
        contains(&elf, &obj),
        "the packaged daemon does not embed {}",
        ebpf_object_path().display()
    );

    // The man page: clap's options and the directive reference.
    let man = root.join("usr/share/man/man8/vpn-daemon.8.gz");
    let (ok, page, err) = output(Command::new("gzip").arg("-dc").arg(&man));
    assert!(ok, "{}: {err}", man.display());
    for want in [
        ".TH vpn-daemon 8",
        "check\\-config",
        "SUPPORTED DIRECTIVES",
        "tls\\-crypt",
    ] {
        assert!(page.contains(want), "man page lacks {want:?}");
    }
    let (ok, rendered, err) = output(
        Command::new("man")
            .arg("-l")
            .arg(&man)
            .env("MANWIDTH", "80"),
    );
    assert!(
        ok && rendered.contains("RECOGNISED BUT NOT SUPPORTED"),
        "man -l: {err}"
    );

    for f in [
        "usr/lib/tmpfiles.d/vpn-daemon.conf",
        "usr/share/doc/vpn-daemon/examples/sample-config-files/server.conf",
        "usr/share/doc/vpn-daemon/examples/sample-config-files/client.conf",
        "usr/share/doc/vpn-daemon/directives.md",
        "usr/share/doc/vpn-daemon/systemd.md",
    ] {
        assert!(root.join(f).is_file(), "{f} missing from the package");
    }
    // The sample configs are ones the packaged daemon accepts.
    let samples = root.join("usr/share/doc/vpn-daemon/examples/sample-config-files");
    let keys = workspace().join("testdata/configs");
    for name in ["server.conf", "client.conf"] {
        let (ok, out, err) = output(
            Command::new(&bin)
                .current_dir(&keys)
                .arg("--check-config")
                .arg("--config")
                .arg(samples.join(name)),
        );
        assert!(ok, "{name} rejected by the packaged daemon: {out}{err}");
    }

    // The units, with their absolute paths moved into the scratch root
    // (systemd-analyze --root needs a whole system tree).
    let units = tmp.path().join("units");
    fs::create_dir_all(&units).expect("mkdir units");
    for (unit, workdir) in [
        ("vpn-daemon-server@.service", "etc/openvpn/server"),
        ("vpn-daemon-client@.service", "etc/openvpn/client"),
    ] {
        let text = fs::read_to_string(root.join("lib/systemd/system").join(unit))
            .unwrap_or_else(|e| panic!("{unit} missing from the package: {e}"));
        for want in [
            "Type=notify",
            "Restart=on-failure",
            "CapabilityBoundingSet=",
            "CAP_NET_ADMIN",
            "CAP_BPF",
            "CAP_PERFMON",
            "CAP_IPC_LOCK",
            "CAP_NET_RAW",
            "CAP_SETUID",
            "CAP_SETGID",
            "ProtectSystem=true",
            "ProtectHome=true",
            "DeviceAllow=/dev/net/tun rw",
            &format!("WorkingDirectory=/{workdir}"),
            "ExecStart=/usr/sbin/vpn-daemon ",
            "--config %i.conf",
        ] {
            assert!(text.contains(want), "{unit} lacks {want:?}");
        }
        fs::create_dir_all(root.join(workdir)).expect("mkdir workdir");
        let moved = text
            .replace("/usr/sbin/vpn-daemon", &bin.display().to_string())
            .replace(
                &format!("WorkingDirectory=/{workdir}"),
                &format!("WorkingDirectory={}", root.join(workdir).display()),
            );
        fs::write(units.join(unit), moved).expect("write unit");
    }
    let instances = [
        units.join("vpn-daemon-server@server.service"),
        units.join("vpn-daemon-client@client.service"),
    ];
    let (ok, out, err) = output(
        Command::new("systemd-analyze")
            .arg("verify")
            .args(&instances)
            // man(8) finds the packaged page, so Documentation= is checked too.
            .env("MANPATH", root.join("usr/share/man")),
    );
    let ours: Vec<&str> = out
        .lines()
        .chain(err.lines())
        .filter(|l| l.contains("vpn-daemon"))
        .collect();
    assert!(
        ok && ours.is_empty(),
        "systemd-analyze verify: {ours:#?}\n{out}{err}"
    );
}
