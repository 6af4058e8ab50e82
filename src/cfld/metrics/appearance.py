"""The swapped-source control for appearance scores (our reports; not the authors' protocol).

A pose-guided model can score well on shape metrics while ignoring the source: it draws "a
person in this pose".  The control exposes that: the same target poses (and the same noise) are
generated from ANOTHER person's source image, and scored against the same ground truth.  A model
that carries the source's appearance scores much worse with the swapped source; one that ignores
the source scores the same.  :func:`swapped_sources` picks the other person for every pair.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePath

__all__ = ["person_key", "swapped_sources"]

# DeepFashion names carry the person (item) as ``id`` + 8 digits (``...id0000404701_7additional``);
# our procedural people use the same scheme.
_PERSON_ID = re.compile(r"id(\d{8})")


def person_key(name: str) -> str:
    """Identity of the person in an image file name of the DeepFashion layout.

    ``fashionWOMENDressesid0000262902_3back.jpg`` → ``fashionWOMENDressesid00002629``.  Names
    without an ``id`` + 8 digits fall back to the stem before its last ``_``.
    """
    stem = PurePath(name).stem
    m = _PERSON_ID.search(stem)
    if m:
        return stem[: m.end()]
    return stem.rsplit("_", 1)[0]


def swapped_sources(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """For every (source, target) pair, the source image of a DIFFERENT person.

    Pair ``i`` takes the source of pair ``(i + n//2 + k) mod n`` for the smallest ``k >= 0``
    whose person differs from pair ``i``'s source person, so the choice is deterministic and
    spread over the list (pair lists are grouped by person).

    Raises:
        ValueError: when every pair shows the same person (no control is possible).
    """
    n = len(pairs)
    keys = [person_key(s) for s, _ in pairs]
    if len(set(keys)) < 2:
        raise ValueError(
            "the swapped-source control needs pairs of at least two people; "
            f"all {n} pairs show {keys[0] if keys else 'nobody'}"
        )
    out = []
    for i in range(n):
        for k in range(n):
            j = (i + n // 2 + k) % n
            if keys[j] != keys[i]:
                out.append(pairs[j][0])
                break
    return out
