"""The two data-root layouts cfld reads: DeepFashion In-Shop and Market-1501 (PATN/DPTN files).

Both come with the pose-transfer files of PATN (Zhu et al., CVPR 2019), which CFLD and its
peers use: a comma-separated pairs csv (``from,to``) and a ':'-separated keypoint csv
(``name:keypoints_y:keypoints_x``, 18 COCO joints, −1 for a missing one) per split.  They differ
in file and folder names and in the keypoints' frame::

    DeepFashion (256×176)                      Market-1501 (128×64)
    fasion-resize-pairs-{train,test}.csv       market-pairs-{train,test}.csv
    fasion-resize-annotation-{train,test}.csv  market-annotation-{train,test}.csv
    train.lst, test.lst                        (none)
    train_highres/, test_highres/              bounding_box_train/, bounding_box_test/

:func:`detect_layout` tells them apart by the files present; every reader of a root (data sets,
``cfld data check``, ``cfld generate --pairs``, ``cfld evaluate``) goes through it.  The
authors' code has no Market-1501 path; what we chose is in fidelity §5.5.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cfld.data.formats import OFFICIAL_PAIR_COUNTS, SPLIT_FILES, SPLITS
from cfld.pose.keypoints import DEEPFASHION_FRAME

#: Frame of the Market-1501 keypoint csvs: the images' own 128×64.
MARKET_FRAME: tuple[int, int] = (128, 64)


@dataclass(frozen=True)
class DataLayout:
    """File names and keypoint frame of one data-root layout.

    Attributes:
        name: ``"deepfashion"`` or ``"market1501"``.
        files: Split → ``{"pairs", "annotations", "lst", "dir"}`` (``lst`` None when the layout
            has no list files).
        frame: ``(H, W)`` of the keypoint coordinates in the annotation csvs.
        official_pairs: Pair counts of the published split, printed beside a root's.
        eval_size: The evaluation size of the papers' tables for this data set.
        title: The data set's name in messages.
    """

    name: str
    files: dict[str, dict[str, str | None]]
    frame: tuple[int, int]
    official_pairs: dict[str, int]
    eval_size: tuple[int, int]
    title: str

    def path(self, root: str | os.PathLike, split: str, kind: str) -> Path:
        """``root / files[split][kind]`` (a ValueError for a kind this layout has not)."""
        name = self.files[split][kind]
        if name is None:
            raise ValueError(f"the {self.name} layout has no {kind} file")
        return Path(root) / name

    def image_dir(self, root: str | os.PathLike, split: str) -> Path:
        """The image folder of ``split``."""
        return self.path(root, split, "dir")


DEEPFASHION = DataLayout("deepfashion", {s: dict(SPLIT_FILES[s]) for s in SPLITS},
                         DEEPFASHION_FRAME, dict(OFFICIAL_PAIR_COUNTS), (256, 176), "DeepFashion")
MARKET1501 = DataLayout(
    "market1501",
    {split: {"pairs": f"market-pairs-{split}.csv", "annotations": f"market-annotation-{split}.csv",
             "lst": None, "dir": f"bounding_box_{split}"} for split in SPLITS},
    MARKET_FRAME,
    {"train": 263_632, "test": 12_000},  # PATN's Market-1501 split
    MARKET_FRAME,
    "Market-1501",
)
LAYOUTS: dict[str, DataLayout] = {layout.name: layout for layout in (DEEPFASHION, MARKET1501)}


def get_layout(name: str | DataLayout) -> DataLayout:
    """A layout by name (``deepfashion``, ``market1501``) or as given."""
    if isinstance(name, DataLayout):
        return name
    if name not in LAYOUTS:
        raise ValueError(f"unknown data layout {name!r}; choose one of {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


def detect_layout(root: str | os.PathLike, layout: str | DataLayout | None = None
                  ) -> DataLayout:
    """The layout of ``root``: ``layout`` when given, else Market-1501 when one of its pairs
    csvs or image folders is there, else DeepFashion (whose file names the errors then give)."""
    if layout is not None:
        return get_layout(layout)
    root = Path(root)
    for split in SPLITS:
        files = MARKET1501.files[split]
        if (root / str(files["pairs"])).exists() or (root / str(files["dir"])).is_dir():
            return MARKET1501
    return DEEPFASHION


__all__ = ["DEEPFASHION", "LAYOUTS", "MARKET1501", "MARKET_FRAME", "DataLayout", "detect_layout",
           "get_layout"]
