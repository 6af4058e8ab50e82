"""Speed options of :class:`~cfld.pipelines.CFLDPipeline`.

Mixed precision is ON by default (:data:`DEFAULT_AUTOCAST`); every other option is off unless
switched on:

* :func:`resolve_autocast` / :func:`autocast_context` — mixed precision for the networks
  (bf16 on CPUs with AVX-512 bf16 or AMX, fp16 on CUDA, fp32 elsewhere); the guidance
  combination, the scheduler update and the latents stay fp32.  ``autocast=None`` (or
  :meth:`~cfld.pipelines.CFLDPipeline.disable_autocast`) gives the fp32 numerics that match the
  authors' code (docs/fidelity.md).
* :func:`attention_processors` / :func:`use_sdpa_everywhere` — check (and fix) that every
  attention runs PyTorch's ``scaled_dot_product_attention``.
* :func:`to_channels_last` — NHWC weights for the convolution-heavy networks (oneDNN / cuDNN).
* :func:`compile_unet` — ``torch.compile`` of the UNet in place (state-dict keys unchanged).
* :func:`set_vae_memory_mode` — slicing / tiling of diffusers' ``AutoencoderKL`` decode.
* :data:`FAST_SETTING` — the recommended fast setting: fewer DDPM steps, guidance in an interval
  of noise levels, DeepCache and autocast, measured within the DDPM-50 seed spread.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

#: Accepted spellings of the autocast option.
AUTOCAST_NAMES: dict[str, torch.dtype] = {
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
}

#: Attention processors that run ``F.scaled_dot_product_attention`` (checked by name so that a
#: processor class added by a later diffusers version is not silently accepted).
SDPA_PROCESSORS = frozenset({
    "AttnProcessor2_0",  # diffusers' default since torch 2.0
    "QueryBiasAttnProcessor",  # ours, Eq. (4) query bias (cfld.models.hybrid_attention)
    "FusedAttnProcessor2_0",
})


#: The recommended fast setting, ``pipe(source, pose, **FAST_SETTING)``: DDPM-10 (leading
#: spacing: t = 901 … 1), guidance only at 100 ≤ t ≤ 700 (Kynkäänniemi et al., NeurIPS 2024),
#: the full UNet every second step and its shallow level between (DeepCache, Ma et al., CVPR 2024),
#: and autocast ("auto": bf16 on a CPU with bf16 instructions, fp16 on CUDA).  15 full UNet
#: samples per image (+7 shallow) instead of 150.  It is the pick of
#: ``benchmarks/bench_fast_quality.py`` on the shipped model (chosen on validation people,
#: within the DDPM-50 seed spread on SSIM, silhouette IoU and part-colour error on unseen ones;
#: ``results/bench_fast_quality.json``, which tests/test_benchmarks.py checks this against).
FAST_SETTING: dict[str, Any] = {"num_inference_steps": 10, "guidance_interval": (100, 700),
                                "deep_cache_interval": 2, "autocast": "auto"}


#: The pipeline's default precision: ``"auto"`` = bf16 on a CPU with native bf16, fp16 on CUDA,
#: fp32 elsewhere.  bf16 DDPM-50 on the shipped model is within the fp32 DDPM-50 seed spread on
#: SSIM, silhouette IoU and part-colour error (``results/bench_fast_quality.json``,
#: ``bf16_default_within_spread``); at full size on our CPU it makes the default 1.80× the
#: authors' fp32 loop (``results/bench_vs_authors.json``; issue 19 asks for 2×).
DEFAULT_AUTOCAST: str = "auto"


# --------------------------------------------------------------------------- autocast
def cpu_supports_bf16() -> bool:
    """True if this CPU has native bf16 matmul (AVX-512 bf16 or AMX)."""
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((check is not None and check()) or (amx is not None and amx()))


def resolve_autocast(spec: str | torch.dtype | bool | None,
                     device: torch.device | str) -> torch.dtype | None:
    """Turn the user's autocast option into a dtype (or ``None`` = full precision).

    Args:
        spec: ``None``/``False`` (off), ``"bf16"``, ``"fp16"``, a ``torch.dtype``, or
            ``"auto"``/``True``: fp16 on CUDA, bf16 on a CPU with native bf16, else off.
        device: The execution device.

    Raises:
        ValueError: for an unknown name, or fp16 on CPU (slower than fp32 there and not
            supported by every CPU kernel).
    """
    device = torch.device(device)
    if spec is None or spec is False:
        return None
    if spec is True or spec == "auto":
        if device.type == "cuda":
            return torch.float16
        if device.type == "cpu" and cpu_supports_bf16():
            return torch.bfloat16
        return None
    if isinstance(spec, str):
        if spec.lower() not in AUTOCAST_NAMES:
            raise ValueError(f"autocast must be one of None, 'auto', {sorted(AUTOCAST_NAMES)} "
                             f"or a torch dtype, got {spec!r}")
        dtype = AUTOCAST_NAMES[spec.lower()]
    elif isinstance(spec, torch.dtype):
        dtype = spec
    else:
        raise ValueError(f"autocast must be None, 'auto', 'bf16', 'fp16' or a torch dtype, "
                         f"got {spec!r}")
    if dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"autocast dtype must be bfloat16 or float16, got {dtype}")
    if device.type == "cpu" and dtype == torch.float16:
        raise ValueError("fp16 autocast is not useful on CPU; use autocast='bf16' (CPU) or run "
                         "on a CUDA device")
    return dtype


def autocast_context(device: torch.device | str,
                     dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``device`` in ``dtype``, or a no-op context for ``None``."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


# --------------------------------------------------------------------------- attention
def attention_processors(module: nn.Module) -> Counter[str]:
    """Count the attention-processor classes of every diffusers ``Attention`` in ``module``."""
    counts: Counter[str] = Counter()
    for sub in module.modules():
        proc = getattr(sub, "processor", None)
        if proc is not None and hasattr(sub, "set_processor"):
            counts[type(proc).__name__] += 1
    return counts


def non_sdpa_attention(module: nn.Module) -> list[str]:
    """Names of attention modules whose processor does not use SDPA (should be empty)."""
    return [name for name, sub in module.named_modules()
            if hasattr(sub, "set_processor") and getattr(sub, "processor", None) is not None
            and type(sub.processor).__name__ not in SDPA_PROCESSORS]


def use_sdpa_everywhere(module: nn.Module) -> int:
    """Give every non-SDPA diffusers attention the SDPA processor; returns how many changed.

    The query-bias processors of the UNet are SDPA already and are left alone.
    """
    from diffusers.models.attention_processor import AttnProcessor2_0

    changed = 0
    for name in non_sdpa_attention(module):
        module.get_submodule(name).set_processor(AttnProcessor2_0())
        changed += 1
    return changed


# --------------------------------------------------------------------------- layout, compile
def to_channels_last(*modules: nn.Module | None) -> None:
    """Convert the 4-D weights of ``modules`` to channels-last (NHWC) in place."""
    for m in modules:
        if m is not None and any(p.ndim == 4 for p in m.parameters()):
            m.to(memory_format=torch.channels_last)


def to_contiguous_format(*modules: nn.Module | None) -> None:
    """Undo :func:`to_channels_last`."""
    for m in modules:
        if m is not None:
            m.to(memory_format=torch.contiguous_format)


def compile_unet(unet: nn.Module, **compile_kwargs: Any) -> nn.Module:
    """``torch.compile`` the UNet in place (``nn.Module.compile``: parameter names unchanged).

    Compilation itself happens at the first call (time it separately: it is paid once per
    shape/dtype, then every step runs the compiled graph).
    """
    compile_kwargs.setdefault("dynamic", False)
    unet.compile(**compile_kwargs)
    return unet


def is_compiled(module: nn.Module) -> bool:
    """True if :func:`compile_unet` was applied to ``module``."""
    return getattr(module, "_compiled_call_impl", None) is not None


# --------------------------------------------------------------------------- VAE memory
def set_vae_memory_mode(vae: nn.Module | None, *, slicing: bool | None = None,
                        tiling: bool | None = None) -> bool:
    """Switch diffusers' VAE slicing/tiling; returns False if the VAE has no such mode.

    (Our parameter-free pixel autoencoder needs neither: it allocates nothing.)
    """
    ok = True
    for flag, on, off in ((slicing, "enable_slicing", "disable_slicing"),
                          (tiling, "enable_tiling", "disable_tiling")):
        if flag is None:
            continue
        method = getattr(vae, on if flag else off, None)
        if method is None:
            logger.info("%s has no %s(); nothing to do", type(vae).__name__, on)
            ok = False
            continue
        method()
    return ok


# --------------------------------------------------------------------------- timing
@contextlib.contextmanager
def timed(store: dict[str, float], key: str) -> Iterator[None]:
    """Add the wall time of the block to ``store[key]`` (seconds)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        store[key] = store.get(key, 0.0) + time.perf_counter() - t0


__all__ = [
    "AUTOCAST_NAMES",
    "FAST_SETTING",
    "SDPA_PROCESSORS",
    "attention_processors",
    "autocast_context",
    "compile_unet",
    "cpu_supports_bf16",
    "is_compiled",
    "non_sdpa_attention",
    "resolve_autocast",
    "set_vae_memory_mode",
    "timed",
    "to_channels_last",
    "to_contiguous_format",
    "use_sdpa_everywhere",
]
