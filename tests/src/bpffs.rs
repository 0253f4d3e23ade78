//! What the stale-program tests need beyond the daemon's own loader: a
//! private bpffs mount (so pins never touch `/sys/fs/bpf`), pinning, a
//! minimal foreign XDP program, and the XDP programs `ip -j link show`
//! reports on an interface.

use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
    process::Command,
};

use crate::{Netns, run, unique_name};

/// A bpffs mounted on a fresh directory under the temp dir; unmounted and
/// removed on drop (also when the test panics).
pub struct BpfFs {
    dir: PathBuf,
}

impl BpfFs {
    /// Mounts a new bpffs.
    pub fn mount() -> Self {
        let dir = std::env::temp_dir().join(unique_name("bpffs"));
        std::fs::create_dir_all(&dir).expect("create bpffs mount point");
        run(Command::new("mount").args(["-t", "bpf", "bpf"]).arg(&dir));
        Self { dir }
    }

    /// A path inside the mount.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).output();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_OBJ_PIN: libc::c_long = 6;
const BPF_PROG_TYPE_XDP: u32 = 6;

/// The `BPF_PROG_LOAD` part of `union bpf_attr`, padded to a size newer
/// kernels accept (unused tail zero).
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    _rest: [u8; 64],
}

/// The `BPF_OBJ_PIN` part of `union bpf_attr`.
#[repr(C)]
struct ObjPinAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, correctly laid out bpf_attr variant for
    // `cmd`; the pointers inside it outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size_of::<T>() as u32) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

/// Loads a two-instruction XDP program named `name` (at most 15 bytes)
/// that passes every frame: somebody else's program, as far as the daemon
/// can tell.
pub fn load_pass_program(name: &str) -> OwnedFd {
    // r0 = XDP_PASS (2); exit.
    let insns: [u8; 16] = [
        0xb7, 0x00, 0, 0, 2, 0, 0, 0, //
        0x95, 0x00, 0, 0, 0, 0, 0, 0,
    ];
    let license = c"GPL";
    let mut prog_name = [0u8; 16];
    assert!(name.len() < 16);
    prog_name[..name.len()].copy_from_slice(name.as_bytes());
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: 2,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name,
        prog_ifindex: 0,
        expected_attach_type: 0,
        _rest: [0; 64],
    };
    let fd = bpf(BPF_PROG_LOAD, &mut attr).expect("BPF_PROG_LOAD of a pass-all XDP program");
    // SAFETY: the kernel returned a new fd we own.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Pins a BPF object fd at `path` (on a bpffs).
pub fn pin(fd: BorrowedFd<'_>, path: &Path) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).expect("path without NUL");
    let mut attr = ObjPinAttr {
        pathname: c.as_ptr() as u64,
        bpf_fd: fd.as_raw_fd() as u32,
        file_flags: 0,
    };
    bpf(BPF_OBJ_PIN, &mut attr).unwrap_or_else(|e| panic!("pin at {}: {e}", path.display()));
}

/// `ip -j link show dev DEV` in `ns`, for messages.
pub fn link_json(ns: &Netns, dev: &str) -> String {
    let out = Command::new("ip")
        .args(["-n", ns.name(), "-j", "link", "show", "dev", dev])
        .output()
        .expect("run ip");
    assert!(out.status.success(), "ip -j link show {dev} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ids of the XDP programs attached to `dev` in `ns`, from
/// `ip -j link show` (one per attach mode; empty when none).
pub fn attached_prog_ids(ns: &Netns, dev: &str) -> Vec<u32> {
    let json = link_json(ns, dev);
    let Some(xdp) = json.find("\"xdp\":").map(|i| &json[i..]) else {
        return Vec::new();
    };
    // iproute2 prints the program once as a summary and once per attach
    // mode in "attached" (when it knows that list): count the list.
    let end = xdp.find("\"qdisc\"").unwrap_or(xdp.len());
    let xdp = &xdp[..end];
    let xdp = match xdp.find("\"attached\":[") {
        Some(i) => {
            let list = &xdp[i..];
            &list[..list.find(']').unwrap_or(list.len())]
        }
        None => xdp,
    };
    xdp.match_indices("\"prog\":{\"id\":")
        .filter_map(|(i, pat)| {
            let digits: String = xdp[i + pat.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}
