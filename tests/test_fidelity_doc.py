"""Every "fidelity §N" cited in src/ names a section (or a §12 item) of docs/fidelity.md."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _sections() -> set[str]:
    text = (REPO / "docs" / "fidelity.md").read_text(encoding="utf-8")
    found = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)[ .]", text, flags=re.M))
    found |= {m.split("-")[0] for m in re.findall(r"^### (\d+\.\d+-\d+\.\d+)", text, flags=re.M)}
    section_12 = text.split("## 12.", 1)[1].split("\n## ", 1)[0]
    found |= {f"12.{n}" for n in re.findall(r"^(\d+)\. ", section_12, flags=re.M)}
    for span in re.findall(r"^### (\d+)\.(\d+)-\d+\.(\d+)", text, flags=re.M):
        found |= {f"{span[0]}.{k}" for k in range(int(span[1]), int(span[2]) + 1)}
    return found


def test_every_citation_has_a_section():
    sections = _sections()
    cited: dict[str, str] = {}
    for path in (REPO / "src").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for ref in re.findall(r"fidelity §(\d+(?:\.\d+)?)", text):
            cited.setdefault(ref, str(path.relative_to(REPO)))
    assert cited, "no fidelity citation found"
    missing = {ref: where for ref, where in cited.items() if ref not in sections}
    assert not missing, missing
    assert not any("facts §" in p.read_text(encoding="utf-8") for p in (REPO / "src").rglob("*.py"))
