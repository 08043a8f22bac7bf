#!/usr/bin/env python3
"""A user-space delay line (the kernel here has no netem): every packet routed into a TUN device is held
for --delay-ms, optionally dropped with --loss percent, then written back to the same device.

Policy routing in the router sends an agent's traffic into the TUN; what we write back arrives with the
TUN as input interface, takes the main table and so cannot loop.
"""
from __future__ import annotations

import argparse
import fcntl
import heapq
import os
import random
import select
import struct
import time

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
MAX_QUEUED = 20000  # a full queue drops like a real one instead of growing without bound
BUSY_WINDOW = 0.0003  # select() wakes late by ~0.5 ms; spinning the last 300 us keeps the delay exact
MTU_READ = 65535


def attach(dev: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", dev.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def take(fd: int, queue: list, delay: float, loss: float, seq: int) -> int:
    """Read everything waiting, so one wake-up serves a whole burst."""
    now = time.monotonic()
    while True:
        try:
            packet = os.read(fd, MTU_READ)
        except BlockingIOError:
            return seq
        if len(queue) >= MAX_QUEUED or (loss and random.random() * 100 < loss):
            continue
        seq += 1
        heapq.heappush(queue, (now + delay, seq, packet))


def release(fd: int, queue: list) -> None:
    now = time.monotonic()
    while queue and queue[0][0] <= now:
        try:
            os.write(fd, heapq.heappop(queue)[2])
        except OSError:
            pass  # the stack refused one packet (e.g. no route any more): a lost packet, not a crash


def run(dev: str, delay_ms: float, loss: float) -> None:
    fd, queue, seq, delay = attach(dev), [], 0, delay_ms / 1000.0
    print(f"ready {dev} delay={delay_ms}ms loss={loss}%", flush=True)
    while True:
        wait = None
        if queue:
            wait = max(0.0, queue[0][0] - time.monotonic() - BUSY_WINDOW)
        readable, _, _ = select.select([fd], [], [], wait)
        if readable:
            seq = take(fd, queue, delay, loss, seq)
        release(fd, queue)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dev", required=True)
    parser.add_argument("--delay-ms", type=float, required=True, help="per pass: half the added round trip")
    parser.add_argument("--loss", type=float, default=0.0, help="percent of packets dropped per pass")
    args = parser.parse_args()
    run(args.dev, args.delay_ms, args.loss)


if __name__ == "__main__":
    main()
