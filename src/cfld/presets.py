"""Named model sizes, side by side (design §4.9), and the authors' yacs configuration in ours.

* ``fashion_256`` / ``fashion_512``: the paper's model (Table 1), evaluated at 256×176 or
  512×352; the network is the same, only the evaluation size differs (fidelity §8).
* ``market_128``: the same network for Market-1501, evaluated at 128×64.
* ``tiny``: the same architecture at toy widths, for fast CPU tests (equal to the dimensions of
  the authors'-code fixture ``official_tiny``).
* ``synthetic``: the small model we train on procedural people and ship with the package.
* ``synthetic_128``: the same widths at 128² (a finer latent grid), fine-tuned from ``synthetic``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from cfld.models.unet import SD15_UNET_CONFIG


@dataclass(frozen=True)
class Preset:
    """A named configuration.

    Attributes:
        name: Preset name.
        model: Keyword arguments of :class:`cfld.CFLDModel`.
        image_size: (H, W) of the images the UNet generates (through the autoencoder → latent).
        test_size: (H, W) at which outputs are evaluated (generated images are resized to it).
        pose_size: (H, W) of the 21-channel pose map fed to H_P.
        description: One line for ``cfld info``.
    """

    name: str
    model: dict[str, Any]
    image_size: tuple[int, int]
    test_size: tuple[int, int]
    pose_size: tuple[int, int]
    description: str = ""
    #: ``{"type": "sd_vae"}`` (SD-1.5 AutoencoderKL, user-supplied) or
    #: ``{"type": "pixel_unshuffle", "factor": f}`` (parameter-free, pixel-space diffusion).
    autoencoder: dict[str, Any] = field(default_factory=lambda: {"type": "sd_vae"})

    @property
    def source_size(self) -> int:
        """Side of the square source image."""
        return int(self.model.get("source_encoder_config", {}).get("img_size", 256))


def _unet(**overrides: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(SD15_UNET_CONFIG)
    cfg.update(overrides)
    return cfg


_TINY_MODEL: dict[str, Any] = {
    "source_encoder_config": {"img_size": 64, "embed_dim": 8, "depths": [2, 2, 2, 2],
                       "num_heads": [2, 4, 8, 16], "window_size": 4},
    "decoder_config": {"num_queries": 16, "dim": 32, "depth": 2, "num_heads": 4},
    "appearance_config": {
        "inner_dims": [8, 8, 8, 16, 16, 16, 32, 32, 32],
        "embed_dims": [4, 4, 4, 8, 8, 8, 16, 16, 16],
        "num_heads": [2, 2, 2, 2, 2, 2, 4, 4, 4],
        "ctx_dims": [32, 32, 32, 32, 32, 32, 64, 64, 64],
        "depth": 2,
    },
    "pose_adapter_config": {"in_channels": 32, "channels": [32, 32, 64]},
    "unet_config": _unet(sample_size=16, block_out_channels=[32, 32, 64, 32],
                         cross_attention_dim=32),
}

# Small model for procedural people: images squashed to 64² (as the authors squash 256×176 to
# 512²) and diffused in pixel space through a 4× pixel-unshuffle "autoencoder" (48×16×16
# latents, cfld.models.pixel_autoencoder); evaluated at 128×88, the size of the procedural
# images (the paper's SSIM window of 51 needs images at least 51 pixels wide).
_SYNTHETIC_MODEL: dict[str, Any] = {
    "source_encoder_config": {"img_size": 64, "embed_dim": 16, "depths": [1, 1, 2, 1],
                       "num_heads": [1, 2, 4, 8], "window_size": 8, "drop_path_rate": 0.0},
    "decoder_config": {"num_queries": 8, "dim": 64, "depth": 2, "num_heads": 4},
    "appearance_config": {
        "inner_dims": [16, 16, 16, 32, 32, 32, 64, 64, 64],
        "embed_dims": [16, 16, 16, 32, 32, 32, 32, 32, 32],
        "num_heads": [1, 1, 1, 2, 2, 2, 2, 2, 2],
        "ctx_dims": [64, 64, 64, 64, 64, 64, 128, 128, 128],
        "depth": 1,
    },
    "pose_adapter_config": {"in_channels": 64, "channels": [64, 64, 128]},
    # The first UNet level must be at least as wide as the 48-channel pixel latent: a narrower
    # conv_in would discard part of the noise it has to predict (ε-MSE stuck near 16/48).
    "unet_config": _unet(sample_size=16, in_channels=48, out_channels=48,
                         block_out_channels=[64, 64, 128, 128], cross_attention_dim=64,
                         attention_head_dim=4),
    "unet_trainable": "all",
}

# The synthetic model at 128² (the procedural images' height): a 32×32×48 latent grid, the
# source at 128² and the pose map at 128², the widths unchanged.  A head covers 2×2 or more
# cells instead of one or two (README, "What is still wrong"); ~4.5× the compute per step.
_SYNTHETIC_128_MODEL: dict[str, Any] = copy.deepcopy(_SYNTHETIC_MODEL)
_SYNTHETIC_128_MODEL["source_encoder_config"]["img_size"] = 128
_SYNTHETIC_128_MODEL["unet_config"]["sample_size"] = 32

PRESETS: dict[str, Preset] = {
    "fashion_256": Preset("fashion_256", {}, (512, 512), (256, 176), (256, 256),
                          "paper model (Table 1), evaluated at 256×176"),
    "fashion_512": Preset("fashion_512", {}, (512, 512), (512, 352), (256, 256),
                          "paper model (Table 1), evaluated at 512×352"),
    # Market-1501 (128×64 images): the paper's network, evaluated at the data's size. The
    # authors released no Market configuration (CFLD issue 46); generation and pose sizes are
    # their DeepFashion ones.
    "market_128": Preset("market_128", {}, (512, 512), (128, 64), (256, 256),
                         "paper model (Table 1) for Market-1501, evaluated at 128×64"),
    "tiny": Preset("tiny", _TINY_MODEL, (128, 128), (64, 44), (64, 64),
                   "toy widths for CPU tests (= the official_tiny fixture)"),
    "synthetic": Preset("synthetic", _SYNTHETIC_MODEL, (64, 64), (128, 88), (64, 64),
                        "small model trained on procedural people (shipped)",
                        autoencoder={"type": "pixel_unshuffle", "factor": 4}),
    "synthetic_128": Preset("synthetic_128", _SYNTHETIC_128_MODEL, (128, 128), (128, 88),
                            (128, 128), "the synthetic model at 128² (32² latent grid)",
                            autoencoder={"type": "pixel_unshuffle", "factor": 4}),
}


def get_preset(name: str) -> Preset:
    """Return a preset by name (a deep copy, safe to modify)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[name])


# --------------------------------------------------------------------------- authors' yacs keys
def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(f"unsupported official configuration: {message}")


def model_kwargs_from_official(cfg: dict[str, Any], unet_config: dict[str, Any] | None = None,
                               ) -> dict[str, Any]:
    """Map the authors' yacs configuration (``cfg``) and UNet config onto CFLDModel kwargs.

    Args:
        cfg: The complete official configuration (``defaults/deepfashion.py`` after overrides),
            e.g. ``config.json["cfg"]`` of the official fixture. Missing keys take official
            defaults.
        unet_config: The UNet's diffusers config (``pretrained_models/unet/config.json``);
            default SD-1.5.

    Raises:
        ValueError: for ablation-only options this package does not implement (named).
    """
    model = cfg.get("MODEL", cfg)
    inp = cfg.get("INPUT", {})
    cond = model.get("COND_STAGE_CONFIG", {})
    dec = model.get("DECODER_CONFIG", {})
    app = model.get("APPEARANCE_GUIDANCE_CONFIG", {})
    pose = model.get("POSE_GUIDANCE_CONFIG", {})
    unet_train = model.get("UNET_CONFIG", {})

    cond_size = inp.get("COND", {}).get("IMG_SIZE", [256, 256])
    _require(cond_size[0] == cond_size[1], f"non-square INPUT.COND.IMG_SIZE {cond_size}")
    _require(not cond.get("LAST_NORM", False), "COND_STAGE_CONFIG.LAST_NORM=True")
    _require(not inp.get("COND", {}).get("PRED_RATIO"), "masked source (INPUT.COND.PRED_RATIO)")
    _require(dec.get("DEPTH", 8) > 0, "decoder ablations (DECODER_CONFIG.DEPTH <= 0)")
    _require(not dec.get("POSE_QUERY", False), "DECODER_CONFIG.POSE_QUERY=True")
    _require(app.get("TO_QUERIES", True) and not app.get("TO_KEYS", False)
             and not app.get("TO_VALUES", False) and not app.get("TO_SELF_ATTN", False),
             "appearance biases other than cross-attention queries")

    out: dict[str, Any] = {
        "source_encoder_config": {
            "img_size": int(cond_size[0]),
            "embed_dim": cond.get("EMBED_DIM", 128),
            "depths": list(cond.get("DEPTHS", [2, 2, 18, 2])),
            "num_heads": list(cond.get("NUM_HEADS", [4, 8, 16, 32])),
            "window_size": cond.get("WINDOW_SIZE", 16),
            "drop_path_rate": cond.get("DROP_PATH_RATE", 0.2),
        },
        "decoder_config": {
            "num_queries": dec.get("N_CTX", 16),
            "dim": dec.get("CTX_DIM", 768),
            "depth": dec.get("DEPTH", 8),
            "num_heads": dec.get("HEADS", 24),
        },
        "pose_adapter_config": {
            "pose_channels": pose.get("POSE_CHANNELS", 21),
            "downscale_factor": pose.get("DOWNSCALE_FACTOR", 4),
            "in_channels": pose.get("IN_CHANNELS", 320),
            "channels": list(pose.get("CHANNELS", [320, 640, 1280])),
        },
        "unet_config": (dict(unet_config) if unet_config is not None
                        else copy.deepcopy(SD15_UNET_CONFIG)),
    }
    if app:
        out["appearance_config"] = {
            "inner_dims": list(app["INNER_DIMS"]),
            "embed_dims": list(app["EMBED_DIMS"]),
            "num_heads": list(app["HEADS"]),
            "ctx_dims": list(app["CTX_DIMS"]),
            "depth": app.get("DEPTH", 4),
            "block_idx": list(app.get("ATTN_RESIDUAL_BLOCK_IDX", [11, 10, 9, 8, 7, 6, 5, 4, 3])),
            "conv_kernel_size": list(app.get("CONVIN_KERNEL_SIZE", [1] * 9)),
            "conv_stride": list(app.get("CONVIN_STRIDE", [1] * 9)),
            "conv_padding": list(app.get("CONVIN_PADDING", [0] * 9)),
        }
    official_train = (unet_train.get("TRAIN_CROSS_ATTN_K", True)
                      and unet_train.get("TRAIN_CROSS_ATTN_V", True)
                      and not unet_train.get("TRAIN_CROSS_ATTN_Q", False)
                      and not any(unet_train.get(f"TRAIN_SELF_ATTN_{x}", False) for x in "QKV"))
    _require(official_train, "a UNet trainable set other than cross-attention W_k/W_v")
    out["unet_trainable"] = "official"
    return out
