//! Fuzz target `inner_packet`: see `vpn_daemon::packet::fuzzing::inner_packet` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vpn_daemon::packet::fuzzing::inner_packet(data);
});
