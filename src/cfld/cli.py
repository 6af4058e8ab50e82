"""The `cfld` command line.

The CLI only parses arguments and delegates (design §4.5).  Every sub-command lives in its own
module under :mod:`cfld.commands` and exposes ``register(subparsers)``, which adds its parser and
sets ``func`` (a callable taking the parsed namespace and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import typing
from collections.abc import Sequence

from cfld.commands import COMMANDS

#: Order = order in `cfld --help`.
COMMAND_MODULES: tuple[str, ...] = tuple(COMMANDS)
EXAMPLES = (
    "cfld demo                                   # the shipped small model, offline",
    "cfld generate --source me.jpg --pose walking --out me_walking.png",
    "cfld convert --official CFLD/checkpoints --pretrained-sd stable-diffusion-v1-5/"
    "stable-diffusion-v1-5 --out cfld-fashion",
)


class CLIError(ValueError):
    """A user error on the command line: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad flag reported in one line (not the whole usage) and exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        if message.endswith("expected one argument"):  # `--size -5x10`: the value looks a flag
            flag = message.split(":")[0].replace("argument ", "").split("/")[-1]
            message += f" (a value that starts with '-' is written {flag}=VALUE)"
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _command_in(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (the first word that is one), else None."""
    return next((a for a in argv if not a.startswith("-")), None) if argv else None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The top-level parser.  Only the sub-command named in ``argv`` is imported and built in
    full (all of them when ``argv`` is None); the others are one-line entries, so that
    ``cfld --help`` and ``cfld CMD --help`` import neither torch nor diffusers."""
    from cfld import __version__
    from cfld.commands._help import HelpFormatter, examples

    parser = _Parser(
        prog="cfld", formatter_class=HelpFormatter,
        description="Coarse-to-Fine Latent Diffusion for pose-guided person image synthesis.\n"
                    "The shipped model is a small model of procedural people, for trying the "
                    "tools offline;\nreal photos need the authors' weights (README: Real "
                    "weights).",
        epilog=examples(EXAMPLES) + "\n\n`cfld COMMAND --help` shows each command's options "
                                   "and examples.")
    parser.add_argument("--version", action="version", version=f"cfld {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = None if argv is None else _command_in(argv)
    for name in COMMAND_MODULES:
        if argv is not None and name != wanted:
            sub.add_parser(name, help=COMMANDS[name], add_help=False)
            continue
        module = importlib.import_module(f"cfld.commands.{name}")
        module.register(sub)
    return parser


#: Third-party log levels for a command's run (set unless the user set them): diffusers' and
#: transformers' warnings, TensorFlow Lite / glog lines of MediaPipe.
QUIET_ENV = {"DIFFUSERS_VERBOSITY": "error", "TRANSFORMERS_VERBOSITY": "error",
             "TF_CPP_MIN_LOG_LEVEL": "3", "GLOG_minloglevel": "2"}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cfld` console script."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help/--version (0) or a bad flag (2, already printed)
        return done.code if isinstance(done.code, int) else 2
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    from cfld.checks.messages import one_line_warnings

    try:
        with one_line_warnings(f"cfld {args.command}"):  # no file:line: prefix, no source line
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
