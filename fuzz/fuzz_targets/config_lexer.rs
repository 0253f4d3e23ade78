//! Fuzz target `config_lexer`: see `vpn_daemon::fuzzing::config_lexer` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vpn_daemon::fuzzing::config_lexer(data);
});
