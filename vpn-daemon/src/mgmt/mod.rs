//! Management: the status file / `status` output ([`status`]) and the
//! management interface line protocol ([`protocol`]), both sans-IO.

pub mod protocol;
pub mod status;
