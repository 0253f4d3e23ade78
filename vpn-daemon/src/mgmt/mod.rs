//! Management: the status file / `status` output ([`status`]) and the
//! management interface line protocol ([`protocol`]), both sans-IO, and
//! the listener that serves management clients ([`listener`]).

pub mod listener;
pub mod protocol;
pub mod status;
