//! The client's `status` file and its answer to the management
//! interface's `status`: OpenVPN's STATISTICS block from one snapshot of
//! the counters (plus the XDP counters when the fast path runs).

use crate::config::Config;
use crate::io::clock;
use crate::io::files::write_atomic;
use crate::io::xdp::fastpath::FastPath;
use crate::mgmt::protocol::{Command, reply};
use crate::mgmt::status::{ClientStatus, LineEnd, SystemLocalTime, render_client};
use crate::proto::data::CompressFraming;
use crate::proto::session::Session;
use crate::tunnel::status::command_name;

/// Brings the counters up to now: time, XDP counters, and the
/// compression counters (2.6 prints them whenever a framing is set).
pub(crate) fn snapshot(stats: &mut ClientStatus, session: &Session, fast: Option<&FastPath>) {
    stats.now = clock::unix_time();
    stats.xdp = fast.map(FastPath::counters);
    let comp = session.data_channel().compressor();
    stats.compression = (comp.framing() != CompressFraming::None).then(|| {
        let s = comp.stats();
        [
            s.pre_compress,
            s.post_compress,
            s.pre_decompress,
            s.post_decompress,
        ]
    });
}

/// Writes the `status` file (atomically), if one is configured.
pub(crate) fn write_status(
    cfg: &Config,
    stats: &mut ClientStatus,
    session: &Session,
    fast: Option<&FastPath>,
) {
    let Some(sf) = &cfg.status else {
        return;
    };
    snapshot(stats, session, fast);
    let text = render_client(stats, LineEnd::Lf, &SystemLocalTime);
    if let Err(e) = write_atomic(&sf.path, text.as_bytes()) {
        tracing::warn!(error = %e, "status file");
    }
}

/// The answer to a management command that the client loop knows: `pid`,
/// and `status` rendered as the status file is, with CRLF.
pub(crate) fn mgmt_reply(
    command: &Command,
    stats: &mut ClientStatus,
    session: &Session,
    fast: Option<&FastPath>,
) -> String {
    match command {
        Command::Pid => reply::pid(std::process::id()),
        Command::Status(_) => {
            snapshot(stats, session, fast);
            render_client(stats, LineEnd::CrLf, &SystemLocalTime)
        }
        other => reply::error(&format!(
            "{} is not answered by the tunnel loop",
            command_name(other)
        )),
    }
}
