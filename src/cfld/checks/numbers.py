"""Numeric arguments: one rule per argument, used by the API and by argparse alike.

A :class:`Number` says what a value must be (an integer or a finite real, inside a range).
``rule.check(value)`` validates what the Python API receives; ``rule.arg()`` is the argparse
``type=`` of the matching flag, so ``--steps -3`` and ``num_inference_steps=-3`` are refused by the
same rule with the same words (argparse then exits with code 2).
"""

from __future__ import annotations

import argparse
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Number:
    """What one numeric argument must be.

    Attributes:
        name: The argument's name in messages (the API keyword, e.g. ``num_inference_steps``).
        integer: Whole numbers only (``2.5`` is refused, ``2.0`` becomes ``2``).
        lo, hi: Bounds (``None``: unbounded); ``lo_open`` / ``hi_open`` exclude them.
        example: A typical value, shown in the message (``e.g. 50``).
    """

    name: str
    integer: bool = False
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    example: str = ""

    def named(self, name: str) -> Number:
        """The same rule under another name (``scale_pose`` and ``scale_app`` share one)."""
        return replace(self, name=name)

    def describe(self) -> str:
        """``an integer from 1 to 1000`` / ``a finite number > 0`` / ..."""
        kind = "an integer" if self.integer else "a finite number"
        fmt = _fmt
        if self.lo is not None and self.hi is not None:
            if not (self.lo_open or self.hi_open):
                text = f"{kind} from {fmt(self.lo)} to {fmt(self.hi)}"
            else:
                left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
                text = f"{kind} in {left}{fmt(self.lo)}, {fmt(self.hi)}{right}"
        elif self.lo is not None:
            text = f"{kind} {'>' if self.lo_open else '>='} {fmt(self.lo)}"
        elif self.hi is not None:
            text = f"{kind} {'<' if self.hi_open else '<='} {fmt(self.hi)}"
        else:
            text = kind
        return text + (f" (e.g. {self.example})" if self.example else "")

    def _fail(self, value: object, name: str | None, text: bool = False) -> ValueError:
        shown = value if text else repr(value)
        if name == "":
            return ValueError(f"must be {self.describe()}, got {shown}")
        return ValueError(f"{name or self.name} must be {self.describe()}, got {shown}")

    def check(self, value: object, name: str | None = None) -> int | float:
        """Return ``value`` as an ``int`` (integer rules) or ``float``, or raise ValueError.

        Booleans, strings, None and non-finite numbers are refused (never coerced).
        """
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self._fail(value, name)
        if self.integer:
            if isinstance(value, numbers.Integral):
                out: int | float = int(value)
            elif math.isfinite(float(value)) and float(value).is_integer():
                out = int(float(value))
            else:
                raise self._fail(value, name)
        else:
            out = float(value)
            if not math.isfinite(out):
                raise self._fail(value, name)
        if self.lo is not None and (out < self.lo or (self.lo_open and out == self.lo)):
            raise self._fail(value, name)
        if self.hi is not None and (out > self.hi or (self.hi_open and out == self.hi)):
            raise self._fail(value, name)
        return out

    def check_optional(self, value: object, name: str | None = None) -> int | float | None:
        """:meth:`check`, with ``None`` allowed (meaning "not set")."""
        return None if value is None else self.check(value, name)

    def parse(self, text: str, name: str | None = None) -> int | float:
        """A command-line string → the checked value (``"nan"``, ``"1e999"``, ``"3.5"`` for an
        integer, ``"abc"`` are all refused)."""
        raw = text.strip()
        name = "" if name is None else name  # argparse prefixes the flag itself
        try:
            value: int | float = int(raw) if self.integer else float(raw)
        except ValueError:
            if not self.integer:
                raise self._fail(text, name, text=True) from None
            try:
                value = float(raw)  # "1e3" is an integer written in float notation
            except ValueError:
                raise self._fail(text, name, text=True) from None
        try:
            return self.check(value, name)
        except ValueError:
            raise self._fail(text, name, text=True) from None

    def arg(self) -> Callable[[str], int | float]:
        """The argparse ``type=`` callable of this rule (errors exit with code 2)."""

        def convert(text: str) -> int | float:
            try:
                return self.parse(text)
            except ValueError as err:
                raise argparse.ArgumentTypeError(str(err)) from None

        convert.__name__ = self.name  # argparse names the type in some messages
        return convert

    def check_all(self, values: object, name: str | None = None) -> tuple[int | float, ...]:
        """Every item of a list/tuple under this rule (e.g. ``decay_epochs``)."""
        label = name or self.name
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise ValueError(f"{label} must be a list of numbers, each {self.describe()}; got "
                             f"{values!r}")
        return tuple(self.check(v, f"every value of {label}") for v in values)


def _fmt(v: float) -> str:
    if float(v).is_integer() and abs(v) >= 1e6:
        exp = math.log2(abs(v) + 1)
        if exp.is_integer():
            return f"2**{int(exp)} - 1"
    return f"{int(v)}" if float(v).is_integer() else f"{v:g}"


# ----------------------------------------------------------------------------- resource bounds
#: Most denoising steps (the schedulers are trained on 1000 timesteps).
MAX_STEPS = 1000
#: Most frames of an interpolation or an animation (each frame is a full generation).
MAX_FRAMES = 500
#: Longest side of an output image (a 4096×4096 RGB image is 48 MB).
MAX_OUTPUT_SIDE = 4096
#: Largest batch of a generation or evaluation call.
MAX_BATCH = 1024

# ----------------------------------------------------------------------------- the named rules
STEPS = Number("num_inference_steps", integer=True, lo=1, hi=MAX_STEPS, example="50")
#: Guidance weights w_pose / w_app of Eq. (7) and the official scale names.
GUIDANCE_SCALE = Number("guidance scale", lo=0, hi=100, example="2.0")
#: torch and numpy generators take seeds below 2**32 alike.
SEED = Number("seed", integer=True, lo=0, hi=2**32 - 1, example="0")
ETA = Number("eta", lo=0, hi=1)
BATCH_SIZE = Number("batch_size", integer=True, lo=1, hi=MAX_BATCH, example="4")
LIMIT = Number("limit", integer=True, lo=1, example="100")
FRAMES = Number("frames", integer=True, lo=2, hi=MAX_FRAMES, example="5")
FPS = Number("fps", lo=0, hi=120, lo_open=True, example="8")
PAIRS = Number("pairs", integer=True, lo=1, hi=10_000, example="6")
PORT = Number("port", integer=True, lo=1, hi=65535, example="7860")
UPLOAD_MB = Number("max_upload_mb", lo=0, hi=4096, lo_open=True, example="10")
COUNT = Number("count", integer=True, lo=1, hi=10**7)
NON_NEGATIVE_COUNT = Number("count", integer=True, lo=0, hi=10**7)


def check_numbers(**values: tuple[Number, object]) -> dict[str, int | float]:
    """Check several arguments at once: ``check_numbers(steps=(STEPS, 50))``; the keyword names
    each argument in its message."""
    return {name: rule.check(value, name) for name, (rule, value) in values.items()}


__all__ = ["BATCH_SIZE", "COUNT", "ETA", "FPS", "FRAMES", "GUIDANCE_SCALE", "LIMIT",
           "MAX_BATCH", "MAX_FRAMES", "MAX_OUTPUT_SIDE", "MAX_STEPS", "NON_NEGATIVE_COUNT",
           "Number", "PAIRS", "PORT", "SEED", "STEPS", "UPLOAD_MB", "check_numbers"]
