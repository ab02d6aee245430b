#!/usr/bin/env python3
"""Attack: allocate and touch far more memory than the function's MemorySize."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_runtime import serve  # noqa: E402


def handler(event):
    if not event.get("bomb"):
        return {"bombed": False}
    chunks = []
    for i in range(int(event.get("mb", 1024)) // 16):
        chunks.append(bytearray(16 << 20))  # zero-filled: every page is touched
        print(f"allocated {(i + 1) * 16} MB", flush=True)
    return {"bombed": True, "allocated_mb": len(chunks) * 16}


serve(handler)
