"""The part-balanced loss (cfld.training.part_weights): hand-computed weights, the weighted
objective against a hand formula, the data set's label maps, and a training run that uses them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cfld.training.config import TrainConfig
from cfld.training.part_weights import batch_loss_weight, part_balance_weights

pytestmark = pytest.mark.usefixtures("one_thread")


def test_weights_hand_computed():
    """A 2×4 map: label 0 covers 6 pixels, label 3 covers 2.  β = 1: w ∝ 1/area, so each label
    weighs the same in total; pooled 2×2 cells average their pixels; the mean stays 1."""
    labels = torch.tensor([[[0, 0, 0, 3], [0, 0, 0, 3]]])
    w = part_balance_weights(labels, 1.0, (2, 4))
    # raw 1/6 and 1/2, mean (6/6 + 2/2)/8 = 1/4 → 2/3 and 2.
    expected = torch.tensor([[[2 / 3, 2 / 3, 2 / 3, 2.0], [2 / 3, 2 / 3, 2 / 3, 2.0]]])
    torch.testing.assert_close(w[:, 0], expected)
    pooled = part_balance_weights(labels, 1.0, (1, 2))
    torch.testing.assert_close(pooled[:, 0], torch.tensor([[[2 / 3, (2 / 3 + 2) / 2]]]))
    assert pooled.mean().item() == pytest.approx(1.0)
    half = part_balance_weights(labels, 0.5, (2, 4))[0, 0, 0]
    r = (1 / 2) ** 0.5 / (1 / 6) ** 0.5  # small/large ratio √3 at β = ½
    assert (half[3] / half[0]).item() == pytest.approx(r)
    torch.testing.assert_close(part_balance_weights(labels, 0.0, (2, 4)), torch.ones(1, 1, 2, 4))


def test_weights_reject_bad_input():
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="part_balance must be in"):
        part_balance_weights(labels, 1.5, (2, 2))
    with pytest.raises(ValueError, match="do not tile"):
        part_balance_weights(labels, 0.5, (3, 3))
    with pytest.raises(ValueError, match="integers"):
        part_balance_weights(labels.float(), 0.5, (2, 2))
    with pytest.raises(ValueError, match="part_balance"):
        TrainConfig(data_root="x", part_balance=-0.1).validate()
    assert batch_loss_weight({}, 0.0, torch.zeros(2, 4, 2, 2)) is None  # off: no labels needed


def test_weighted_objective_matches_the_hand_formula():
    """loss_weight multiplies each latent cell's squared error (all channels); ones give the
    unweighted loss bit for bit."""
    from diffusers import DDPMScheduler

    from cfld.models.cfld import CFLDModel
    from cfld.presets import get_preset
    from cfld.training.objective import training_step_loss
    from cfld.training.trainer import NOISE_SCHEDULER_CONFIG

    torch.manual_seed(0)
    model = CFLDModel(**get_preset("synthetic").model).eval()
    sched = DDPMScheduler(**{**NOISE_SCHEDULER_CONFIG, "prediction_type": "sample"})
    g = torch.Generator().manual_seed(2)
    lat, noise = torch.randn(4, 48, 16, 16, generator=g), torch.randn(4, 48, 16, 16, generator=g)
    img = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    ps, pt = torch.rand(2, 21, 64, 64, generator=g), torch.rand(2, 21, 64, 64, generator=g)
    tu, du = torch.tensor([0.01, 0.3, 0.6, 0.99]), torch.ones(4)
    weight = torch.rand(4, 1, 16, 16, generator=g) * 3

    def run(w):
        with torch.no_grad():
            return training_step_loss(model, sched, lat, noise, img, ps, pt, tu, du,
                                      timestep_sampling="uniform", loss_weight=w)

    plain, ones, weighted = run(None), run(torch.ones(4, 1, 16, 16)), run(weight)
    assert ones.loss.item() == plain.loss.item()
    expected = (weight * (lat - plain.noise_pred) ** 2).mean()
    assert weighted.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert abs(weighted.loss.item() - plain.loss.item()) > 1e-3 * plain.loss.item()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    from cfld.data.synthetic import make_sample_root

    return make_sample_root(tmp_path_factory.mktemp("synth"), people=1, poses=2, size=(64, 44),
                            seed=0, test_people=1)


def test_dataset_part_maps_follow_the_images(data_root):
    """parts_src/parts_tgt are the root's label maps at the generation size, aligned with the
    images (background label 0 where the image shows the background colour)."""
    from cfld.data.datasets import DeepFashionTrain
    from cfld.data.formats import DataError

    ds = DeepFashionTrain(data_root, gen_size=(64, 64), cond_size=(64, 64), pose_size=(64, 64),
                          seed=0, parts_dir="train_parts")
    item = ds[0]
    assert item["parts_src"].shape == (64, 64) and item["parts_src"].dtype == torch.int64
    assert set(item["parts_tgt"].unique().tolist()) >= {0, 1, 3}
    corner = item["img_tgt"][:, :4, :4].flatten(1)  # background: one flat colour
    assert int(item["parts_tgt"][:4, :4].max()) == 0 and float(corner.std(1).max()) < 0.05
    assert "parts_src" not in DeepFashionTrain(data_root, (64, 64), (64, 64), (64, 64))[0]
    with pytest.raises(DataError, match="part-label folder"):
        DeepFashionTrain(data_root, (64, 64), (64, 64), (64, 64), parts_dir="nope")


def test_training_with_part_balance_changes_the_loss_and_resumes(data_root, tmp_path):
    """Same seed and draws: part_balance changes the logged loss; a 2-step run killed after
    step 1 and resumed equals the straight run (the labels travel with the batch)."""
    from cfld.training import train

    base = dict(preset="synthetic", data_root=str(data_root), batch_size=1, max_steps=2,
                lr=1e-3, warmup_steps=2, decay_epochs=(1,), log_every=1, sample_every=-1,
                progress=False, export=False, seed=11, prediction_type="sample")
    plain = train(TrainConfig(output_dir=str(tmp_path / "a"), checkpoint_every=0, **base))
    pb = train(TrainConfig(output_dir=str(tmp_path / "b"), checkpoint_every=0,
                           part_balance=0.5, **base))
    assert all(abs(x - y) > 1e-6 for x, y in zip(plain["losses"], pb["losses"], strict=True))
    split = TrainConfig(output_dir=str(tmp_path / "c"), checkpoint_every=1, part_balance=0.5,
                        **{**base, "max_steps": 1})
    train(split)
    rest = train(TrainConfig(output_dir=str(tmp_path / "c"), checkpoint_every=1,
                             part_balance=0.5, resume="latest", **base))
    assert rest["losses"][-1] == pb["losses"][-1]
    saved = json.loads((tmp_path / "c" / "config.json").read_text())
    assert saved["part_balance"] == 0.5
