"""Subcommands of the pipeline's stages, registered with the ``cryptochart`` command."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _ingest(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ingest.cli import register

    register(sub)


STAGES: list[Register] = [_ingest]
