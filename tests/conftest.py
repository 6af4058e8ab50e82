"""Shared test fixtures: paths to ../shared and deterministic torch settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    # CI runs tests alone on 2 cores; on a busy machine set CFLD_TEST_THREADS=1 (oversubscribed
    # threads make torch on CPU many times slower, not a little).
    torch.set_num_threads(int(os.environ.get("CFLD_TEST_THREADS", "2")))
    yield
