#!/usr/bin/env python3
"""Attack: spin the CPU past the function's timeout (in every thread it may run)."""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_runtime import serve  # noqa: E402


def spin():
    x = 0
    while True:
        x += 1


def handler(event):
    if not event.get("spin"):
        return {"spun": False}
    if event.get("fork"):
        for _ in range(2):
            if os.fork() == 0:
                spin()
    threading.Thread(target=spin, daemon=True).start()
    spin()


serve(handler)
