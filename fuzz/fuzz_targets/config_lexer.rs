//! Fuzz target `config_lexer`: see `vpn_daemon::proto::fuzzing::config_lexer` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vpn_daemon::proto::fuzzing::config_lexer(data);
});
