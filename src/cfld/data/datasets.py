"""The pair data sets of a data root (fidelity §5.3), with one item schema.

The root is in the DeepFashion or the Market-1501 layout (:mod:`cfld.data.layouts`, detected
from its files); :class:`Market1501Train` / :class:`Market1501Test` insist on the latter.

Training and test items carry the same keys for the same things (:class:`PairItem`): the test
split only adds ``img_gt``.  The authors name the test tensors differently (``img_cond_from``,
``pose_img_from``, ``pose_img_to``); we use the training names everywhere (fidelity §5.3).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict

import torch
from PIL import Image
from torch.utils.data import Dataset

from cfld.data.formats import DataError, read_annotations, read_pairs
from cfld.data.images import image_to_signed, list_images, load_image, resize_image, to_tensor
from cfld.data.layouts import MARKET1501, DataLayout, detect_layout
from cfld.pose.render import render_pose_map
from cfld.sizes import check_size

#: One (source, target) pair as tensors:
#:
#: * ``img_src``, ``img_tgt``: source and target at the generation size (3×gen_size, [-1, 1]);
#: * ``img_cond``: the source as H_S sees it (3×cond_size, [-1, 1]; flipped at random in
#:   training);
#: * ``pose_img_src``, ``pose_img_tgt``: 21-channel pose maps (21×pose_size);
#: * ``img_gt``: the target at the evaluation size, in [0, 1] (test split only);
#: * ``parts_src``, ``parts_tgt``: int64 part labels at the generation size (training with
#:   ``parts_dir`` only, for the part-balanced loss);
#: * ``from``, ``to``: the image names.
PairItem = TypedDict("PairItem", {
    "img_src": torch.Tensor, "img_tgt": torch.Tensor, "img_cond": torch.Tensor,
    "pose_img_src": torch.Tensor, "pose_img_tgt": torch.Tensor, "img_gt": torch.Tensor,
    "parts_src": torch.Tensor, "parts_tgt": torch.Tensor, "from": str, "to": str,
}, total=False)


def _sample_seed(seed: int, epoch: int, index: int) -> int:
    """Mix (seed, epoch, index) into one 63-bit seed, independent of worker assignment."""
    x = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB)
    return x % (2**63 - 1)


class _PairsBase(Dataset):
    """Shared loading of one split: pairs, annotations, images and the common item keys."""

    split = "train"
    #: A layout the class insists on (None: detected from the root's files).
    layout_name: str | None = None

    def __init__(self, root: str | os.PathLike, gen_size: Sequence[int],
                 cond_size: Sequence[int], pose_size: Sequence[int],
                 layout: str | DataLayout | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"data root not found: {self.root}")
        self.layout = detect_layout(self.root, layout or self.layout_name)
        files = self.layout.files[self.split]
        self.image_dir = self.root / files["dir"]
        self.pairs = read_pairs(self.root / files["pairs"])
        self.annotations = read_annotations(self.root / files["annotations"], self.layout.frame)
        self.pose_size = check_size(pose_size, "pose_size")
        self.gen_size = check_size(gen_size, "gen_size")
        self.cond_size = check_size(cond_size, "cond_size")
        if not self.pairs:
            raise DataError(f"{self.root / files['pairs']}: no pairs; the split is empty")
        # Every image a pair names stays inside the root (no link out of it): checked once
        # here, before any work, not at the step that first draws the pair.
        for name in dict.fromkeys(n for pair in self.pairs for n in pair):
            self._path(name)

    def __len__(self) -> int:
        return len(self.pairs)

    def _path(self, name: str) -> Path:
        """The file of an image name, inside the root (:func:`cfld.checks.files.inside_root`)."""
        from cfld.checks.files import inside_root

        files = self.layout.files[self.split]
        try:
            return inside_root(self.root, name, "image", folder=files["dir"])
        except ValueError as err:
            raise DataError(f"{self.root / files['pairs']}: {err}") from None

    def _image(self, name: str) -> Image.Image:
        """Open one image (full size); errors name the file."""
        path = self._path(name)
        try:
            return load_image(path)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"image {path} (listed in {self.layout.files[self.split]['pairs']}) is missing; "
                "run `cfld data check` on the root"
            ) from None

    def _pose(self, name: str) -> torch.Tensor:
        """The 21-channel pose tensor of one image (fidelity §5.4)."""
        kp = self.annotations.get(name)
        if kp is None:
            raise DataError(
                f"{self.root / self.layout.files[self.split]['annotations']}: no keypoints for "
                f"{name}; "
                "run `cfld data check` on the root"
            )
        return torch.from_numpy(render_pose_map(kp, self.pose_size))

    def _item(self, index: int, flip: bool) -> tuple[PairItem, Image.Image]:
        """The keys both splits share, and the full-size target image."""
        src_name, tgt_name = self.pairs[index]
        src, tgt = self._image(src_name), self._image(tgt_name)
        cond = resize_image(src, self.cond_size)
        if flip:
            cond = cond.transpose(Image.FLIP_LEFT_RIGHT)
        item: PairItem = {
            "img_src": image_to_signed(src, self.gen_size),
            "img_tgt": image_to_signed(tgt, self.gen_size),
            "img_cond": image_to_signed(cond, self.cond_size),
            "pose_img_src": self._pose(src_name),
            "pose_img_tgt": self._pose(tgt_name),
            "from": src_name,
            "to": tgt_name,
        }
        return item, tgt


class DeepFashionTrain(_PairsBase):
    """Training pairs (fidelity §5.3, the authors' PisTrainDeepFashion).

    Items: :class:`PairItem` without ``img_gt``; ``img_cond`` is flipped horizontally with
    probability ``flip_p``.

    Args:
        root: prepared data root.
        gen_size: ``(h, w)`` of ``img_src``/``img_tgt``; authors 512×512.
        cond_size: ``(h, w)`` of ``img_cond``; authors 256×256.
        pose_size: ``(h, w)`` of the pose tensors; authors 256×256.
        flip_p: probability of flipping ``img_cond``.
        seed: when set, the flip of item ``i`` depends only on ``(seed, epoch, i)`` (reproducible
            and independent of DataLoader workers); when None, torch's global RNG is used (which
            DataLoader seeds per worker).
        parts_dir: a folder of the root with one part-label PNG per image (same stem, e.g.
            ``train_parts`` of a procedural root); items then carry ``parts_src``/``parts_tgt``.
    """

    split = "train"

    def __init__(
        self,
        root: str | os.PathLike,
        gen_size: Sequence[int] = (512, 512),
        cond_size: Sequence[int] = (256, 256),
        pose_size: Sequence[int] = (256, 256),
        flip_p: float = 0.5,
        seed: int | None = None,
        layout: str | DataLayout | None = None,
        parts_dir: str | None = None,
    ) -> None:
        super().__init__(root, gen_size, cond_size, pose_size, layout)
        if not 0.0 <= flip_p <= 1.0:
            raise ValueError(f"flip_p must be in [0, 1], got {flip_p}")
        self.parts_dir = None if parts_dir is None else self.root / parts_dir
        if self.parts_dir is not None and not self.parts_dir.is_dir():
            raise DataError(f"{self.parts_dir}: no part-label folder; the part-balanced loss "
                            "needs one PNG per image (a procedural root from `cfld data synth` "
                            "has it), or set part_balance to 0")
        self.flip_p = float(flip_p)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Change the flip draws for a new epoch (only meaningful with ``seed``)."""
        self.epoch = int(epoch)

    def _flip(self, index: int) -> bool:
        if self.seed is None:
            return bool(torch.rand(1) < self.flip_p)
        g = torch.Generator().manual_seed(_sample_seed(self.seed, self.epoch, index))
        return bool(torch.rand(1, generator=g) < self.flip_p)

    def __getitem__(self, index: int) -> PairItem:
        item = self._item(index, self._flip(index))[0]
        if self.parts_dir is not None:
            item["parts_src"] = self._parts(item["from"])
            item["parts_tgt"] = self._parts(item["to"])
        return item

    def _parts(self, name: str) -> torch.Tensor:
        """The part labels of one image at the generation size (nearest neighbour)."""
        from cfld.data.images import load_label_map

        assert self.parts_dir is not None
        path = self.parts_dir / (Path(name).stem + ".png")
        if not path.is_file():
            raise DataError(f"{path}: missing part labels of {name}; regenerate the root or set "
                            "part_balance to 0")
        return load_label_map(path, self.gen_size)


class DeepFashionTest(_PairsBase):
    """Test pairs (fidelity §5.3, the authors' PisTestDeepFashion).

    Items: :class:`PairItem` with ``img_gt`` (the target at ``test_size``, [0, 1]); no flip.

    Args:
        root: prepared data root.
        gen_size: ``(h, w)`` of ``img_src``/``img_tgt``; authors 512×512.
        cond_size: ``(h, w)`` of ``img_cond``; authors 256×256.
        pose_size: ``(h, w)`` of the pose tensors; authors 256×256.
        test_size: ``(h, w)`` of ``img_gt``; authors 256×176 or 512×352.
    """

    split = "test"

    def __init__(
        self,
        root: str | os.PathLike,
        gen_size: Sequence[int] = (512, 512),
        cond_size: Sequence[int] = (256, 256),
        pose_size: Sequence[int] = (256, 256),
        test_size: Sequence[int] = (256, 176),
        layout: str | DataLayout | None = None,
    ) -> None:
        super().__init__(root, gen_size, cond_size, pose_size, layout)
        self.test_size = check_size(test_size, "test_size")

    def __getitem__(self, index: int) -> PairItem:
        item, tgt = self._item(index, flip=False)
        item["img_gt"] = to_tensor(resize_image(tgt, self.test_size))
        return item


class Market1501Train(DeepFashionTrain):
    """:class:`DeepFashionTrain` on a Market-1501 root (``market-*.csv``, ``bounding_box_*``,
    keypoints in the 128×64 frame)."""

    layout_name = MARKET1501.name


class Market1501Test(DeepFashionTest):
    """:class:`DeepFashionTest` on a Market-1501 root; ``img_gt`` at 128×64 by default."""

    layout_name = MARKET1501.name

    def __init__(self, root: str | os.PathLike, gen_size: Sequence[int] = (512, 512),
                 cond_size: Sequence[int] = (256, 256), pose_size: Sequence[int] = (256, 256),
                 test_size: Sequence[int] = MARKET1501.eval_size) -> None:
        super().__init__(root, gen_size, cond_size, pose_size, test_size)


class FidRealSet(Dataset):
    """Every training image resized to ``size``, in [0, 1] (fidelity §5.3, FidRealDeepFashion).

    The authors glob ``*.jpg``; we take every image extension (sorted, for a stable order), so
    PNG-based procedural roots work too.

    Args:
        root: prepared data root.
        size: ``(h, w)``, the evaluation size (authors: 256×176 or 512×352).
        split_dir: image folder inside ``root`` (default: the layout's training images,
            ``train_highres`` or ``bounding_box_train``).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        size: Sequence[int] = (256, 176),
        split_dir: str | None = None,
    ) -> None:
        split_dir = split_dir or str(detect_layout(root).files["train"]["dir"])
        self.dir = Path(root) / split_dir
        if not self.dir.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.dir}")
        self.size = check_size(size, "size")
        self.paths = list_images(self.dir)
        if not self.paths:
            raise DataError(f"{self.dir}: no images found")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return to_tensor(load_image(self.paths[index], self.size))


__all__ = ["DeepFashionTest", "DeepFashionTrain", "FidRealSet", "Market1501Test",
           "Market1501Train", "PairItem"]
