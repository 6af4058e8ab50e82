"""Every registered README figure equals its stored result; no unregistered number in the tables
of the strict sections (tests/readme_claims.py says how to register one)."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from readme_claims import CLAIMS, LIVE, QUOTED, STRICT_SECTIONS, TOP, Cell, Prose, format_value

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
RESULTS = REPO / "benchmarks" / "results"
# a number: digits with thousands commas, decimals, an exponent; not inside a word (fp32, W_k)
NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?(?![\w])")


# ------------------------------------------------------------------------------ reading README
def sections(text: str) -> dict[str, str]:
    """``## heading`` → its text (up to the next ``##``); TOP → the text before the first."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {TOP: parts[0], **{parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}}


def tables(section: str) -> list[dict[str, Any]]:
    """Markdown tables of a section: ``{"header": [...], "rows": [[cell, ...], ...]}``."""
    found, current = [], None
    for line in section.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if current is None:
                current = {"header": cells, "rows": []}
                found.append(current)
            elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current["rows"].append(cells)
        else:
            current = None
    return found


@cache
def readme_sections() -> dict[str, str]:
    return sections(README.read_text())


def row_matches(spec: str, row: list[str]) -> bool:
    """``spec`` = pieces of the first cells, joined by ``|``."""
    pieces = spec.split("|")
    return len(row) >= len(pieces) and all(p in c for p, c in zip(pieces, row))


def claim_cells(claim: Cell, text: str) -> list[tuple[int, int, str, str]]:
    """(table, row, header, cell) of every cell the claim's row and column select."""
    found = []
    for ti, table in enumerate(tables(text)):
        if claim.table is not None and ti != claim.table:
            continue
        cols = ([i for i, h in enumerate(table["header"]) if h == claim.column]
                or [i for i, h in enumerate(table["header"]) if claim.column in h])
        for ri, row in enumerate(table["rows"]):
            if cols and row_matches(claim.row, row):
                found.append((ti, ri, table["header"][cols[0]], row[cols[0]]))
    return found


def find_cell(claim: Cell) -> str:
    found = claim_cells(claim, readme_sections()[claim.section])
    assert len(found) == 1, (f"{claim.section!r}: {len(found)} cells for row {claim.row!r}, "
                             f"column {claim.column!r}")
    return found[0][3]


# ------------------------------------------------------------------------------ reading results
@cache
def load_source(source: str) -> Any:
    if source.startswith("live:"):
        return LIVE[source]()
    path = RESULTS / source
    assert path.is_file(), f"{source} is not in benchmarks/results/"
    return json.loads(path.read_text())


def lookup(data: Any, key: str) -> Any:
    """``a.b[0].c`` or ``rows[variant=x,steps=2].s`` into nested dicts/lists."""
    parts = re.findall(r"[^.\[\]]+|\[[^\]]*\]", key)
    for n, part in enumerate(parts):
        if part == "[*]":  # every item (list) or value (dict): the rest of the key from each
            items = data.values() if isinstance(data, dict) else data
            rest = "".join(p if p.startswith("[") else "." + p for p in parts[n + 1:])
            return [lookup(item, rest.lstrip(".")) if rest else item for item in items]
        if part.startswith("["):
            inner = part[1:-1]
            if "=" not in inner:
                data = data[int(inner)]
                continue
            conds = dict(c.split("=", 1) for c in inner.split(","))
            hits = [item for item in data
                    if all(str(item.get(k)).lower() == v.lower() for k, v in conds.items())]
            assert len(hits) == 1, f"{key}: {len(hits)} items match [{inner}]"
            data = hits[0]
        else:
            data = data[part]
    return data


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text)


# ------------------------------------------------------------------------------ the tests
def claim_id(claim: Cell | Prose) -> str:
    cell = isinstance(claim, Cell)
    where = f"{claim.row} / {claim.column}[{claim.index}]" if cell else claim.text
    return f"{claim.section[:12]}: {where} <- {claim.source}:{claim.key}"


def test_every_registered_section_exists():
    names = readme_sections()
    for claim in CLAIMS:
        assert claim.section in names, f"README has no section {claim.section!r}"
    for name in STRICT_SECTIONS:
        assert name in names


@pytest.mark.parametrize("claim", CLAIMS, ids=claim_id)
def test_readme_figure_equals_its_stored_result(claim):
    value = lookup(load_source(claim.source), claim.key)
    if isinstance(claim, Prose) and claim.per:
        value = value / lookup(load_source(claim.source), claim.per)
    value = format_value(value, claim.fmt, claim.scale)
    if isinstance(claim, Cell):
        cell = find_cell(claim)
        numbers = NUMBER.findall(cell)
        assert claim.index < len(numbers), f"cell {cell!r} has no number #{claim.index}"
        assert numbers[claim.index] == value, (
            f"README shows {numbers[claim.index]!r} in {cell!r}; {claim.source} says {value!r}")
    else:
        sentence = normalise(claim.text.format(value))
        assert sentence in normalise(readme_sections()[claim.section]), (
            f"README lacks {sentence!r} ({claim.source}:{claim.key} = {value})")


def unregistered_numbers(name: str, text: str, claims) -> list[str]:
    """Numbers in the table cells of section ``name`` (first column excepted) that no claim
    covers and no QUOTED column excuses."""
    registered: dict[tuple[int, int, str], set[int]] = {}
    for claim in claims:
        if isinstance(claim, Cell) and claim.section == name:
            for ti, ri, header, _ in claim_cells(claim, text):
                registered.setdefault((ti, ri, header), set()).add(claim.index)
    found = []
    for ti, table in enumerate(tables(text)):
        for ri, row in enumerate(table["rows"]):
            for header, cell in zip(table["header"][1:], row[1:], strict=True):
                if any(s == name and q in header for s, q in QUOTED):
                    continue
                have = registered.get((ti, ri, header), set())
                for i, number in enumerate(NUMBER.findall(cell)):
                    if i not in have:
                        found.append(f"{row[0]!r} / {header!r}: {number}")
    return found


@pytest.mark.parametrize("name", STRICT_SECTIONS)
def test_no_unregistered_number_in_the_tables(name):
    """Every number in a table cell (first column excepted) is a registered figure or sits in a
    column QUOTED names a reason for."""
    missing = unregistered_numbers(name, readme_sections()[name], CLAIMS)
    assert not missing, "numbers without a stored result: " + "; ".join(missing)


def test_the_checks_see_a_wrong_and_an_unregistered_number():
    text = "| what | a | b |\n|---|---|---|\n| row 1 | 0.5 / 0.25 | 7 |\n| row 2 | 3 | x |\n"
    claims = [Cell("S", "row 1", "a", "-", "-", index=0), Cell("S", "row 1", "b", "-", "-"),
              Cell("S", "row 2", "a", "-", "-")]
    assert unregistered_numbers("S", text, claims) == ["'row 1' / 'a': 0.25"]
    assert len(unregistered_numbers("S", text, claims[:1])) == 3


def backing_results() -> list[str]:
    """The result files behind the README: every registered figure's source, and every file
    of benchmarks/results/ the README names (``results/x.json``, ``probe_y.json``; not globs)."""
    named = set(re.findall(r"[\w/.-]+\.json", README.read_text()))
    files = {str(p.relative_to(RESULTS)) for p in RESULTS.rglob("*.json")}
    found = {f for f in files for m in named
             if ("/" + f).endswith("/" + m) or m.endswith("results/" + f)}
    return sorted(found | {c.source for c in CLAIMS if not c.source.startswith("live:")})


def test_results_record_how_they_were_made():
    """Each result the README cites records the command that made it; each timing result also
    its threads, CPU and load."""
    sources = backing_results()
    assert {"bench_sampler_quality.json", "shipped_model_quality.json",
            "appearance/probe_shipped_v1_people90210.json"} <= set(sources)
    for source in sources:
        data = load_source(source)
        machine = data.get("machine", {})
        command = data.get("command") or machine.get("command")
        assert isinstance(command, str) and command.startswith(("python ", "cfld ")), (
            f"{source}: no command recorded (top-level or machine.command)")
        if source.startswith(("bench_", "fidelity")):
            for field in ("torch_threads", "cpu", "load_average_at_start"):
                assert machine.get(field) is not None, f"{source}: machine.{field} missing"


def test_lookup_and_formats():
    data = {"rows": [{"v": "a", "n": 2, "x": 1.23456}, {"v": "b", "n": 3, "x": 0.5}],
            "k": {"z": [7, 8]}}
    assert lookup(data, "rows[v=b].x") == 0.5 and lookup(data, "k.z[1]") == 8
    assert lookup(data, "rows[v=a,n=2].x") == 1.23456
    assert lookup(data, "rows[*].n") == [2, 3] and lookup({"r": {"a": {"e": 1}, "b": {"e": 4}}},
                                                          "r[*].e") == [1, 4]
    assert format_value([1.2e-7, 1.39e-6, 0.0], "max_sci1") == "1.4e-6"
    assert format_value(1.94e-7, "sci1") == "1.9e-7" and format_value(0.922, "pct") == "92"
    assert format_value(2394349240320, "{:.3f}", 1e-12) == "2.394"
    assert NUMBER.findall("fp32 + W_k 3 (3) 1.9e-7 / 10,321,920 of 859,520,964") == [
        "3", "3", "1.9e-7", "10,321,920", "859,520,964"]
