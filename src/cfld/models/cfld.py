"""CFLDModel: the whole noise-prediction network ε_θ(z_t, t, x_s, x_tp) of the paper (Fig. 2a).

Components (paper names → attributes):

* H_S source encoder (Swin-B)          → ``source_encoder``
* H_D perception-refined decoder       → ``decoder``
* φ_A hybrid-granularity attention      → ``appearance_encoder``
* H_P pose adapter                     → ``pose_adapter``
* H_N Stable-Diffusion UNet            → ``unet``
* learnable unconditional prompt       → ``uncond_prompt`` (official ``learnable_vector``)

The conditions do not depend on the timestep, so :meth:`CFLDModel.encode` computes them once
per (source, pose) and :meth:`CFLDModel.predict_noise` reuses them at every denoising step.
The network holds no noise schedule, loss or sampler (design §4.3).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import Tensor, nn

from cfld.checkpoint import WEIGHTS_NAME, load_state_strict
from cfld.checks.models import build_from_config, check_config_file, load_safetensors
from cfld.models.hybrid_attention import (
    DEFAULT_BLOCK_IDX,
    HybridGranularityAttention,
    QueryBiasAttnProcessor,
    install_query_bias_processors,
    unet_bias_layers,
)
from cfld.models.perception_decoder import PerceptionRefinedDecoder
from cfld.models.pose_adapter import PoseAdapter
from cfld.models.source_encoder import SourceEncoder
from cfld.models.unet import (
    SD15_UNET_CONFIG,
    TRAINABLE_SETS,
    apply_trainable_set,
    build_unet,
    clean_unet_config,
)


@dataclass
class CFLDConditions:
    """Everything ε_θ needs besides (z_t, t); computed once per image (design §1).

    Attributes:
        prompt: Coarse prompt c from H_D, or the learnable unconditional prompt: (B, Q, C).
        pose_residuals: Pose-adapter maps for UNet down blocks 0–2, highest resolution first;
            ``None`` = no pose (equivalent to zero maps).
        app_biases: Query biases {``block_k_cross_attn_q``: (B, L_k, C_k)}; ``None`` = no
            appearance bias (equivalent to zero biases).
    """

    prompt: Tensor
    pose_residuals: tuple[Tensor, ...] | None = None
    app_biases: dict[str, Tensor] | None = None

    @property
    def batch_size(self) -> int:
        """Number of samples."""
        return self.prompt.shape[0]

    def map(self, fn: Callable[[Tensor], Tensor]) -> CFLDConditions:
        """Apply ``fn`` to every tensor (e.g. a dtype cast or an index)."""
        return CFLDConditions(
            prompt=fn(self.prompt),
            pose_residuals=None if self.pose_residuals is None
            else tuple(fn(r) for r in self.pose_residuals),
            app_biases=None if self.app_biases is None
            else {k: fn(v) for k, v in self.app_biases.items()},
        )

    def to(self, *args: Any, **kwargs: Any) -> CFLDConditions:
        """``Tensor.to`` on every tensor."""
        return self.map(lambda t: t.to(*args, **kwargs))

    def without_pose(self) -> CFLDConditions:
        """The same conditions with the target pose removed (x_tp = ∅ in Eq. 7)."""
        return dataclasses.replace(self, pose_residuals=None)

    def without_appearance(self) -> CFLDConditions:
        """The same conditions with the appearance biases removed."""
        return dataclasses.replace(self, app_biases=None)

    def with_prompt(self, prompt: Tensor) -> CFLDConditions:
        """The same conditions with another prompt (e.g. the learnable unconditional one)."""
        if prompt.shape[0] == 1 and self.batch_size != 1:
            prompt = prompt.expand(self.batch_size, -1, -1)
        return dataclasses.replace(self, prompt=prompt)

    def lerp(self, other: CFLDConditions, weight: float) -> CFLDConditions:
        """Linear interpolation of prompt and every bias (paper Fig. 6b); pose from ``self``."""
        if (self.app_biases is None) != (other.app_biases is None):
            raise ValueError("cannot interpolate conditions with and without appearance biases")
        biases = None
        if self.app_biases is not None and other.app_biases is not None:
            biases = {k: torch.lerp(v, other.app_biases[k], weight)
                      for k, v in self.app_biases.items()}
        return CFLDConditions(torch.lerp(self.prompt, other.prompt, weight),
                              self.pose_residuals, biases)

    @staticmethod
    def cat(conditions: Sequence[CFLDConditions]) -> CFLDConditions:
        """Concatenate along the batch (guidance branches); an absent part becomes zeros."""
        if not conditions:
            raise ValueError("need at least one CFLDConditions to concatenate")
        prompt = torch.cat([c.prompt for c in conditions])
        ref_pose = next((c.pose_residuals for c in conditions if c.pose_residuals is not None),
                        None)
        pose = None
        if ref_pose is not None:
            pose = tuple(
                torch.cat([
                    c.pose_residuals[i] if c.pose_residuals is not None
                    else ref_pose[i].new_zeros((c.batch_size, *ref_pose[i].shape[1:]))
                    for c in conditions
                ])
                for i in range(len(ref_pose))
            )
        ref_bias = next((c.app_biases for c in conditions if c.app_biases is not None), None)
        biases = None
        if ref_bias is not None:
            biases = {
                key: torch.cat([
                    c.app_biases[key] if c.app_biases is not None
                    else ref.new_zeros((c.batch_size, *ref.shape[1:]))
                    for c in conditions
                ])
                for key, ref in ref_bias.items()
            }
        return CFLDConditions(prompt, pose, biases)


def _defaults(cls: type) -> dict[str, Any]:
    """Constructor defaults of a component class (its config with the paper's values)."""
    sig = inspect.signature(cls.__init__)
    return {name: (list(p.default) if isinstance(p.default, tuple) else p.default)
            for name, p in sig.parameters.items()
            if name != "self" and p.default is not inspect.Parameter.empty}


def _resolve(cls: type, given: dict[str, Any] | None, what: str) -> dict[str, Any]:
    config = _defaults(cls)
    if given is not None and not isinstance(given, dict):
        raise ValueError(f"{what} must be an object of options, got {given!r}")
    unknown = set(given or {}) - set(config)
    if unknown:
        raise ValueError(f"unknown {what} option(s) {sorted(unknown)}; valid: {sorted(config)}")
    config.update({k: list(v) if isinstance(v, tuple) else v for k, v in (given or {}).items()})
    return config


class CFLDModel(ModelMixin, ConfigMixin):
    """ε_θ of CFLD: conditioning stack + SD UNet (paper Fig. 2a).

    Args:
        source_encoder_config: Options of :class:`~cfld.models.source_encoder.SourceEncoder`
            (H_S).
        decoder_config: Options of
            :class:`~cfld.models.perception_decoder.PerceptionRefinedDecoder`;
            ``context_dim``/``num_context_tokens`` default to the encoder's last stage.
        appearance_config: Options of
            :class:`~cfld.models.hybrid_attention.HybridGranularityAttention` (φ_A).
        pose_adapter_config: Options of :class:`~cfld.models.pose_adapter.PoseAdapter` (H_P).
        unet_config: A diffusers ``UNet2DConditionModel`` config (default: SD-1.5).
        unet_trainable: ``official`` (up-block attn2 W_k/W_v only), ``all`` or ``none``.

    Every ``None`` means the paper's full-size default (preset ``fashion_256``).
    """

    config_name = "config.json"
    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        source_encoder_config: dict[str, Any] | None = None,
        decoder_config: dict[str, Any] | None = None,
        appearance_config: dict[str, Any] | None = None,
        pose_adapter_config: dict[str, Any] | None = None,
        unet_config: dict[str, Any] | None = None,
        unet_trainable: str = "official",
    ) -> None:
        super().__init__()
        if unet_trainable not in TRAINABLE_SETS:
            raise ValueError(f"unet_trainable must be one of {TRAINABLE_SETS}, "
                             f"got {unet_trainable!r}")
        enc_cfg = _resolve(SourceEncoder, source_encoder_config, "source_encoder_config")
        stages = len(enc_cfg["depths"])
        last_dim = enc_cfg["embed_dim"] * 2 ** (stages - 1)
        last_side = enc_cfg["img_size"] // enc_cfg["patch_size"] // 2 ** (stages - 1)
        dec_given = {"context_dim": last_dim, "num_context_tokens": last_side**2,
                     **(decoder_config or {})}
        dec_cfg = _resolve(PerceptionRefinedDecoder, dec_given, "decoder_config")
        app_cfg = _resolve(HybridGranularityAttention, appearance_config, "appearance_config")
        pose_cfg = _resolve(PoseAdapter, pose_adapter_config, "pose_adapter_config")
        unet_cfg = clean_unet_config(dict(unet_config) if unet_config is not None
                                     else dict(SD15_UNET_CONFIG))
        # Record the resolved configuration so config.json is complete and self-describing.
        self.register_to_config(source_encoder_config=enc_cfg, decoder_config=dec_cfg,
                                appearance_config=app_cfg, pose_adapter_config=pose_cfg,
                                unet_config=unet_cfg)

        self.source_encoder = SourceEncoder(**enc_cfg)
        self.decoder = PerceptionRefinedDecoder(**dec_cfg)
        self.appearance_encoder = HybridGranularityAttention(**app_cfg)
        self.pose_adapter = PoseAdapter(**pose_cfg)
        self.unet = build_unet(unet_cfg)
        # Learnable "empty" prompt: N(0, 1) init as in the official code (fidelity §2.6).
        self.uncond_prompt = nn.Parameter(
            torch.randn(1, dec_cfg["num_queries"], dec_cfg["dim"]))
        self._check_compatible()
        self._bias_processors: dict[str, QueryBiasAttnProcessor] = install_query_bias_processors(
            self.unet, self.appearance_encoder.block_idx)
        apply_trainable_set(self.unet, unet_trainable, self.appearance_encoder.block_idx)

    # ------------------------------------------------------------------ construction checks
    def _check_compatible(self) -> None:
        unet_cfg = self.unet.config
        if self.decoder.dim != unet_cfg.cross_attention_dim:
            raise ValueError(f"decoder dim {self.decoder.dim} must equal the UNet's "
                             f"cross_attention_dim {unet_cfg.cross_attention_dim}")
        channels = self.pose_adapter.channels
        down = list(unet_cfg.block_out_channels)[: len(channels)]
        if channels != down:
            raise ValueError(f"pose adapter channels {channels} must equal the UNet's first "
                             f"down-block widths {down}")
        layers = unet_bias_layers(self.unet, self.appearance_encoder.block_idx)
        for key, k, conv in zip(self.appearance_encoder.keys, self.appearance_encoder.block_idx,
                                self.appearance_encoder.zero_conv_outs, strict=True):
            width = layers[k].to_q.out_features
            if conv.out_channels != width:
                raise ValueError(f"appearance branch {key} outputs {conv.out_channels} channels "
                                 f"but its UNet layer has {width}")

    @property
    def source_size(self) -> int:
        """Side of the square source image H_S expects (256 for the paper's model)."""
        return int(self.config.source_encoder_config["img_size"])

    @property
    def pose_channels(self) -> int:
        """Channels of the pose map (21)."""
        return self.pose_adapter.pose_channels

    # ------------------------------------------------------------------ conditions
    def encode_source(self, source: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Source image (B, 3, S, S) in [-1, 1] → (coarse prompt (B, Q, C), query biases)."""
        self._check_source(source)
        features = self.source_encoder(source)  # 4 × (B, H·W, C)
        prompt = self.decoder(features[-1])  # coarse-grained prompt, paper §3.2
        biases = self.appearance_encoder(features[:-1])  # fine-grained biases, paper §3.3
        return prompt, biases

    def _check_source(self, source: Tensor) -> None:
        size = self.source_size
        if source.ndim != 4 or source.shape[1] != 3 or tuple(source.shape[-2:]) != (size, size):
            raise ValueError(
                f"source image must be a (B, 3, {size}, {size}) tensor in [-1, 1], got "
                f"{tuple(source.shape)}; resize the photo to {size}×{size} (the pipeline does this)"
            )

    def encode_pose(self, pose_map: Tensor) -> tuple[Tensor, ...]:
        """Pose map (B, 21, H, W) → pose residuals for UNet down blocks 0–2."""
        return tuple(self.pose_adapter(pose_map))

    def encode(self, source: Tensor, pose_map: Tensor) -> CFLDConditions:
        """Compute the full conditions once per (source, target pose)."""
        self._check_source(source)
        if pose_map.ndim != 4 or pose_map.shape[0] != source.shape[0]:
            raise ValueError(f"source batch {source.shape[0]} and pose batch "
                             f"{pose_map.shape[0]} differ")
        prompt, biases = self.encode_source(source)
        return CFLDConditions(prompt, self.encode_pose(pose_map), biases)

    def unconditional(self, batch_size: int) -> CFLDConditions:
        """The "no source, no pose" conditions: learnable prompt, no pose, no bias."""
        return CFLDConditions(self.uncond_prompt.expand(batch_size, -1, -1))

    # ------------------------------------------------------------------ ε prediction
    def predict_noise(self, latents: Tensor, timesteps: Tensor | int, cond: CFLDConditions,
                      timestep_cond: Tensor | None = None) -> Tensor:
        """ε_θ(z_t, t, conditions): (B, 4, h, w) → (B, 4, h, w); ``timestep_cond`` (B, D): the
        guidance embedding of a distilled student (:mod:`cfld.models.guidance_embedding`)."""
        batch = latents.shape[0]
        if cond.batch_size != batch:
            raise ValueError(f"conditions have batch {cond.batch_size}, latents {batch}")
        residuals = None
        if cond.pose_residuals is not None:
            residuals = list(cond.pose_residuals)  # diffusers pops from this list: fresh copy
            expected = latents.shape[-2:]
            if tuple(residuals[0].shape[-2:]) != tuple(expected):
                raise ValueError(
                    f"pose residuals are {tuple(residuals[0].shape[-2:])} but the latent is "
                    f"{tuple(expected)}: the pose map must be {self.pose_adapter.downscale_factor}"
                    "× the latent size"
                )
        self._set_biases(cond.app_biases)
        return self.unet(latents, timesteps, encoder_hidden_states=cond.prompt,
                         timestep_cond=timestep_cond,
                         down_intrablock_additional_residuals=residuals, return_dict=False)[0]

    def _set_biases(self, biases: dict[str, Tensor] | None) -> None:
        layers = unet_bias_layers(self.unet, self.appearance_encoder.block_idx)
        for k, attn in layers.items():
            proc = self._bias_processors[f"block_{k}_cross_attn_q"]
            if attn.processor is not proc:  # someone reset the UNet's processors
                attn.set_processor(proc)
            proc.bias = None if biases is None else biases[proc.key]

    def forward(self, latents: Tensor, timesteps: Tensor | int, source: Tensor,
                pose_map: Tensor) -> Tensor:
        """ε_θ(z_t, t, x_s, x_tp) in one call (conditions recomputed: prefer encode + predict)."""
        return self.predict_noise(latents, timesteps, self.encode(source, pose_map))

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *,
                        subfolder: str | None = None, torch_dtype: torch.dtype | None = None,
                        device: str | torch.device | None = None, **_: Any) -> CFLDModel:
        """Load a folder written by ``save_pretrained`` / ``cfld convert`` (or a hub id), STRICTLY.

        Unlike diffusers' loader, a key missing from or unexpected in the weights is an error,
        never a silently random-initialised layer.  The model is built on the meta device and
        the weights are assigned, so nothing is initialised twice.
        """
        from cfld.shipped import shipped_name

        if shipped_name(pretrained_model_name_or_path) and torch_dtype is None:
            torch_dtype = torch.float32  # stored in float16 to keep the package small
        folder = _resolve_folder(pretrained_model_name_or_path, subfolder)
        if (subfolder is None and not (folder / cls.config_name).is_file()
                and (folder / "model_index.json").is_file() and (folder / "model").is_dir()):
            folder = folder / "model"  # a pipeline folder: its model component
        config_path = folder / cls.config_name
        weights = folder / WEIGHTS_NAME
        for path in (config_path, weights):
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path.name} not found in {folder}; expected a model folder written by "
                    "`cfld convert` or `save_pretrained` (config.json + "
                    f"{WEIGHTS_NAME})")
        config = check_config_file(config_path, "model config", cls.__name__)
        with torch.device("meta"):
            model = build_from_config(cls, config, config_path)
        state = load_safetensors(weights, "model weights")
        if torch_dtype is not None:  # cast the tensors, not the module: no double copy
            state = {k: v.to(torch_dtype) if v.is_floating_point() else v
                     for k, v in state.items()}
        load_state_strict(model, state, assign=True,
                          hint=f"config.json and the weights in {folder} disagree")
        model.source_encoder.reset_buffers()  # non-persistent buffers are recomputed, not stored
        apply_trainable_set(model.unet, model.config.unet_trainable,
                            model.appearance_encoder.block_idx)
        for param in (p for n, p in model.named_parameters() if not n.startswith("unet.")):
            param.requires_grad_(True)
        if device is not None:
            model.to(device=device)
        return model.eval()

    # ------------------------------------------------------------------ training helpers
    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters with ``requires_grad`` (the optimiser's single group, fidelity §6.3)."""
        return [p for p in self.parameters() if p.requires_grad]

    def parameter_table(self) -> dict[str, int]:
        """Parameter counts per component (paper Table 1); works on the meta device."""
        def count(module: nn.Module, trainable: bool = False) -> int:
            return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)

        table = {
            "source_encoder": count(self.source_encoder),
            "appearance_encoder": count(self.appearance_encoder),
            "decoder": count(self.decoder),
            "pose_adapter": count(self.pose_adapter),
            "uncond_prompt": self.uncond_prompt.numel(),
            "unet_total": count(self.unet),
            "unet_trainable": count(self.unet, trainable=True),
        }
        table["trainable_total"] = sum(p.numel() for p in self.trainable_parameters())
        return table


def _resolve_folder(name_or_path: str | os.PathLike, subfolder: str | None) -> Path:
    """A local folder as is; else a hub id fetched with huggingface_hub (cache/offline aware)."""
    from cfld.shipped import SHIPPED_MODELS, shipped_name

    if shipped_name(name_or_path):
        name_or_path = SHIPPED_MODELS[os.fspath(name_or_path)]
    path = Path(name_or_path)
    if not path.exists():
        if os.fspath(name_or_path).count("/") != 1:
            raise FileNotFoundError(f"model folder not found: {path}")
        from huggingface_hub import snapshot_download

        from cfld.models.unet import check_hub_id

        check_hub_id(os.fspath(name_or_path), "model")  # offline: at once, with the fix

        try:
            path = Path(snapshot_download(os.fspath(name_or_path)))
        except Exception as err:  # noqa: BLE001 - network/cache errors become one clear message
            raise FileNotFoundError(
                f"{name_or_path!r} is neither a local folder nor a hub model available offline "
                f"({type(err).__name__}); download it once or give a local path") from err
    if subfolder:
        path = path / subfolder
    if not path.is_dir():
        raise FileNotFoundError(f"model folder not found: {path}")
    return path


__all__ = ["CFLDConditions", "CFLDModel", "DEFAULT_BLOCK_IDX"]
