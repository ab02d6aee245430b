#!/usr/bin/env python3
"""Attack: raw, packet and netlink sockets; network interfaces visible."""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_runtime import attempt, serve  # noqa: E402


def open_close(*args):
    s = socket.socket(*args)
    s.close()
    return "opened"


def handler(event):
    out = {
        "packet_raw": attempt(open_close, socket.AF_PACKET, socket.SOCK_RAW, 0x0300),
        "packet_dgram": attempt(open_close, socket.AF_PACKET, socket.SOCK_DGRAM, 0x0300),
        "inet_raw_icmp": attempt(open_close, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
        "inet_raw_tcp": attempt(open_close, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP),
        "inet6_raw": attempt(open_close, socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
        "inet_packet": attempt(open_close, socket.AF_INET, 10, 0x0300),  # SOCK_PACKET
        "inet_raw_nonblock": attempt(open_close, socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK,
                                     socket.IPPROTO_UDP),
        "netlink_route": attempt(open_close, socket.AF_NETLINK, socket.SOCK_RAW, 0),
        # if_nameindex() needs a netlink socket (SOCK_RAW, refused): read /proc instead.
        "interfaces": [line.split(":")[0].strip() for line in open("/proc/self/net/dev").readlines()[2:]],
        "udp_connect_out": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).connect(("192.0.2.1", 53))),
    }
    return out


serve(handler)
