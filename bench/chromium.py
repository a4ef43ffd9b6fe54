"""The headless Chromium that the page's benchmarks and browser tests drive (Debian's, installed by
``scripts/setup.sh``), and the flags that keep it quiet and off the network."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
