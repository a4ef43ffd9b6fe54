"""Subcommands of the pipeline's stages, registered with the ``cryptochart`` command."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

STAGES: list[Register] = []
