"""Sampling profiles of a running stage with py-spy (attached by pid, so the stage runs exactly
as shipped), summarised as the functions that hold the most samples."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

RATE = 250  # samples per second


@dataclass
class Recording:
    proc: subprocess.Popen[bytes]
    out: Path


def executable() -> str | None:
    """py-spy from the venv the benchmarks run in, else from PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start(pid: int, out: Path, seconds: float, native: bool = False) -> Recording:
    """Record ``pid`` for ``seconds`` into ``out`` (collapsed stacks), idle threads left out."""
    cmd = [
        executable() or "py-spy",
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
    ]
    cmd += ["--rate", str(RATE), "--format", "raw", "--output", str(out), "--nonblocking"]
    if native:
        cmd.append("--native")
    return Recording(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), out)


def finish(recording: Recording, timeout: float = 60) -> Path:
    recording.proc.wait(timeout)
    return recording.out


def summary(collapsed: Path, lines: int = 12) -> list[str]:
    """Top functions by own samples and by samples including callees, as percentages."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return ["no samples"]
    out = [f"{total} samples; own time:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(lines)]
    out.append("including callees:")
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(lines)]
    return out


def _short(frame: str) -> str:
    """``write_row (psycopg/copy.py:123)`` → ``write_row (psycopg/copy.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    keep = parts[parts.index("site-packages") + 1 :] if "site-packages" in parts else parts[-2:]
    return f"{name} ({'/'.join(keep)})" if where else name


class StageProfile:
    """py-spy on one stage for a measurement window, when the run asks for profiles; its summary
    goes to the terminal and the collapsed stacks to ``<profile dir>/<name>.txt``."""

    def __init__(self, folder: Path | None, name: str, pid: int, seconds: float) -> None:
        self.recording: Recording | None = None
        if folder is not None and executable() is not None:
            folder.mkdir(parents=True, exist_ok=True)
            self.recording = start(pid, folder / f"{name}.txt", seconds)
        self.name = name

    def report(self) -> None:
        if self.recording is None:
            return
        out = finish(self.recording)
        if out.exists():
            print(f"profile of {self.name} ({out}):")
            print("\n".join(summary(out)), flush=True)
