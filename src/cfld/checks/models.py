"""Model folders and weight files, checked file by file before anything is built from them.

* :func:`check_pipeline_folder` reads ``model_index.json`` and refuses any component whose
  ``[library, class]`` is not on :data:`ALLOWED_COMPONENTS` *before* diffusers imports the
  library it names; then checks every component's config and weights.
* :func:`check_safetensors` validates a safetensors header against the file's size (a truncated
  or garbage file is named, not a Rust panic).
* :func:`load_torch_file` loads ``.pt/.pth/.bin`` with ``weights_only=True`` and turns a refused
  pickle payload or a broken archive into one ``ValueError`` naming the file.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

from cfld.checks.files import input_dir, input_file, read_json

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
#: The ``[library, class]`` pairs a CFLD pipeline folder may name, per component.
ALLOWED_COMPONENTS: dict[str, set[tuple[str, str]]] = {
    "model": {("cfld.models.cfld", "CFLDModel"), ("cfld", "CFLDModel")},
    "vae": {("cfld.models.pixel_autoencoder", "PixelUnshuffleAutoencoder"),
            ("cfld", "PixelUnshuffleAutoencoder"), ("diffusers", "AutoencoderKL")},
    "scheduler": set(),  # any diffusers scheduler class, see _is_scheduler
}
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
                "I8": 1, "U8": 1, "U16": 2, "U32": 4, "U64": 8, "BOOL": 1, "F8_E4M3": 1,
                "F8_E5M2": 1}
_MAX_HEADER = 100 * 2**20


def _is_scheduler(library: str, name: str) -> bool:
    if library != "diffusers" or not name.isidentifier() or not name.endswith("Scheduler"):
        return False
    import diffusers
    from diffusers.schedulers.scheduling_utils import SchedulerMixin

    cls = getattr(diffusers, name, None)
    return isinstance(cls, type) and issubclass(cls, SchedulerMixin)


def check_safetensors(path: str | os.PathLike, what: str = "weights file") -> Path:
    """Check that ``path`` is a complete safetensors file (header and every tensor's bytes).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Truncated, garbage or inconsistent (the message names the file).
    """
    p = input_file(path, what)
    size = p.stat().st_size
    fix = "re-export or re-download it"
    with p.open("rb") as fh:
        head = fh.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n <= 0 or n > min(size - 8, _MAX_HEADER):
            raise ValueError(f"{what} {p} is not a safetensors file (truncated, or another "
                             f"format: {size} bytes); {fix}")
        try:
            header = json.loads(fh.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ValueError(f"{what} {p} has a broken safetensors header; {fix}") from None
    if not isinstance(header, dict):
        raise ValueError(f"{what} {p} has a broken safetensors header; {fix}")
    data_bytes, end = size - 8 - n, 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, stop = (int(v) for v in info["data_offsets"])
            expected = math.prod(int(d) for d in info["shape"]) * _DTYPE_BYTES[info["dtype"]]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{what} {p}: tensor {name!r} has a broken entry in the "
                             f"header; {fix}") from None
        if stop - start != expected or not 0 <= start <= stop:
            raise ValueError(f"{what} {p}: tensor {name!r} has inconsistent offsets; {fix}")
        end = max(end, stop)
    if end > data_bytes:
        raise ValueError(f"{what} {p} is truncated: its header describes {end} bytes of tensor "
                         f"data but the file holds {data_bytes}; {fix}")
    return p


def load_safetensors(path: str | os.PathLike, what: str = "weights file",
                     device: str = "cpu") -> dict[str, Any]:
    """:func:`check_safetensors`, then ``safetensors.torch.load_file``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = check_safetensors(path, what)
    try:
        return load_file(str(p), device=device)
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{what} {p} could not be read ({err}); re-export it") from None


def load_torch_file(path: str | os.PathLike, what: str = "weights file") -> Any:
    """``torch.load(path, weights_only=True)`` with named errors.

    Raises:
        FileNotFoundError: No such file.
        ValueError: The file holds Python objects other than tensors and plain containers
            (refused: loading it could run code), or is not a readable PyTorch file.
    """
    import torch

    p = input_file(path, what)
    with open(p, "rb") as fh:
        head = fh.read(16)
    # torch.save writes a zip archive (PK..), older versions a pickle (protocol byte 0x80):
    # anything else is another kind of file, not a payload to refuse.
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise ValueError(f"{what} {p} is not a PyTorch weights file (it looks like "
                         f"{_file_kind(head)}); give the .pth/.bin/.pt file of the weights")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{what} {p} was refused: it holds Python objects beyond tensors, "
                         f"which could run code when loaded ({first[:200]}). Give a plain state "
                         "dict (tensors only), e.g. as .safetensors") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError,
            AttributeError, TypeError, IndexError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{what} {p} is not a readable PyTorch weights file (truncated or "
                         f"another format: {first[:200]}); re-download or re-export it") from None


def _file_kind(head: bytes) -> str:
    """What a file is, from its first bytes (for messages)."""
    kinds = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
             (b"GIF8", "a GIF image"), (b"RIFF", "a WEBP image or other RIFF file"),
             (b"\x1f\x8b", "a gzip archive"), (b"\x89HDF", "an HDF5/Keras file"))
    for magic, kind in kinds:
        if head.startswith(magic):
            return kind
    if len(head) >= 10 and head[8:10] == b'{"':
        return "a safetensors file: give it a .safetensors name"
    if not head:
        return "an empty file"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "a text file"
    return "another format"


def load_weights(path: str | os.PathLike, what: str = "weights file") -> Any:
    """A ``.safetensors`` file by :func:`load_safetensors`, anything else by
    :func:`load_torch_file`."""
    if Path(path).suffix.lower() == ".safetensors":
        return load_safetensors(path, what)
    return load_torch_file(path, what)


def check_config_file(path: str | os.PathLike, what: str, class_name: str | None = None
                      ) -> dict[str, Any]:
    """A component's ``config.json``: a JSON object, of ``class_name`` when it records one."""
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} must be a JSON object; re-export the model")
    recorded = data.get("_class_name")
    if class_name is not None and recorded is not None and recorded != class_name:
        raise ValueError(f"{what} {path} describes a {recorded!r}, not a {class_name}")
    return data


def check_init_keys(config: dict[str, Any], cls: type, where: object) -> None:
    """Refuse keys of a ``config.json`` that ``cls.__init__`` does not take (a mistyped key
    would otherwise be ignored and the default used)."""
    import inspect

    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(k for k in config if not k.startswith("_") and k not in params)
    if unknown:
        valid = sorted(k for k in params if k != "self")
        raise ValueError(f"{where}: unknown option(s) {unknown} for {cls.__name__}; valid: "
                         f"{valid}")


def build_from_config(cls: type, config: dict[str, Any], where: object) -> Any:
    """``cls.from_config(config)`` with any failure reported as a bad ``config.json``."""
    check_init_keys(config, cls, where)
    try:
        return cls.from_config(config)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RuntimeError,
            ZeroDivisionError, OverflowError) as err:
        raise ValueError(f"{where} does not describe a valid {cls.__name__} ({type(err).__name__}: "
                         f"{str(err)[:300]}); re-export the model with save_pretrained or "
                         "`cfld convert`") from None


def check_model_folder(folder: str | os.PathLike, class_name: str = "CFLDModel") -> Path:
    """A model folder (``config.json`` + ``diffusion_pytorch_model.safetensors``), file by file."""
    f = input_dir(folder, "model folder")
    for name in ("config.json", WEIGHTS_NAME):
        if not (f / name).exists():
            raise FileNotFoundError(f"{name} not found in {f}; expected a model folder written by "
                                    f"`cfld convert` or save_pretrained (config.json + "
                                    f"{WEIGHTS_NAME})")
    check_config_file(f / "config.json", "model config", class_name)
    check_safetensors(f / WEIGHTS_NAME, "model weights")
    return f


def check_pipeline_index(index: object, where: str) -> dict[str, tuple[str, str] | None]:
    """The components of a parsed ``model_index.json``, each checked against the allow-list."""
    if not isinstance(index, dict):
        raise ValueError(f"{where} must be a JSON object")
    if index.get("_class_name") != "CFLDPipeline":
        raise ValueError(f"{where} describes a {index.get('_class_name')!r} pipeline, not a "
                         "CFLDPipeline; give a folder written by cfld")
    components: dict[str, tuple[str, str] | None] = {}
    for key, value in index.items():
        if key.startswith("_") or not isinstance(value, list) or len(value) != 2 or not any(
                isinstance(v, str) for v in value):
            continue  # a configuration value (e.g. output_size), not a component
        if value == [None, None]:
            components[key] = None
            continue
        library, cls = value
        if not (isinstance(library, str) and isinstance(cls, str)):
            raise ValueError(f"{where}: component {key!r} must be [library, class], got {value}")
        allowed = ALLOWED_COMPONENTS.get(key)
        ok = allowed is not None and ((library, cls) in allowed
                                      or (key == "scheduler" and _is_scheduler(library, cls)))
        if not ok:
            raise ValueError(f"{where}: component {key!r} names {library}.{cls}, which a CFLD "
                             "pipeline never holds (allowed: model = CFLDModel, vae = "
                             "AutoencoderKL or PixelUnshuffleAutoencoder, scheduler = a diffusers "
                             "scheduler); refused before importing anything from it")
        components[key] = (library, cls)
    if "model" not in components or components["model"] is None:
        raise ValueError(f"{where} has no 'model' component; give a folder written by cfld")
    return components


def check_pipeline_folder(folder: str | os.PathLike) -> Path:
    """A pipeline folder (``model_index.json`` + component folders) or a bare model folder,
    checked file by file; the problem is named (the file, what is wrong, how to fix it)."""
    f = input_dir(folder, "model folder")
    index_path = f / "model_index.json"
    if not index_path.exists():
        if (f / "config.json").exists():
            return check_model_folder(f)
        raise FileNotFoundError(f"{f} holds neither model_index.json (a pipeline folder) nor "
                                "config.json (a model folder); give a folder written by "
                                "`cfld train`, `cfld convert` or save_pretrained")
    components = check_pipeline_index(read_json(index_path, "pipeline index"), str(index_path))
    for key, spec in components.items():
        if spec is None:
            continue
        sub = f / key
        if not sub.is_dir():
            raise FileNotFoundError(f"{index_path} lists the component {key!r} but {sub} is "
                                    "missing; copy the whole pipeline folder")
        if key == "scheduler":
            config = sub / "scheduler_config.json"
            if not config.exists():
                raise FileNotFoundError(f"{config} not found (the scheduler's configuration)")
            check_config_file(config, "scheduler config")
            continue
        if spec[1] == "CFLDModel":
            check_model_folder(sub)
            continue
        check_config_file(sub / "config.json", f"{key} config", spec[1])
        if (sub / WEIGHTS_NAME).exists():
            check_safetensors(sub / WEIGHTS_NAME, f"{key} weights")
    return f


__all__ = ["ALLOWED_COMPONENTS", "build_from_config", "check_config_file", "check_init_keys",
           "check_model_folder", "check_pipeline_folder", "check_pipeline_index",
           "check_safetensors", "load_safetensors", "load_torch_file", "load_weights"]
