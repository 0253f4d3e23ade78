//! Management: status output and the management interface line protocol.

pub mod status;
