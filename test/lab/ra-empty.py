#!/usr/bin/env python3
# An "empty" IPv6 router advertisement on one interface, every half second: router lifetime
# 0 (not a default router), M=0 O=0 (no DHCPv6), no options (no prefix, so no address).
# The lab uses it (LAB_IPV6_RA=empty) to see whether iPXE ends its wait for IPv6 router
# discovery on such an RA, which tells hosts nothing they act on. Run it in the lab's
# namespace only: usage ra-empty.py IFNAME
import socket
import struct
import sys
import time

ifname = sys.argv[1]
index = socket.if_nametoindex(ifname)
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
# type 134, code 0, checksum (the kernel fills it in), cur hop limit 0, flags 0 (M=0 O=0),
# router lifetime 0, reachable time 0, retrans timer 0; no options
ra = struct.pack('!BBHBBHII', 134, 0, 0, 0, 0, 0, 0, 0)
while True:
    try:
        s.sendto(ra, ('ff02::1', 0, 0, index))
    except OSError as e:  # no link-local address yet (DAD), or no carrier
        print(f'ra-empty: {e}', file=sys.stderr, flush=True)
    time.sleep(0.5)
