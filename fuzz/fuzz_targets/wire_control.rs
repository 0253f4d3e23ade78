//! Fuzz target `wire_control`: see `vpn_daemon::fuzzing::wire_control` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vpn_daemon::fuzzing::wire_control(data);
});
