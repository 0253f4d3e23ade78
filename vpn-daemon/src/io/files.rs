//! Files the server rewrites after `user`/`group` dropped its privileges
//! (`status`, `ifconfig-pool-persist`): opened while still privileged and
//! rewritten in place through the kept descriptor, as OpenVPN does, since
//! the unprivileged user usually may not create files in their directory.
//!
//! Without a privilege drop nothing is held and writers keep their
//! temp-file-and-rename path.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

/// Descriptors by path: process-wide, because the privilege drop is.
fn held() -> &'static Mutex<HashMap<PathBuf, File>> {
    static HELD: OnceLock<Mutex<HashMap<PathBuf, File>>> = OnceLock::new();
    HELD.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Opens `path` for writing (created mode 0600 if missing, as openvpn
/// creates its status file; contents kept until the first rewrite) and
/// keeps the descriptor for [`write()`].
pub fn hold(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut map = held().lock().unwrap_or_else(PoisonError::into_inner);
    if !map.contains_key(path) {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        map.insert(path.to_path_buf(), f);
    }
    Ok(())
}

/// Replaces the contents of a held file with `bytes`; `None` when `path`
/// is not held (the caller writes it its own way).
pub fn write(path: &Path, bytes: &[u8]) -> Option<std::io::Result<()>> {
    let mut map = held().lock().unwrap_or_else(PoisonError::into_inner);
    let f = map.get_mut(path)?;
    Some((|| {
        f.seek(SeekFrom::Start(0))?;
        f.write_all(bytes)?;
        f.set_len(bytes.len() as u64)?;
        f.flush()
    })())
}

/// With `user`/`group`, opens the `status` and `ifconfig-pool-persist`
/// files while still privileged (OpenVPN does the same); a failure is the
/// same warning a later write would give.
pub(crate) fn hold_rewritten_files(cfg: &crate::config::Config) {
    if cfg.user.is_none() && cfg.group.is_none() {
        return;
    }
    let status = cfg.status.as_ref().map(|s| s.path.as_path());
    // `ifconfig-pool-persist FILE 0` only reads: nothing to hold.
    let persist = cfg
        .ifconfig_pool_persist
        .as_ref()
        .filter(|p| p.seconds > 0)
        .map(|p| p.file.as_path());
    for path in status.into_iter().chain(persist) {
        if let Err(e) = hold(path) {
            tracing::warn!(file = %path.display(), error = %e, "cannot open before dropping privileges");
        }
    }
}

/// Writes `path` through a temporary file and a rename, so readers never
/// see half a file. The temporary file is created 0600 (openvpn's mode for
/// its status file: it lists clients and addresses) under a name no one
/// can guess, so no other user can plant or read it on the way.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // Opened before a privilege drop: rewritten in place (see above).
    if let Some(r) = write(path, bytes) {
        return r;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".vpn-daemon-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map(|_| ()).map_err(|e| e.error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_files_are_rewritten_in_place() {
        let dir = std::env::temp_dir().join(format!("vpn-held-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("status.log");
        assert!(write(&p, b"x").is_none(), "not held yet");
        hold(&p).unwrap();
        write(&p, b"a longer first version\n").unwrap().unwrap();
        write(&p, b"short\n").unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "short\n");
        // The same inode: the descriptor, not the name, is written.
        std::fs::rename(&p, dir.join("moved.log")).unwrap();
        write(&p, b"third\n").unwrap().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("moved.log")).unwrap(),
            "third\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rewritten_files_are_private_and_leave_no_temporary_behind() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("vpn-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("status.log");
        write_atomic(&p, b"one\n").unwrap();
        write_atomic(&p, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two\n");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["status.log"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
