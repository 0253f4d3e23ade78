//! `syslog [NAME]` and `daemon [NAME]`: log lines to the system logger
//! through openlog(3)/syslog(3), as OpenVPN's error.c does: the name
//! (default `openvpn`), `LOG_PID`, facility `LOG_DAEMON`, and priority
//! `LOG_ERR` for errors, `LOG_WARNING` for warnings, `LOG_NOTICE` for
//! everything else; no timestamp (the logger adds its own).

use std::ffi::CString;
use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;

/// The program name 2.6 uses when none is given (`PACKAGE`).
pub const DEFAULT_NAME: &str = "openvpn";

/// Opens the system logger under `name`. Call once per process: syslog(3)
/// keeps the pointer, so the name is leaked on purpose.
pub fn open(name: Option<&str>) {
    let name = name.unwrap_or(DEFAULT_NAME);
    let ident = CString::new(name.replace('\0', "")).unwrap_or_else(|_| c"openvpn".to_owned());
    let ident: &'static std::ffi::CStr = Box::leak(ident.into_boxed_c_str());
    // SAFETY: `ident` lives for the rest of the process, as openlog needs.
    unsafe { libc::openlog(ident.as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
}

/// The priority 2.6 gives a message of this level.
pub fn priority(level: &tracing::Level) -> libc::c_int {
    match *level {
        tracing::Level::ERROR => libc::LOG_ERR,
        tracing::Level::WARN => libc::LOG_WARNING,
        _ => libc::LOG_NOTICE,
    }
}

/// Hands each formatted event to syslog(3) at its level's priority.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyslogMakeWriter;

/// One event's text, sent when dropped.
#[derive(Debug)]
pub struct SyslogLine {
    priority: libc::c_int,
    buf: Vec<u8>,
}

impl Write for SyslogLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        // Bounded like OpenVPN's ERR_BUF_SIZE message buffer.
        let room = 10_240usize.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&b[..b.len().min(room)]);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(c) = CString::new(line.replace('\0', "")) else {
                continue;
            };
            // SAFETY: a constant "%s" format with one C string argument.
            unsafe { libc::syslog(self.priority, c"%s".as_ptr(), c.as_ptr()) };
        }
    }
}

impl<'a> MakeWriter<'a> for SyslogMakeWriter {
    type Writer = SyslogLine;
    fn make_writer(&'a self) -> Self::Writer {
        SyslogLine {
            priority: libc::LOG_NOTICE,
            buf: Vec::new(),
        }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        SyslogLine {
            priority: priority(meta.level()),
            buf: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_openvpn_priorities() {
        assert_eq!(priority(&tracing::Level::ERROR), libc::LOG_ERR);
        assert_eq!(priority(&tracing::Level::WARN), libc::LOG_WARNING);
        assert_eq!(priority(&tracing::Level::INFO), libc::LOG_NOTICE);
        assert_eq!(priority(&tracing::Level::DEBUG), libc::LOG_NOTICE);
    }
}
