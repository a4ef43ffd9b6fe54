"""Free ports on loopback for processes started on them (private clusters, API replicas, tests and
benchmarks), chosen outside the kernel's range of ephemeral ports.

A port the kernel hands out for ``bind(0)`` is one of its ephemeral ports, which any outgoing
connection on the machine may take as its source port between the choice and the listener's own
``bind`` (seconds for a JVM to start): with test sessions running side by side, each making
connections by the thousand, that happens. Ports below the ephemeral range are never given to an
outgoing connection, so only a listener that chose the same one can collide, and a random choice
over twenty thousand ports makes that unlikely.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LINUX_DEFAULT = (32768, 60999)
LOWEST = 10_000  # below: well-known and registered ports of common services
TRIES = 200


def ephemeral_range() -> tuple[int, int]:
    """The kernel's ephemeral ports, first and last (Linux's default where it cannot be read)."""
    try:
        low, high = (int(part) for part in EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return LINUX_DEFAULT
    return low, high


def _choices(count: int) -> range:
    """First ports of ``count`` consecutive ones that lie outside the ephemeral range."""
    low, high = ephemeral_range()
    below = range(LOWEST, low - count + 1)
    above = range(high + 1, 65536 - count + 1)
    return below if len(below) >= len(above) else above


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int = 1) -> int:
    """The first of ``count`` consecutive ports that nothing holds on 127.0.0.1 now."""
    choices = _choices(count)
    for _ in range(TRIES):
        first = random.choice(choices)
        if all(_bindable(port) for port in range(first, first + count)):
            return first
    raise OSError(f"no {count} consecutive free ports on 127.0.0.1 in {choices}")


def free_port() -> int:
    """A port that nothing holds on 127.0.0.1 now."""
    return free_ports(1)
