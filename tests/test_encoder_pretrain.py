"""Appearance pre-training of H_S and H_D (cfld.training.encoder_pretrain) at tiny size."""

from __future__ import annotations

import pytest
import torch

from cfld.data.synthetic import synthesize
from cfld.models.cfld import CFLDModel
from cfld.presets import get_preset
from cfld.training.encoder_pretrain import (
    EncoderPretrainConfig,
    part_colour_stats,
    pretrain_appearance_encoder,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("people")
    synthesize(out, people=6, poses=2, size=(64, 44), seed=5, test_people=1)
    return out


def test_part_colour_stats_are_exact():
    img = torch.zeros(1, 3, 4, 4)
    img[0, 0, :2] = 1.0  # red rows 0-1, black rows 2-3
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, :, :2] = 3  # left half: two red and two black pixels per column
    stats, weight = part_colour_stats(img, labels)
    assert stats.shape == weight.shape == (1, 8, 6)
    top = stats[0, 2]  # label 3
    assert torch.allclose(top, torch.tensor([0.5, 0, 0, 0.5, 0, 0]))
    assert weight[0, 2].eq(1).all() and weight[0, 0].eq(0).all()  # label 1 absent


@pytest.mark.parametrize("head", ["flat", "slots"])
def test_pretraining_lowers_its_loss_and_leaves_the_architecture(root, head):
    torch.manual_seed(0)
    model = CFLDModel(**get_preset("tiny").model)
    keys = {k: v.shape for k, v in model.state_dict().items()}
    unet_before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    stats = pretrain_appearance_encoder(
        model, root, EncoderPretrainConfig(steps=40, batch_size=8, lr=2e-3, log_every=39,
                                           prompt_head=head), log=None)
    assert stats["total_last"] < 0.6 * stats["total_first"]
    assert {k: v.shape for k, v in model.state_dict().items()} == keys  # heads not in the model
    assert all(torch.equal(v, unet_before[k]) for k, v in model.unet.state_dict().items())


def test_pretraining_needs_part_maps(tmp_path):
    (tmp_path / "train_highres").mkdir()
    with pytest.raises(FileNotFoundError, match="part-label maps"):
        pretrain_appearance_encoder(CFLDModel(**get_preset("tiny").model), tmp_path,
                                    EncoderPretrainConfig(steps=1), log=None)


def test_unknown_prompt_head(root):
    with pytest.raises(ValueError, match="prompt_head"):
        pretrain_appearance_encoder(CFLDModel(**get_preset("tiny").model), root,
                                    EncoderPretrainConfig(steps=1, prompt_head="x"), log=None)
