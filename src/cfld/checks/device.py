"""``--device`` / ``device=``: a device torch knows and this machine has, or one clear line."""

from __future__ import annotations

import argparse
from typing import Any

#: Device types cfld runs on.
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")


def auto_device() -> str:
    """``cuda`` when a CUDA GPU is available, else ``mps`` (Apple GPU), else ``cpu``."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def check_device(device: Any, what: str = "device") -> Any:
    """Return ``torch.device(device)`` if this machine has it (``"auto"``: see
    :func:`auto_device`).

    Raises:
        ValueError: Not a device name, a type cfld does not run on, or absent here (e.g.
            ``cuda`` on a machine without a CUDA GPU, ``cuda:3`` with two GPUs).
    """
    import torch

    options = "auto, cpu, cuda, cuda:N, mps or xpu"
    if isinstance(device, str) and device.strip() == "auto":
        device = auto_device()
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device.strip())
        except (RuntimeError, ValueError, TypeError):
            raise ValueError(f"{what} {device!r} is not a device name; use {options}") from None
    else:
        raise ValueError(f"{what} must be a device name ({options}), got {device!r}")
    if dev.type not in DEVICE_TYPES:
        raise ValueError(f"{what} {device!r}: cfld does not run on {dev.type!r}; use {options}")
    if dev.type == "cpu":
        return dev
    backend = getattr(torch, dev.type, None) if dev.type != "mps" else torch.backends.mps
    available = bool(backend is not None and backend.is_available())
    if not available:
        why = (" (this torch is built without CUDA)" if dev.type == "cuda"
               and torch.version.cuda is None else "")
        raise ValueError(f"{what} {device!r}: no {dev.type} device is available on this "
                         f"machine{why}; use --device cpu")
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if dev.index is not None and dev.index >= count:
        raise ValueError(f"{what} {device!r}: this machine has {count} {dev.type} device(s) "
                         f"(indices 0..{count - 1})")
    return dev


def device_arg(text: str) -> str:
    """argparse ``type=`` for ``--device``: checked, kept as the string given (``auto``
    becomes the device it picks)."""
    try:
        check_device(text, "")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).lstrip()) from None
    return auto_device() if text.strip() == "auto" else text


__all__ = ["DEVICE_TYPES", "auto_device", "check_device", "device_arg"]
