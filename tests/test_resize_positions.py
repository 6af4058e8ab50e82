"""Carrying a model to another source size: only the position tables change, by interpolation."""

from __future__ import annotations

import copy

import pytest
import torch

from cfld import CFLDModel
from cfld.models.resize_positions import (
    resize_bias_table,
    resize_position_tables,
    resize_token_grid,
)
from cfld.presets import get_preset
from cfld.training.build import init_from_model_folder


def test_bias_table_interpolation_by_hand():
    """A constant head stays constant, the four corner offsets (±(w−1) in both axes) keep their
    values (bicubic with aligned corners), the table's layout is (offset, head)."""
    torch.manual_seed(0)
    table = torch.randn(9, 2)  # window 2 → (2·2 − 1)² = 9 offsets, 2 heads
    table[:, 1] = 0.7
    out = resize_bias_table(table, 25)  # window 3 → 5 × 5 offsets
    assert out.shape == (25, 2)
    torch.testing.assert_close(out[:, 1], torch.full((25,), 0.7))
    grid_in, grid_out = table[:, 0].view(3, 3), out[:, 0].view(5, 5)
    for (i, j), (k, m) in zip([(0, 0), (0, 2), (2, 0), (2, 2)], [(0, 0), (0, 4), (4, 0), (4, 4)],
                              strict=True):
        torch.testing.assert_close(grid_out[k, m], grid_in[i, j])
    torch.testing.assert_close(grid_out[2, 2], grid_in[1, 1])  # the zero offset maps onto itself
    assert torch.equal(resize_bias_table(table, 9), table)  # same size: unchanged
    with pytest.raises(ValueError, match="not a square"):
        resize_bias_table(torch.zeros(8, 2), 25)


def test_token_grid_interpolation_keeps_a_constant_and_the_channels():
    embed = torch.randn(1, 1, 5).expand(1, 4, 5).contiguous()  # the same vector on a 2×2 grid
    out = resize_token_grid(embed, 16)
    assert out.shape == (1, 16, 5)
    torch.testing.assert_close(out, embed[:, :1].expand(1, 16, 5))


def test_init_from_a_model_of_another_source_size(tmp_path):
    """The tiny model saved at a 64² source loads into the same widths at a 128² source: the
    four size-dependent tables are interpolated, every other weight is copied exactly, and the
    model at the same size still loads strictly (nothing resized)."""
    torch.manual_seed(0)
    small = CFLDModel(**get_preset("tiny").model)
    small.save_pretrained(tmp_path / "small")
    cfg = copy.deepcopy(get_preset("tiny").model)
    cfg["source_encoder_config"]["img_size"] = 128
    big = CFLDModel(**cfg)
    state = small.state_dict()
    resized = resize_position_tables(dict(state), big)
    # stage 3 (2 blocks) goes from a 2×2 to a 4×4 window; H_D's token grid from 2×2 to 4×4
    assert sorted(k.rsplit(".", 1)[-1] for k in resized) == [
        "kv_pos_embed", "relative_position_bias_table", "relative_position_bias_table"]
    init_from_model_folder(big, tmp_path / "small")
    loaded = big.state_dict()
    for key, value in state.items():
        if key not in resized:
            assert torch.equal(loaded[key], value), key
    assert loaded[resized[0]].shape != state[resized[0]].shape
    with torch.no_grad():  # the carried model runs at its new source size
        prompt, biases = big.encode_source(torch.rand(1, 3, 128, 128) * 2 - 1)
    assert torch.isfinite(prompt).all() and all(torch.isfinite(b).all() for b in biases.values())
    same = CFLDModel(**get_preset("tiny").model)
    assert resize_position_tables(dict(state), same) == []
