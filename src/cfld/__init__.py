"""cfld: Coarse-to-Fine Latent Diffusion (CVPR 2024) for pose-guided person image synthesis.

Public API (imported lazily so that ``import cfld`` stays fast)::

    from cfld import CFLDModel, CFLDPipeline, CFLDConditions
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "CFLDModel": "cfld.models.cfld",
    "CFLDConditions": "cfld.models.cfld",
    "CFLDPipeline": "cfld.pipelines.pipeline_cfld",
    "PixelUnshuffleAutoencoder": "cfld.models.pixel_autoencoder",
    "get_preset": "cfld.presets",
    "PRESETS": "cfld.presets",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return getattr(module, name)
    raise AttributeError(f"module 'cfld' has no attribute {name!r}")
