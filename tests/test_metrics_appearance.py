"""Eroded part-colour error and the swapped-source control (appearance metrics)."""

from __future__ import annotations

import pytest
import torch

from cfld.metrics import erode_labels, part_colour_error, person_key, swapped_sources


def test_erode_labels_exact_on_a_block():
    parts = torch.zeros(1, 12, 10, dtype=torch.long)
    parts[0, 2:9, 1:8] = 3  # a 7×7 block
    out = erode_labels(parts, 2)
    expected = torch.zeros_like(parts)
    expected[0, 4:7, 3:6] = 3  # 7 - 2·2 = 3 pixels each way
    assert torch.equal(out, expected)
    assert torch.equal(erode_labels(parts, 0), parts)


def test_erode_labels_separates_touching_parts_and_keeps_frame_edges():
    parts = torch.zeros(1, 8, 8, dtype=torch.long)
    parts[0, :, :4] = 1
    parts[0, :, 4:] = 2
    out = erode_labels(parts, 1)
    # the shared boundary loses one column on each side; the image border does not erode
    assert out[0, :, :3].eq(1).all() and out[0, :, 5:].eq(2).all()
    assert out[0, :, 3:5].eq(0).all()


def test_erode_rejects_negative():
    with pytest.raises(ValueError, match="erode"):
        erode_labels(torch.zeros(1, 4, 4, dtype=torch.long), -1)


def test_eroded_error_ignores_a_misregistered_rim():
    # ground truth: a red 10×10 square part on grey; prediction: the same square drawn 1 px
    # larger in blue on its rim.  Un-eroded the rim does not count (it lies outside the part);
    # a prediction wrong only on the part's own 1-px border is forgiven by erode=1, not by 0.
    gt = torch.full((1, 3, 20, 20), 0.5)
    parts = torch.zeros(1, 20, 20, dtype=torch.long)
    parts[0, 5:15, 5:15] = 3
    gt[:, :, 5:15, 5:15] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    pred = gt.clone()
    pred[:, :, 5:15, 5] = torch.tensor([0.0, 0.0, 1.0])[:, None]  # left border column wrong
    e0 = part_colour_error(pred, gt, parts, erode=0)
    e1 = part_colour_error(pred, gt, parts, erode=1)
    # 10 of 100 pixels off by sqrt(2) in colour → mean colour off by 0.1·sqrt(2)
    assert e0.item() == pytest.approx(0.1 * 2**0.5, abs=1e-9)
    assert e1.item() == pytest.approx(0.0, abs=1e-12)


def test_person_key_and_swapped_sources():
    assert (
        person_key("fashionWOMENDressesid0000262902_3back.jpg") == "fashionWOMENDressesid00002629"
    )
    assert person_key("fashionSYNTHPeopleid0000000302_1front.jpg") == "fashionSYNTHPeopleid00000003"
    assert person_key("alice_1.png") == "alice"
    pairs = [
        (f"fashionSYNTHPeopleid{p:08d}{k:02d}_1front.jpg", "t") for p in range(3) for k in range(2)
    ]
    swapped = swapped_sources(pairs)
    assert len(swapped) == len(pairs)
    for (src, _), other in zip(pairs, swapped):
        assert person_key(other) != person_key(src)
    assert swapped == swapped_sources(pairs)  # deterministic
    with pytest.raises(ValueError, match="two people"):
        swapped_sources(pairs[:2])
