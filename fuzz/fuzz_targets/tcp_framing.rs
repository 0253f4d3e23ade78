//! Fuzz target `tcp_framing`: see `vpn_daemon::fuzzing::tcp_framing` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vpn_daemon::fuzzing::tcp_framing(data);
});
