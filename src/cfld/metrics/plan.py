"""Which generated image scores which test pair: the pairs csv matched with a folder of
``<source stem>___<target stem>.png`` files, with a clear line for everything that does not
match."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cfld.data.formats import GENERATED_SEPARATOR, generated_name, read_pairs
from cfld.data.images import IMAGE_EXTENSIONS, list_images
from cfld.data.layouts import detect_layout

OFFICIAL_TEST_PAIRS = 8_570  # PATN test split (fidelity §5.1); reported, not required


@dataclass
class PlannedPair:
    """One test pair to score: its names, its generated image and its ground truth."""

    source: str
    target: str
    generated: Path
    gt: Path


def _generated_by_stem(generated_dir: Path, checks: list[str]) -> dict[str, Path]:
    """Generated files by stem; for equal stems the preferred extension (.png first) wins."""
    by_stem: dict[str, Path] = {}
    dup_stems = 0
    for p in sorted(list_images(generated_dir),
                    key=lambda p: IMAGE_EXTENSIONS.index(p.suffix.lower())):
        if p.stem in by_stem:
            dup_stems += 1
            continue
        by_stem[p.stem] = p
    if dup_stems:
        checks.append(f"generated: {dup_stems} files share a name with another extension; "
                      ".png preferred")
    return by_stem


def _ground_truth(root: Path, test_dir: Path, target: str) -> Path:
    """The target's file, inside the root (no link out of it); names in the csv may carry .jpg
    while files are .png, or back."""
    from cfld.checks.files import inside_root

    gt = inside_root(root, target, "ground-truth image", folder=test_dir.name)
    if not gt.is_file():
        alts = [test_dir / (Path(target).stem + e) for e in IMAGE_EXTENSIONS]
        gt = next((a for a in alts if a.is_file()), gt)
        gt = inside_root(root, gt.name, "ground-truth image", folder=test_dir.name)
    if not gt.is_file():
        raise FileNotFoundError(f"ground-truth image {test_dir / target} (target of a test "
                                "pair) is missing")
    return gt


def plan_folder(generated_dir: Path, root: Path, allow_missing: bool,
                checks: list[str]) -> tuple[list[PlannedPair], dict[str, int]]:
    """Match the pairs csv with generated files; report counts, missing and extra files.

    Returns:
        ``(pairs to score, {"pairs_in_csv", "missing", "extra"})``; ``checks`` gets one line per
        finding.

    Raises:
        FileNotFoundError: a missing folder, csv or ground-truth image.
        ValueError: generated images missing without ``allow_missing``, or none at all.
    """
    if not root.is_dir():
        raise FileNotFoundError(f"data root not found: {root}")
    if not generated_dir.is_dir():
        raise FileNotFoundError(f"generated-images folder not found: {generated_dir}")
    layout = detect_layout(root)  # DeepFashion or Market-1501 file names
    pairs_csv = layout.path(root, "test", "pairs")
    rows = read_pairs(pairs_csv, on_duplicate="ignore")
    pairs = list(dict.fromkeys(rows))  # one score per distinct pair
    checks.append(f"pairs: {len(pairs)} in {pairs_csv.name} (the real {layout.title} test split "
                  f"has {layout.official_pairs['test']:,})")
    if len(pairs) != len(rows):
        checks.append(f"pairs: {len(rows) - len(pairs)} duplicate rows in {pairs_csv.name} "
                      "counted once")
    by_stem = _generated_by_stem(generated_dir, checks)
    expected = {generated_name(s, t): (s, t) for s, t in pairs}
    missing = [n for n in expected if n not in by_stem]
    extra = sorted(set(by_stem) - set(expected))
    checks.append(f"generated: {len(by_stem)} images in {generated_dir}")
    if extra:
        checks.append(f"generated: {len(extra)} extra images match no pair and are ignored "
                      f"(e.g. {by_stem[extra[0]].name})")
    if missing:
        msg = (f"{len(missing)} of {len(pairs)} pairs have no generated image in {generated_dir} "
               f"(expected '<source stem>{GENERATED_SEPARATOR}<target stem>.png', e.g. "
               f"{missing[0]}.png)")
        if not allow_missing:
            raise ValueError(msg + "; generate them, or pass --allow-missing to score the others")
        checks.append("generated: " + msg + "; scoring the present ones only (--allow-missing)")
    test_dir = layout.image_dir(root, "test")
    plan = [PlannedPair(s, t, by_stem[stem], _ground_truth(root, test_dir, t))
            for stem, (s, t) in expected.items() if stem in by_stem]
    if not plan:
        raise ValueError(f"no pair of {pairs_csv.name} has a generated image in "
                         f"{generated_dir}")
    return plan, {"pairs_in_csv": len(pairs), "missing": len(missing), "extra": len(extra)}


__all__ = ["OFFICIAL_TEST_PAIRS", "PlannedPair", "plan_folder"]
