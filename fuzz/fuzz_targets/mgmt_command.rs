//! Fuzz target `mgmt_command`: see `vpn_daemon::fuzzing::mgmt_command` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vpn_daemon::fuzzing::mgmt_command(data);
});
