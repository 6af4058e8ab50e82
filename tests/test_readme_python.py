"""Every Python block of the README runs, in order, in one namespace, as a user would paste them.

The blocks run in a folder holding what they name (``person.jpg``: a procedural person).  The
only change made to them is marked here: fewer denoising steps, to keep the test fast; ``MODEL``
is the shipped model in the README itself.
"""

from __future__ import annotations

import re

import pytest

from conftest import REPO

#: README text → what the test runs instead (each must be in the README, so edits are noticed).
SUBSTITUTIONS = {"num_inference_steps=50,": "num_inference_steps=2,"}


def python_blocks() -> list[tuple[int, str]]:
    """(first line number, code) of every ```python block of the README."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M):
        out.append((text[: m.start()].count("\n") + 2, m.group(1)))
    return out


def test_the_readme_has_its_python_blocks():
    blocks = python_blocks()
    assert len(blocks) >= 3
    text = "".join(code for _, code in blocks)
    for old in SUBSTITUTIONS:
        assert old in text, f"the README no longer contains {old!r}; update SUBSTITUTIONS"
    assert 'MODEL = "cfld-synthetic"' in text


def test_every_python_block_runs(tmp_path, monkeypatch):
    from cfld.data.synthetic_root import make_sample_root

    root = make_sample_root(tmp_path / "root", people=1, poses=2, size=(256, 176),
                            test_people=1)
    person = sorted((root / "test_highres").iterdir())[0]
    (tmp_path / "person.jpg").write_bytes(person.read_bytes())
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    for line, code in python_blocks():
        for old, new in SUBSTITUTIONS.items():
            code = code.replace(old, new)
        try:
            exec(compile(code, f"README.md:{line}", "exec"), namespace)  # noqa: S102
        except Exception as err:  # noqa: BLE001 - name the block that failed
            pytest.fail(f"README.md block at line {line} fails: {type(err).__name__}: {err}")
    assert (tmp_path / "person_walking.png").is_file()
    assert namespace["eps"].shape == namespace["latents"].shape
