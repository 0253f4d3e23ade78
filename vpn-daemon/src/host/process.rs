//! Process-level concerns: logging (`verb`, `log`, `log-append`,
//! `suppress-timestamps`, `machine-readable-output`), signals
//! (`remap-usr1`), `daemon`, `writepid`, `cd`, `nice`, `mlock`, and
//! `chroot` with the `user`/`group` privilege drop.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::path::Path;

use tokio::signal::unix::{Signal as TokioSignal, SignalKind, signal};

use crate::config::Config;
use crate::config::host::RemapUsr1;

use crate::error::DaemonError;

/// A signal the tunnel loops act on (OpenVPN's meanings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM / SIGINT: exit (after explicit-exit-notify).
    Term,
    /// SIGHUP: re-read the configuration and restart.
    Hup,
    /// SIGUSR1: soft restart (reconnect; persist-tun keeps the device).
    Usr1,
    /// SIGUSR2: log statistics.
    Usr2,
}

impl Signal {
    /// OpenVPN's name, as scripts see it in `signal`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "sigterm",
            Signal::Hup => "sighup",
            Signal::Usr1 => "sigusr1",
            Signal::Usr2 => "sigusr2",
        }
    }
}

/// The process's signal streams (inside a tokio runtime).
#[derive(Debug)]
pub struct Signals {
    term: TokioSignal,
    int: TokioSignal,
    hup: TokioSignal,
    usr1: TokioSignal,
    usr2: TokioSignal,
    remap_usr1: Option<RemapUsr1>,
}

impl Signals {
    /// Installs the handlers.
    pub fn new() -> Result<Self, DaemonError> {
        let s =
            |k: SignalKind| signal(k).map_err(|e| DaemonError::io("installing signal handler", e));
        Ok(Self {
            term: s(SignalKind::terminate())?,
            int: s(SignalKind::interrupt())?,
            hup: s(SignalKind::hangup())?,
            usr1: s(SignalKind::user_defined1())?,
            usr2: s(SignalKind::user_defined2())?,
            remap_usr1: None,
        })
    }

    /// `remap-usr1 SIGHUP|SIGTERM`: SIGUSR1 is delivered as that signal.
    pub fn remap_usr1(&mut self, to: Option<RemapUsr1>) {
        self.remap_usr1 = to;
    }

    /// The next signal. Cancel-safe.
    pub async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Term,
            _ = self.int.recv() => Signal::Term,
            _ = self.hup.recv() => Signal::Hup,
            _ = self.usr1.recv() => match self.remap_usr1 {
                None => Signal::Usr1,
                Some(RemapUsr1::Hup) => Signal::Hup,
                Some(RemapUsr1::Term) => Signal::Term,
            },
            _ = self.usr2.recv() => Signal::Usr2,
        }
    }
}

/// `verb` as a tracing level filter: 0 errors only, 1–4 info (2.6 prints
/// its M_INFO lines, "Initialization Sequence Completed" among them, from
/// verb 1, its default), 5–6 debug, 7+ trace. `RUST_LOG` overrides it.
pub fn verb_filter(verb: u8) -> &'static str {
    match verb {
        0 => "error",
        1..=4 => "info",
        5 | 6 => "debug",
        _ => "trace",
    }
}

/// `mute N`: at most N consecutive events from the same call site are
/// logged; the rest of the run is counted and summed up when another
/// message comes (OpenVPN's "N variation(s) on previous M message(s)
/// suppressed by --mute").
struct Mute {
    limit: u32,
    state: std::sync::Mutex<(Option<tracing::callsite::Identifier>, u32)>,
}

impl Mute {
    /// Whether to log an event from `site`; `Some(n)` when a run of `n`
    /// suppressed events just ended.
    fn admit(&self, site: tracing::callsite::Identifier) -> (bool, Option<u32>) {
        let Ok(mut st) = self.state.lock() else {
            return (true, None);
        };
        if st.0.as_ref() == Some(&site) {
            st.1 += 1;
            (st.1 <= self.limit, None)
        } else {
            let suppressed = st.1.saturating_sub(self.limit);
            *st = (Some(site), 1);
            (true, (suppressed > 0).then_some(suppressed))
        }
    }
}

/// The time stamp of a log line.
enum LogTime {
    /// RFC 3339, tracing's default.
    Default(tracing_subscriber::fmt::time::SystemTime),
    /// `suppress-timestamps`.
    None,
    /// `machine-readable-output`: `seconds.microseconds` since the epoch,
    /// as 2.6 prints it.
    Unix,
}

impl tracing_subscriber::fmt::time::FormatTime for LogTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match self {
            LogTime::Default(t) => t.format_time(w),
            LogTime::None => Ok(()),
            LogTime::Unix => {
                let d = crate::io::clock::since_epoch();
                write!(w, "{}.{:06}", d.as_secs(), d.subsec_micros())
            }
        }
    }
}

/// `nice` and `mlock`, and the `echo` lines, at start (2.6 does both in its
/// early initialisation).
pub fn tune(cfg: &Config) -> Result<(), DaemonError> {
    if let Some(n) = cfg.host.nice {
        // SAFETY: plain syscall on this process.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) } != 0 {
            // 2.6 only warns when nice fails.
            tracing::warn!(nice = n, error = %std::io::Error::last_os_error(), "nice failed");
        } else {
            tracing::info!(nice = n, "priority set");
        }
    }
    if cfg.host.mlock {
        // SAFETY: plain syscall; locks this process's pages.
        if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "mlockall call failed");
        }
    }
    for e in &cfg.host.echo {
        // 2.6 logs only "msg..." echoes; the others may carry secrets
        // meant for a management client.
        if e.starts_with("msg") {
            tracing::info!("ECHO:{e}");
        }
    }
    Ok(())
}

static CHROOTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `chroot DIR`, once per process (a SIGHUP reload is already inside).
fn enter_chroot(cfg: &Config) -> Result<(), DaemonError> {
    let Some(dir) = &cfg.host.chroot else {
        return Ok(());
    };
    if CHROOTED.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    let c = CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|_| DaemonError::BadName {
        what: "chroot dir",
        name: dir.display().to_string(),
    })?;
    // SAFETY: valid C string; plain syscall.
    if unsafe { libc::chroot(c.as_ptr()) } != 0 {
        return Err(DaemonError::io(
            format!("chroot to '{}'", dir.display()),
            std::io::Error::last_os_error(),
        ));
    }
    std::env::set_current_dir("/").map_err(|e| DaemonError::io("chdir to / after chroot", e))?;
    CHROOTED.store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(dir = %dir.display(), "chroot to '{}' succeeded", dir.display());
    Ok(())
}

/// Whether [`drop_privileges`] has anything to do.
pub fn drops_privileges(cfg: &Config) -> bool {
    cfg.user.is_some() || cfg.group.is_some() || cfg.host.chroot.is_some()
}

/// Sets up logging to stderr or the `log`/`log-append` file. Call once.
pub fn init_logging(cfg: &Config) -> Result<(), DaemonError> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, filter};
    let env =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(verb_filter(cfg.verb)));
    // `log`/`log-append` wins over `syslog`/`daemon`, wherever it is, as
    // 2.6's redirect_stdout_stderr/open_syslog do.
    let to_syslog = cfg.log.is_none() && cfg.syslog.is_some();
    let (writer, ansi) = match &cfg.log {
        None if to_syslog => {
            super::syslog::open(cfg.syslog.as_ref().and_then(|n| n.as_deref()));
            (BoxMakeWriter::new(super::syslog::SyslogMakeWriter), false)
        }
        Some(l) => {
            let file = OpenOptions::new()
                .create(true)
                .write(true)
                .append(l.append)
                .truncate(!l.append)
                .open(&l.path)
                .map_err(|e| DaemonError::io(format!("opening log {}", l.path.display()), e))?;
            (BoxMakeWriter::new(std::sync::Mutex::new(file)), false)
        }
        None => (BoxMakeWriter::new(std::io::stderr), true),
    };
    let max_level: filter::LevelFilter = verb_filter(cfg.verb)
        .parse()
        .unwrap_or(filter::LevelFilter::INFO);
    let mute = cfg.mute.filter(|n| *n > 0).map(|limit| Mute {
        limit,
        state: std::sync::Mutex::new((None, 0)),
    });
    // Dynamic: a static filter_fn would be asked once per call site and
    // cached, which is the opposite of counting.
    let mute_filter = filter::dynamic_filter_fn(move |meta, _cx| {
        let Some(m) = &mute else { return true };
        // Only events the verbosity lets through count towards a run.
        if !meta.is_event() || *meta.level() > max_level {
            return true;
        }
        let (ok, ended) = m.admit(meta.callsite());
        if let Some(n) = ended {
            // Written straight to stderr: emitting an event from inside
            // the filter would re-enter it.
            eprintln!("{n} variation(s) on previous message(s) suppressed by --mute");
        }
        ok
    });
    let time = if cfg.host.suppress_timestamps {
        LogTime::None
    } else if cfg.host.machine_readable_output {
        LogTime::Unix
    } else {
        LogTime::Default(tracing_subscriber::fmt::time::SystemTime)
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_timer(time)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(cfg.verb >= 5);
    // The system logger stamps time, name and PID itself; the priority
    // carries the level.
    let layer = if to_syslog {
        layer.without_time().with_level(false).boxed()
    } else {
        layer.boxed()
    };
    let layer = layer.with_filter(env).with_filter(mute_filter);
    // Already initialised (a SIGHUP restart): keep the first subscriber.
    let _ = tracing_subscriber::registry().with(layer).try_init();
    Ok(())
}

/// `daemon`: fork, detach from the terminal, stdio to /dev/null. Must run
/// before any thread (the tokio runtime) is started.
pub fn daemonize(cfg: &Config) -> Result<(), DaemonError> {
    if cfg.daemon.is_none() {
        return Ok(());
    }
    // SAFETY: called before any other thread exists, so fork only
    // duplicates this thread; the parent exits at once without running
    // destructors that could touch shared state.
    match unsafe { libc::fork() } {
        -1 => return Err(DaemonError::io("fork", std::io::Error::last_os_error())),
        0 => {}
        // SAFETY: _exit has no preconditions.
        _ => unsafe { libc::_exit(0) },
    }
    // SAFETY: setsid has no preconditions.
    if unsafe { libc::setsid() } < 0 {
        return Err(DaemonError::io("setsid", std::io::Error::last_os_error()));
    }
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| DaemonError::io("opening /dev/null", e))?;
    use std::os::fd::AsRawFd;
    for fd in [0, 1, 2] {
        // With a log file, stderr already goes there through tracing; the
        // raw fds only lose the terminal.
        // SAFETY: both descriptors are valid; dup2 replaces `fd` atomically.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(DaemonError::io("dup2", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// `cd DIR`.
pub fn change_dir(cfg: &Config) -> Result<(), DaemonError> {
    if let Some(dir) = &cfg.cd {
        std::env::set_current_dir(dir)
            .map_err(|e| DaemonError::io(format!("cd {}", dir.display()), e))?;
    }
    Ok(())
}

/// `writepid FILE`.
pub fn write_pid(path: &Path) -> Result<(), DaemonError> {
    std::fs::write(path, format!("{}\n", std::process::id()))
        .map_err(|e| DaemonError::io(format!("writepid {}", path.display()), e))
}

/// `chroot`, then `group` then `user`: drop privileges (supplementary groups too). The
/// tun device and sockets stay open; routes can no longer be changed, as
/// with OpenVPN.
pub fn drop_privileges(cfg: &Config) -> Result<(), DaemonError> {
    // Names are looked up before the chroot hides /etc, as 2.6 does.
    let gid = match &cfg.group {
        None => None,
        Some(g) => {
            let name = CString::new(g.as_str()).map_err(|_| DaemonError::BadName {
                what: "group name",
                name: format!("{g:?}"),
            })?;
            // SAFETY: `name` is a valid C string; getgrnam returns null or a
            // pointer to static storage we read at once.
            let gr = unsafe { libc::getgrnam(name.as_ptr()) };
            if gr.is_null() {
                return Err(DaemonError::NoSuchAccount {
                    kind: "group",
                    name: g.clone(),
                });
            }
            // SAFETY: non-null result of getgrnam.
            Some(unsafe { (*gr).gr_gid })
        }
    };
    let uid = match &cfg.user {
        None => None,
        Some(u) => {
            let name = CString::new(u.as_str()).map_err(|_| DaemonError::BadName {
                what: "user name",
                name: format!("{u:?}"),
            })?;
            // SAFETY: as above, for getpwnam.
            let pw = unsafe { libc::getpwnam(name.as_ptr()) };
            if pw.is_null() {
                return Err(DaemonError::NoSuchAccount {
                    kind: "user",
                    name: u.clone(),
                });
            }
            // SAFETY: non-null result of getpwnam.
            Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid, name) })
        }
    };
    enter_chroot(cfg)?;
    if let Some(gid) = gid {
        // SAFETY: plain syscalls with valid arguments.
        let r = unsafe { libc::setgroups(1, &gid) };
        if r != 0 {
            return Err(DaemonError::io(
                "setgroups",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: plain syscall.
        if unsafe { libc::setgid(gid) } != 0 {
            return Err(DaemonError::io("setgid", std::io::Error::last_os_error()));
        }
    }
    // `user` alone: 2.6 keeps gid 0 and root's supplementary groups. We
    // take the user's own groups instead (initgroups, then its primary
    // gid), so nothing of root's stays behind after the drop.
    if let (Some((_, pw_gid, name)), None) = (&uid, gid) {
        // SAFETY: `name` is a valid C string; plain syscalls.
        if unsafe { libc::initgroups(name.as_ptr(), *pw_gid) } != 0 {
            return Err(DaemonError::io(
                "initgroups",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: plain syscall.
        if unsafe { libc::setgid(*pw_gid) } != 0 {
            return Err(DaemonError::io("setgid", std::io::Error::last_os_error()));
        }
    }
    if let Some((uid, _, _)) = uid {
        // SAFETY: plain syscall.
        if unsafe { libc::setuid(uid) } != 0 {
            return Err(DaemonError::io("setuid", std::io::Error::last_os_error()));
        }
    }
    if uid.is_some() || gid.is_some() {
        tracing::info!(user = ?cfg.user, group = ?cfg.group, "dropped privileges");
    }
    // 2.6 opens OPENVPN_PLUGIN_INIT_POST_UID_CHANGE plugins right after
    // do_uid_gid_chroot, whether or not it changed anything.
    if let Some(h) = crate::plugin::host() {
        h.uid_changed()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Not zero-sized: identity is the address, two ZST statics may share one.
    struct A(#[allow(dead_code)] u8);
    struct B(#[allow(dead_code)] u8);
    static CS_A: A = A(1);
    static CS_B: B = B(2);
    impl tracing::Callsite for A {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &tracing::Metadata<'_> {
            unimplemented!("not needed for identity")
        }
    }
    impl tracing::Callsite for B {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &tracing::Metadata<'_> {
            unimplemented!("not needed for identity")
        }
    }

    #[test]
    fn mute_passes_n_per_run_and_counts_the_rest() {
        let m = Mute {
            limit: 2,
            state: std::sync::Mutex::new((None, 0)),
        };
        let a = || tracing::callsite::Identifier(&CS_A);
        let b = || tracing::callsite::Identifier(&CS_B);
        assert_eq!(m.admit(a()), (true, None));
        assert_eq!(m.admit(a()), (true, None));
        assert_eq!(m.admit(a()), (false, None));
        assert_eq!(m.admit(a()), (false, None));
        // Another message ends the run: two were suppressed.
        assert_eq!(m.admit(b()), (true, Some(2)));
        assert_eq!(m.admit(a()), (true, None));
    }

    #[test]
    fn verb_levels() {
        assert_eq!(verb_filter(0), "error");
        assert_eq!(verb_filter(3), "info");
        assert_eq!(verb_filter(5), "debug");
        assert_eq!(verb_filter(11), "trace");
    }
}
