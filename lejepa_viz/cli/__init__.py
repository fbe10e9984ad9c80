"""``lejepa-viz`` command line: one sub-command per job, each a thin call of a library function.

Each command has a small builder (its options, from the shared groups of :mod:`.options`) and a
runner that turns names and paths into objects once (images, an encoder, snapshots) and calls
the library: :mod:`.commands` trains, evaluates and animates, :mod:`.maps` draws a ViT's patch
maps. The runners print what they made and return it: :func:`run` gives the gallery the record
the command line prints. Bad arguments end with a one-line message and exit status 2, never a
traceback (:func:`main`). The ``lejepa-viz`` program (:mod:`lejepa_viz.__main__`) is these
commands and ``gallery``, which runs them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ..train.recipes import RECIPES
from . import commands, maps
from .options import ERRORS, add_config_arguments, config_argv, flag, from_args

COMMANDS = (
    commands.add_clouds,
    commands.add_train,
    commands.add_eval,
    commands.add_animate,
    commands.add_flow,
    commands.add_lambda,
    maps.add_pca,
    maps.add_attention,
    maps.add_maps,
    maps.add_evolve,
    maps.add_video,
)

__all__ = [
    "COMMANDS",
    "add_config_arguments",
    "config_argv",
    "flag",
    "from_args",
    "main",
    "parser",
    "run",
]


def parser(commands: Sequence[Callable] = COMMANDS) -> argparse.ArgumentParser:
    """The ``lejepa-viz`` parser: one sub-parser per builder of ``commands``."""
    p = argparse.ArgumentParser(prog="lejepa-viz", description="LeJEPA and SIGReg, seen.")
    sub = p.add_subparsers(dest="command", required=True)
    for add in commands:
        add(sub)
    return p


def parse(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``p.parse_args(argv)``; with ``train --recipe NAME`` parsed again with the recipe's
    fields as the command's defaults, so that every option given on the line wins."""
    args = p.parse_args(argv)
    if getattr(args, "recipe", None):
        args.subparser.set_defaults(**RECIPES[args.recipe].fields)
        args = p.parse_args(argv)
    return args


def run(argv: list[str], commands: Sequence[Callable] = COMMANDS):
    """Run one command and return what it made (its record, table or result); errors raise."""
    args = parse(parser(commands), argv)
    return args.run(args)


def main(argv: list[str] | None = None, commands: Sequence[Callable] = COMMANDS) -> int:
    """``run`` with bad input ending in one line on stderr and exit status 2."""
    args = parse(parser(commands), argv)
    try:
        args.run(args)
    except ERRORS as err:
        print(f"lejepa-viz {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0
