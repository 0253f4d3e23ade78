//! The management listener: a task that accepts management clients on TCP
//! or a unix socket, runs each one's session (password, greeting, command
//! lines) and hands the commands that need the tunnel's state to the loop
//! (through [`Loop`]: the loop's `Input::Mgmt`); it never blocks the loop.
//!
//! Beyond 2.6, which serves one client at a time: up to [`MAX_CLIENTS`]
//! sessions at once, each with a bounded outbox, so a client that stops
//! reading is disconnected instead of holding anything up.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::management::{Listen, Management};
use crate::error::DaemonError;
use crate::host::process::Signal;
use crate::mgmt::protocol::{
    Command, CommandReader, GateResult, LineReader, MAX_PASSWORD_FAILURES, MgmtSignal,
    PasswordGate, reply,
};

/// Management sessions served at once; more are closed on accept, so idle
/// connections cannot use up file descriptors.
pub const MAX_CLIENTS: usize = 16;

/// Replies queued for one client before it counts as not reading.
pub const OUTBOX: usize = 64;

/// How long a command waits for the loop before it gets an ERROR line (a
/// loop that does not take management input, or is busy connecting).
const LOOP_ANSWER: Duration = Duration::from_secs(5);

/// The 2.6 title `version` prints: tools parse its second word as semver
/// and branch on 2.4+, so it stays the OpenVPN version we speak.
fn title() -> String {
    format!(
        "OpenVPN 2.6.14 {}-pc-linux-gnu [SSL (OpenSSL)] [EPOLL] [MH/PKTINFO] [AEAD] [vpn-daemon {}]",
        std::env::consts::ARCH,
        env!("CARGO_PKG_VERSION")
    )
}

/// Where the listener hands what needs the tunnel (the loop's inputs; a
/// trait so that this layer does not name the loop's types).
pub trait Loop: Send + Sync + 'static {
    /// A command for the loop to answer on `reply`; `false` once the loop
    /// is gone.
    fn command(&self, command: Command, reply: oneshot::Sender<String>) -> bool;
    /// A signal, taken the way a real one is; `false` once the loop is gone.
    fn signal(&self, signal: Signal) -> bool;
}

/// The running listener; dropping it stops accepting, ends the sessions
/// and removes a unix socket it created.
pub struct Listener {
    task: JoinHandle<()>,
    unix_path: Option<PathBuf>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(p) = &self.unix_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Who may connect to a unix socket (`management-client-user/-group`).
#[derive(Debug, Clone, Copy, Default)]
struct PeerFilter {
    uid: Option<u32>,
    gid: Option<u32>,
}

/// What every session shares.
struct Shared {
    password: Option<String>,
    inputs: Box<dyn Loop>,
    slots: Arc<Semaphore>,
}

/// Binds the configured listener (if any) and spawns its accept task.
pub async fn start(m: &Management, inputs: impl Loop) -> Result<Option<Listener>, DaemonError> {
    let Some(listen) = &m.listen else {
        return Ok(None);
    };
    let password = match &m.password_file {
        Some(p) => Some(read_password(p)?),
        None => None,
    };
    let shared = Arc::new(Shared {
        password,
        inputs: Box::new(inputs),
        slots: Arc::new(Semaphore::new(MAX_CLIENTS)),
    });
    match listen {
        Listen::Tcp { host, port } => {
            let what = || format!("MANAGEMENT: resolving {host}:{port}");
            let addr = tokio::net::lookup_host((host.as_str(), *port))
                .await
                .map_err(|e| DaemonError::io(what(), e))?
                .next()
                .ok_or_else(|| {
                    DaemonError::io(
                        what(),
                        io::Error::new(io::ErrorKind::NotFound, "no address"),
                    )
                })?;
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| DaemonError::io(format!("MANAGEMENT: binding {addr}"), e))?;
            tracing::info!("MANAGEMENT: TCP Socket listening on [AF_INET]{addr}");
            let task = tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((s, peer)) => {
                            tracing::info!("MANAGEMENT: Client connected from [AF_INET]{peer}");
                            session(s, shared.clone());
                        }
                        Err(e) => accept_failed(e).await,
                    }
                }
            });
            Ok(Some(Listener {
                task,
                unix_path: None,
            }))
        }
        Listen::Unix(path) => {
            let filter = PeerFilter {
                uid: m.client_user.as_deref().map(user_id).transpose()?,
                gid: m.client_group.as_deref().map(group_id).transpose()?,
            };
            // A socket left by an earlier run would make bind fail; 2.6
            // unlinks it the same way.
            let _ = std::fs::remove_file(path);
            let l = UnixListener::bind(path).map_err(|e| {
                DaemonError::io(format!("MANAGEMENT: binding {}", path.display()), e)
            })?;
            tracing::info!(
                "MANAGEMENT: unix domain socket listening on {}",
                path.display()
            );
            let task = tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((s, _)) => {
                            if filter.allows(s.peer_cred().ok()) {
                                tracing::info!("MANAGEMENT: Client connected from unix socket");
                                session(s, shared.clone());
                            } else {
                                // 2.6 closes it without a word.
                                tracing::info!(
                                    "MANAGEMENT: client connection rejected: peer credentials do not match"
                                );
                            }
                        }
                        Err(e) => accept_failed(e).await,
                    }
                }
            });
            Ok(Some(Listener {
                task,
                unix_path: Some(path.clone()),
            }))
        }
    }
}

impl PeerFilter {
    fn allows(&self, cred: Option<tokio::net::unix::UCred>) -> bool {
        if self.uid.is_none() && self.gid.is_none() {
            return true;
        }
        let Some(c) = cred else {
            return false;
        };
        self.uid.is_none_or(|u| u == c.uid()) && self.gid.is_none_or(|g| g == c.gid())
    }
}

/// Out of descriptors or a client gone before accept: wait a little
/// instead of spinning.
async fn accept_failed(e: io::Error) {
    tracing::warn!(error = %e, "MANAGEMENT: accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// The pw-file's first line, as 2.6 reads it.
fn read_password(p: &PathBuf) -> Result<String, DaemonError> {
    let text = std::fs::read_to_string(p).map_err(|e| {
        DaemonError::io(
            format!("MANAGEMENT: reading password file {}", p.display()),
            e,
        )
    })?;
    Ok(text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r')
        .to_string())
}

fn user_id(name: &str) -> Result<u32, DaemonError> {
    let c = std::ffi::CString::new(name).map_err(|_| unknown("user", name))?;
    // SAFETY: getpwnam with a NUL-terminated name; the result is read at
    // once, before any other passwd call on this thread.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        return Err(unknown("user", name));
    }
    // SAFETY: non-null result of getpwnam.
    Ok(unsafe { (*pw).pw_uid })
}

fn group_id(name: &str) -> Result<u32, DaemonError> {
    let c = std::ffi::CString::new(name).map_err(|_| unknown("group", name))?;
    // SAFETY: as in `user_id`, for the group database.
    let gr = unsafe { libc::getgrnam(c.as_ptr()) };
    if gr.is_null() {
        return Err(unknown("group", name));
    }
    // SAFETY: non-null result of getgrnam.
    Ok(unsafe { (*gr).gr_gid })
}

fn unknown(kind: &'static str, name: &str) -> DaemonError {
    DaemonError::NoSuchAccount {
        kind,
        name: name.to_string(),
    }
}

/// Spawns one client's session if a slot is free; closes it otherwise.
fn session<S>(stream: S, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
        tracing::warn!("MANAGEMENT: too many clients ({MAX_CLIENTS}), connection closed");
        return;
    };
    tokio::spawn(async move {
        let (rd, wr) = tokio::io::split(stream);
        let (tx, rx) = mpsc::channel::<String>(OUTBOX);
        let writer = tokio::spawn(write_out(wr, rx));
        run_session(rd, &tx, &shared).await;
        drop(tx);
        // Let what is queued go out (a `quit` after commands), bounded.
        let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
        drop(permit);
        tracing::info!("MANAGEMENT: Client disconnected");
    });
}

async fn write_out<W: AsyncWrite>(wr: W, mut rx: mpsc::Receiver<String>) {
    let mut wr = std::pin::pin!(wr);
    while let Some(text) = rx.recv().await {
        if wr.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
    let _ = wr.shutdown().await;
}

/// Queues `text`; `false` when the client is not reading (it is then
/// disconnected) or gone.
fn send(tx: &mpsc::Sender<String>, text: String) -> bool {
    match tx.try_send(text) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!(
                "MANAGEMENT: client does not read its replies ({OUTBOX} queued), disconnected"
            );
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

async fn run_session<R: AsyncRead>(rd: R, tx: &mpsc::Sender<String>, shared: &Shared) {
    let mut rd = std::pin::pin!(rd);
    let mut gate = shared.password.clone().map(PasswordGate::new);
    let first = if gate.is_some() {
        PasswordGate::prompt().to_string()
    } else {
        reply::greeting()
    };
    if !send(tx, first) {
        return;
    }
    let mut lines = LineReader::new();
    let mut commands = CommandReader::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for line in lines.push(&buf[..n]) {
            let line = match gate.as_mut().map(|g| g.handle_line(&line)) {
                None | Some(GateResult::Command(_)) => line,
                Some(GateResult::Accepted(text)) => {
                    if !send(tx, text) {
                        return;
                    }
                    continue;
                }
                Some(GateResult::Retry(prompt)) => {
                    if !send(tx, prompt.to_string()) {
                        return;
                    }
                    continue;
                }
                Some(GateResult::Close) => {
                    tracing::warn!(
                        "MAN: client connection rejected after {MAX_PASSWORD_FAILURES} failed password attempts"
                    );
                    return;
                }
            };
            let command = match commands.handle_line(&line) {
                None => continue,
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    if let Some(text) = e.reply()
                        && !send(tx, text)
                    {
                        return;
                    }
                    continue;
                }
            };
            match answer(command, shared).await {
                Answer::Quit => return,
                Answer::Silent => {}
                Answer::Text(text) => {
                    if !send(tx, text) {
                        return;
                    }
                }
            }
        }
    }
}

enum Answer {
    Text(String),
    Silent,
    Quit,
}

/// Session-local commands here; the rest from the loop.
async fn answer(command: Command, shared: &Shared) -> Answer {
    match command {
        Command::Quit => Answer::Quit,
        Command::Help => Answer::Text(reply::help("OpenVPN")),
        Command::Version(None) => Answer::Text(reply::version(&title())),
        // 2.6 stores the client's version and prints nothing.
        Command::Version(Some(_)) => Answer::Silent,
        Command::Signal(s) => {
            let signal = match s {
                MgmtSignal::Hup => Signal::Hup,
                MgmtSignal::Term => Signal::Term,
                MgmtSignal::Usr1 => Signal::Usr1,
                MgmtSignal::Usr2 => Signal::Usr2,
            };
            // The reply goes first: the loop may end on this signal.
            let text = reply::signal_thrown(s);
            shared.inputs.signal(signal);
            Answer::Text(text)
        }
        command => {
            let (reply_tx, reply_rx) = oneshot::channel();
            if !shared.inputs.command(command, reply_tx) {
                return Answer::Text(reply::error("the tunnel is shutting down"));
            }
            match tokio::time::timeout(LOOP_ANSWER, reply_rx).await {
                Ok(Ok(text)) if text.is_empty() => Answer::Silent,
                Ok(Ok(text)) => Answer::Text(text),
                _ => Answer::Text(reply::error("the tunnel did not answer this command")),
            }
        }
    }
}
