"""The `cfld` command line.

The CLI only parses arguments and delegates (design §4.5).  Every sub-command lives in its own
module under :mod:`cfld.commands` and exposes ``register(subparsers)``, which adds its parser and
sets ``func`` (a callable taking the parsed namespace and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import typing
from collections.abc import Sequence

# Order = order in `cfld --help`.  A module that is absent (feature not built yet) is skipped.
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "generate",
    "train",
    "evaluate",
    "convert",
    "info",
    "data",
    "pose",
    "edit",
    "animate",
    "app",
)


class CLIError(ValueError):
    """A user error on the command line: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad flag reported in one line (not the whole usage) and exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available sub-command."""
    parser = _Parser(
        prog="cfld",
        description="Coarse-to-Fine Latent Diffusion for pose-guided person image synthesis.",
    )
    from cfld import __version__

    parser.add_argument("--version", action="version", version=f"cfld {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"cfld.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"cfld.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cfld` console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help/--version (0) or a bad flag (2, already printed)
        return done.code if isinstance(done.code, int) else 2
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        code = args.func(args)
    except (ValueError, FileNotFoundError) as err:
        # User errors (bad files, bad arguments, mismatched checkpoints) end in one clear line,
        # not a traceback.  Internal bugs are other exception types and keep their traceback.
        print(f"cfld {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        # The machine refused (permissions, a full disk, a read-only file system): also one line.
        where = f" ({err.filename})" if err.filename else ""
        print(f"cfld {args.command}: error: {err.strerror or err}{where}; check the paths and "
              "the free space", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"cfld {args.command}: error: out of memory; lower --batch-size, --size or the "
              "number of frames", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
