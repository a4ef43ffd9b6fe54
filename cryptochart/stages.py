"""Subcommands of the pipeline's stages, registered with the ``cryptochart`` command."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

# Each stage's module has `register(subparsers)`; a stage not built yet is simply absent.
STAGE_MODULES = ("ingest.cli", "api.cli")


def stages() -> list[Register]:
    found = []
    for name in STAGE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (name + ".").startswith(exc.name + "."):
                raise  # the stage exists but something it imports is missing
            continue
        found.append(module.register)
    return found


def registered() -> set[str]:
    """Names of every subcommand the stages provide."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    for register in stages():
        register(sub)
    return set(sub.choices)
