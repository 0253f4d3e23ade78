#!/usr/bin/env python3
# Regenerates the compression vectors of vpn-daemon/src/proto/data/compress.rs
# with the libraries stock OpenVPN 2.6 links: liblzo2's lzo1x_1_15_compress
# (lzo.c's LZO_COMPRESS) and liblz4's LZ4_compress_default (comp-lz4.c).
import ctypes, sys
lzo = ctypes.CDLL("liblzo2.so.2")
lz4 = ctypes.CDLL("liblz4.so.1")
# __lzo_init_v2 as lzo_init() macro does
r = lzo.__lzo_init_v2(ctypes.c_uint(lzo.lzo_version()), 2, 4, 8, 4, 8, 8, 8, 8, 48)
assert r == 0, r
def ipish(n):
    # an IPv4/UDP-looking packet with a text payload
    hdr = bytes([0x45,0,0,0,0,0,0x40,0,0x40,0x11,0,0,10,8,0,2,10,8,0,1])
    text = (b"The quick brown fox jumps over the lazy dog. " * 100)[:n-len(hdr)]
    return hdr + text
src = ipish(1400)
wrk = ctypes.create_string_buffer(32768)
out = ctypes.create_string_buffer(4096)
olen = ctypes.c_size_t(0)
r = lzo.lzo1x_1_15_compress(src, len(src), out, ctypes.byref(olen), wrk)
assert r == 0
lzo_c = out.raw[:olen.value]
o2 = ctypes.create_string_buffer(4096)
n = lz4.LZ4_compress_default(src, o2, len(src), 4096)
lz4_c = o2.raw[:n]
import os
D = os.path.dirname(os.path.abspath(__file__))
def rs(name, b):
    open(os.path.join(D, name.lower() + ".bin"), "wb").write(b)
rs("TEXT", src)
print(f"// lzo1x_1_15 {len(src)} -> {len(lzo_c)}, LZ4_compress_default -> {len(lz4_c)}")
rs("LZO1X_1_15", lzo_c)
rs("LZ4_DEFAULT", lz4_c)
st = 0x9E3779B97F4A7C15
rnd = bytearray()
for i in range(75):
    st ^= (st << 13) & 0xFFFFFFFFFFFFFFFF; st ^= st >> 7; st ^= (st << 17) & 0xFFFFFFFFFFFFFFFF
    rnd += st.to_bytes(8, "little")
src2 = bytes(rnd) + ipish(800) + bytes(rnd[:300]) + bytes(200)
r = lzo.lzo1x_1_15_compress(src2, len(src2), out, ctypes.byref(olen), wrk)
assert r == 0
n = lz4.LZ4_compress_default(src2, o2, len(src2), 4096)
rs("MIXED", src2)
print(f"// mixed {len(src2)} bytes: lzo {olen.value}, lz4 {n}")
rs("LZO1X_1_15_MIXED", out.raw[:olen.value])
rs("LZ4_DEFAULT_MIXED", o2.raw[:n])
