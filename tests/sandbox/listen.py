#!/usr/bin/env python3
"""Attack: listen on TCP (0.0.0.0, 127.0.0.1, ::) so the host can connect in.

Reports each step; if a listen ever succeeded it waits up to 2 s for a connection from the host
(the test connects to the port on the host's addresses meanwhile)."""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_runtime import attempt, serve  # noqa: E402


def try_listen(family, addr, port):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((addr, port))
        s.listen(8)
        s.settimeout(2)
        conn, peer = s.accept()
        conn.close()
        return f"accepted a connection from {peer}"
    finally:
        s.close()


def handler(event):
    port = int(event.get("port", 8080))
    return {
        "listen_any": attempt(try_listen, socket.AF_INET, "0.0.0.0", port),
        "listen_loopback": attempt(try_listen, socket.AF_INET, "127.0.0.1", port + 1),
        "listen_any6": attempt(try_listen, socket.AF_INET6, "::", port + 2),
        "bind_udp_any": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(("0.0.0.0", port))),
    }


serve(handler)
