//! vpn-ebpf: the XDP classifier of the UDP data path.
//!
//! An established peer's P_DATA_V2 packets (opcode 9, known 24-bit peer-id,
//! from the address and port in its `PEERS` entry, to a port in `PORTS`) are
//! redirected to the AF_XDP socket of the receiving queue. A P_DATA_V2 with
//! an unknown peer-id is dropped when `CONFIG[CONFIG_DROP_UNKNOWN_PEER]` is
//! set; everything else goes to the kernel stack with `XDP_PASS`. Each frame
//! counts once in `RX_TOTAL` and once in exactly one reason slot of `STATS`.

#![no_std]
#![no_main]

mod parse;
mod steer;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use vpn_common::stats;

use crate::parse::Pass;

/// Entry point: counts the frame, classifies it, counts the pass reason.
#[xdp]
pub fn vpn_xdp(ctx: XdpContext) -> u32 {
    steer::count(stats::RX_TOTAL);
    match try_vpn_xdp(&ctx) {
        Ok(action) => action,
        Err(Pass(reason)) => {
            steer::count(reason);
            xdp_action::XDP_PASS
        }
    }
}

/// `Ok` carries a verdict already counted (redirect or drop); `Err` is a
/// pass with the reason still to count.
#[inline(always)]
fn try_vpn_xdp(ctx: &XdpContext) -> Result<u32, Pass> {
    let udp = parse::udp(ctx)?;
    if !steer::is_our_port(udp.dst_port) {
        return Err(Pass(stats::PASS_OTHER_PORT));
    }
    let peer_id = parse::data_v2(ctx, &udp)?;
    steer::data_v2(ctx, peer_id, &udp.source)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable in a verified program: the verifier rejects any path that
    // could get here, since BPF cannot loop forever.
    loop {}
}

/// XDP redirect helpers are GPL-only; the object declares a GPL-compatible licence.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
