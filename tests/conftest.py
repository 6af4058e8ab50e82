"""Shared test fixtures: paths to ../shared and deterministic torch settings."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"


# CI sets CFLD_REQUIRE_ALL=1 (.ci/run): there every skip is a failure, so a missing fixture,
# package or browser cannot leave a test unrun behind a green run. Locally a skip stays a skip.
REQUIRE_ALL = os.environ.get("CFLD_REQUIRE_ALL", "") not in ("", "0")


def _skip_as_failure(report) -> None:
    reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
    report.outcome = "failed"
    report.longrepr = f"skipped, but CFLD_REQUIRE_ALL=1 makes every skip a failure: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        _skip_as_failure(report)


@pytest.hookimpl(tryfirst=True)
def pytest_collectreport(report):
    # a module-level importorskip skips the whole file at collection
    if REQUIRE_ALL and report.skipped:
        _skip_as_failure(report)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not found at {FIXTURES}")
    return FIXTURES


def _set_test_threads() -> None:
    import torch

    # CI runs tests alone on 2 cores; on a busy machine set CFLD_TEST_THREADS=1 (oversubscribed
    # threads make torch on CPU many times slower, not a little).
    torch.set_num_threads(int(os.environ.get("CFLD_TEST_THREADS", "2")))


@pytest.fixture(scope="session", autouse=True)
def _torch_threads_session():
    # Module-scoped fixtures (reference outputs) are built before any function-scoped fixture:
    # they must see the same thread count as the tests, or float results differ in the last bits.
    _set_test_threads()
    yield


@pytest.fixture(autouse=True)
def _torch_threads():
    _set_test_threads()
    yield
    # Also after the test: an in-process CLI run (e.g. `generate --pairs`, 1 thread per
    # process) must not leak its thread count into the next module's module-scoped fixtures.
    _set_test_threads()


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run a block at ``count`` torch threads, then restore the previous count.  Module-scoped
    fixtures need it: they run before any function-scoped fixture sets a module's count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread for the test (``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    with torch_threads(1):
        yield


def perturb_appearance(model, std: float = 0.2) -> None:
    """Give the zero-initialised appearance output convs random weights, so that the appearance
    path changes outputs."""
    import torch

    with torch.no_grad():
        for conv in model.appearance_encoder.zero_conv_outs:
            conv.weight.normal_(0, std)


def make_tiny_pipeline(seed: int = 0, fp32: bool = True):
    """The ``tiny`` preset (fixture dimensions) with random weights, the perturbed appearance path
    and the tiny SD-style VAE.  ``fp32``: autocast off (the pipeline's default is mixed
    precision), because these tests compare with the authors' fixtures and hand-written fp32
    loops; tests of the default precision pass ``fp32=False``."""
    import torch

    from cfld import CFLDModel, CFLDPipeline
    from cfld.pipelines import official_scheduler
    from cfld.presets import get_preset

    torch.manual_seed(seed)
    model = CFLDModel(**get_preset("tiny").model).eval()
    perturb_appearance(model)
    pipe = CFLDPipeline(model=model, scheduler=official_scheduler(), vae=tiny_vae())
    pipe.set_progress_bar_config(disable=True)
    return pipe.disable_autocast() if fp32 else pipe


def make_pixel_pipeline(output_size=(64, 44), perturb: bool = False, seed: int = 0,
                        fp32: bool = True):
    """The shipped model's architecture with random weights, in pixel space (exact autoencoder).

    ``perturb`` gives the zero-initialised appearance convs random weights so the appearance
    path changes outputs; ``fp32`` as in :func:`make_tiny_pipeline`.
    """
    import torch

    from cfld import CFLDModel, CFLDPipeline, PixelUnshuffleAutoencoder
    from cfld.pipelines import official_scheduler
    from cfld.presets import get_preset

    torch.manual_seed(seed)
    model = CFLDModel(**get_preset("synthetic").model).eval()
    if perturb:
        perturb_appearance(model)
    pipe = CFLDPipeline(model=model, scheduler=official_scheduler(),
                        vae=PixelUnshuffleAutoencoder(4),
                        output_size=list(output_size) if output_size else None)
    pipe.set_progress_bar_config(disable=True)
    return pipe.disable_autocast() if fp32 else pipe


def tiny_vae():
    """A small random AutoencoderKL with SD's /8 reduction (for the ``tiny`` preset)."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(1)
    return AutoencoderKL(block_out_channels=(8, 8, 8, 8), norm_num_groups=8,
                         down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4,
                         layers_per_block=1).eval()


def branch_predictions(model, z, t, cond) -> dict[str, torch.Tensor]:
    """The five branch predictions, one separate UNet call each (no batching, no guidance code)."""
    p = model.uncond_prompt.expand(cond.batch_size, -1, -1)
    conds = {"uc": cond.with_prompt(p).without_pose().without_appearance(),
             "down": cond.with_prompt(p).without_appearance(),
             "ud": cond.with_prompt(p),
             "cd": cond.without_appearance(),
             "full": cond}
    return {k: model.predict_noise(z, t, c) for k, c in conds.items()}


def hand_sampling_loop(model, scheduler, cond, steps: int, seed: int, latents=None):
    """A plain diffusers sampling loop, written out: z_T·σ_init (or ``latents`` as given), then
    per step scale the input, Eq. (7) on separate branch predictions (w = 2), and step with the
    same generator.  The reference the pipeline is checked against."""
    import inspect

    import torch

    g = torch.Generator().manual_seed(seed)
    scheduler.set_timesteps(steps)
    if latents is None:
        unet = model.unet.config
        z = torch.randn(cond.batch_size, unet.in_channels, unet.sample_size, unet.sample_size,
                        generator=g) * scheduler.init_noise_sigma
    else:
        z = latents.clone()
    stochastic = "generator" in inspect.signature(scheduler.step).parameters
    for t in scheduler.timesteps:
        e = branch_predictions(model, scheduler.scale_model_input(z, t), t, cond)
        eps = e["uc"] + 2.0 * (e["down"] - e["uc"]) + 2.0 * (e["full"] - e["down"])
        z = scheduler.step(eps, t, z, **({"generator": g} if stochastic else {})).prev_sample
    return z
