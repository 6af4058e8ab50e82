"""How every `cfld` command presents itself: defaults shown, examples at the end of ``--help``.

Light on purpose (no torch, no diffusers): ``cfld CMD --help`` imports this and the command's
module only.  The choice lists below are copies of the library's tables, kept equal to them by
``tests/test_cli_help.py``, so that drawing the help does not build the schedulers or models.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cfld.commands import COMMANDS

#: ``cfld.pipelines.schedulers.SCHEDULERS``, sorted.
SCHEDULER_NAMES: tuple[str, ...] = ("ddim", "ddpm", "dpm", "euler", "euler_a", "unipc")
#: ``cfld.pipelines.guidance.GUIDANCE_TYPES``, sorted.
GUIDANCE_NAMES: tuple[str, ...] = ("down_full", "none", "uc_down_full", "uc_down_updown_cdown",
                                   "uc_down_updown_full", "uc_full", "updown_full")
#: ``cfld.presets.PRESETS``, sorted.
PRESET_NAMES: tuple[str, ...] = ("fashion_256", "fashion_512", "market_128", "synthetic",
                                  "synthetic_128", "tiny")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; every option's default shown unless its help
    already says it (or there is none to show: ``None``, a flag that is off)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text.lower() or default in (None, False, argparse.SUPPRESS)
                or not action.option_strings or isinstance(default, list) and not default):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


def examples(lines: Sequence[str]) -> str:
    """The epilog: ``examples:`` and one command per line."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def add_command(subparsers: argparse._SubParsersAction, name: str, example_lines: Sequence[str],
                description: str | None = None, **kwargs) -> argparse.ArgumentParser:
    """``subparsers.add_parser`` with the one-line help of :data:`COMMANDS`, the description
    (default: that line), the examples as epilog and :class:`HelpFormatter`."""
    help_line = COMMANDS.get(name, kwargs.pop("help", None))
    return subparsers.add_parser(
        name, help=help_line, description=description or (help_line[:1].upper() + help_line[1:]
                                                           + "."),
        epilog=examples(example_lines), formatter_class=HelpFormatter, **kwargs)


__all__ = ["GUIDANCE_NAMES", "PRESET_NAMES", "SCHEDULER_NAMES", "HelpFormatter", "add_command",
           "examples"]
