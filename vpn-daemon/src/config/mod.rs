//! OpenVPN config files and command-line flags -> one typed `Config`, with
//! errors that name the file and line.
