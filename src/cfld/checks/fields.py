"""Dataclass configurations (e.g. :class:`cfld.training.TrainConfig`): every field checked
against its type annotation and, for numbers, its :class:`~cfld.checks.numbers.Number` rule.

Values read from JSON or ``--set key=value`` are never coerced: ``"8"``, ``true`` or ``2.5`` for
an integer field, ``"yes"`` for a boolean, NaN or a negative count are refused with the field's
name and its valid values.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from cfld.checks.numbers import Number


def _base(hint: Any) -> tuple[Any, bool]:
    """(the type without ``None``, whether ``None`` is allowed)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), len(args) < len(
            typing.get_args(hint))
    return hint, hint is type(None)


def check_field(name: str, value: Any, hint: Any, rule: Number | None = None) -> None:
    """Raise ValueError if ``value`` does not fit ``hint`` (and ``rule`` for numbers)."""
    base, optional = _base(hint)
    if value is None:
        if optional:
            return
        raise ValueError(f"{name} must be set (it cannot be null)")
    origin = typing.get_origin(base) or base
    if origin is tuple:
        if rule is not None:
            rule.check_all(value, name)
        elif not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list, got {value!r}")
        return
    if base is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return
    if base in (int, float):
        (rule or Number(name, integer=base is int)).check(value, name)
        return
    if base is str and not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    if origin in (dict, Mapping) and not isinstance(value, Mapping):
        raise ValueError(f"{name} must be an object (key: value), got {value!r}")


def check_fields(obj: Any, rules: Mapping[str, Number] | None = None) -> None:
    """Check every field of the dataclass instance ``obj`` (see :func:`check_field`)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        check_field(f.name, getattr(obj, f.name), hints[f.name], (rules or {}).get(f.name))


__all__ = ["check_field", "check_fields"]
