"""The slowly moving target network of latent consistency distillation (``cfld distill``).

LCD (Luo et al., 2023, Alg. 1, line "θ⁻ ← stopgrad(μθ⁻ + (1 − μ)θ)") evaluates the consistency
target with an exponential moving average θ⁻ of the student's UNet, μ = 0.95 in LCM.  With
μ = 0 (the student itself under stop-gradient) our students drifted and collapsed within a few
hundred steps (README, "Few-step sampling").

The average belongs to the optimisation state, as Adam's moments do, so :meth:`EMATarget.attach`
hooks it into the optimiser: updated after every optimiser step that is really taken (a step
skipped by fp16 loss scaling updates nothing), saved inside the optimiser's ``state_dict`` and
restored by its ``load_state_dict``.  Checkpoints (``state.pt``) therefore carry it without a
change to the trainer, and a resumed run continues bit for bit.  The target UNet is kept out of
the module tree, so it is neither trained, nor synchronised by DDP, nor exported.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

#: Key of the average inside the optimiser's state dict.
STATE_KEY = "ema_target"


class EMATarget:
    """An EMA copy θ⁻ of ``unet`` with decay μ (``decay``), in the same device and dtype.

    Args:
        unet: The student's (trained) UNet; θ⁻ starts equal to it.
        decay: μ in [0, 1): θ⁻ ← μθ⁻ + (1 − μ)θ after each optimiser step.
    """

    def __init__(self, unet: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.unet = copy.deepcopy(unet).requires_grad_(False).eval()
        self._source = unet

    @torch.no_grad()
    def update(self) -> None:
        """θ⁻ ← μθ⁻ + (1 − μ)θ (parameters; buffers are copied)."""
        for target, param in zip(self.unet.parameters(), self._source.parameters(), strict=True):
            target.lerp_(param.detach().to(target.dtype), 1.0 - self.decay)
        for target, buf in zip(self.unet.buffers(), self._source.buffers(), strict=True):
            target.copy_(buf)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """θ⁻ as CPU tensors (what a checkpoint stores)."""
        return {k: v.detach().to("cpu").clone() for k, v in self.unet.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore θ⁻ (strictly: every key of the UNet, the same shapes)."""
        self.unet.load_state_dict(state, strict=True)

    def attach(self, optimizer: Any) -> None:
        """Update after each step of ``optimizer`` (a torch optimiser, or accelerate's wrapper
        around one) and travel inside its ``state_dict`` / ``load_state_dict``."""
        inner = getattr(optimizer, "optimizer", optimizer)
        inner.register_step_post_hook(lambda *_: self.update())
        inner.register_state_dict_post_hook(self._save_hook)
        inner.register_load_state_dict_pre_hook(self._load_hook)

    def _save_hook(self, _opt: Any, state: dict[str, Any]) -> dict[str, Any]:
        state[STATE_KEY] = {"decay": self.decay, "weights": self.state_dict()}
        return state

    def _load_hook(self, _opt: Any, state: dict[str, Any]) -> dict[str, Any]:
        saved = state.pop(STATE_KEY, None)
        if saved is None:
            raise ValueError("the checkpoint holds no EMA target (it was written with "
                             "ema_decay 0); resume with the interrupted run's --ema-decay")
        if float(saved["decay"]) != self.decay:
            raise ValueError(f"the checkpoint's EMA decay is {saved['decay']}, not {self.decay}; "
                             "resume with the interrupted run's --ema-decay")
        self.load_state_dict(saved["weights"])
        return state

    @contextlib.contextmanager
    def in_place_of(self, model: nn.Module) -> Iterator[nn.Module]:
        """``model`` with θ⁻ as its UNet for the duration (the student's UNet restored after)."""
        student = model.unet
        model.unet = self.unet
        try:
            yield model
        finally:
            model.unet = student


__all__ = ["STATE_KEY", "EMATarget"]
