"""Pose adapter H_P (paper §3.1, Fig. 2a; fidelity §2.4).

A light T2I-Adapter-style network: the 21-channel target-pose map is pixel-unshuffled to the
latent resolution, then three ResNet levels produce one feature map per UNet down block 0–2.
The UNet adds map i after the last (ResNet, attention) pair of down block i — passed as
diffusers' ``down_intrablock_additional_residuals``.
"""

from __future__ import annotations

from collections.abc import Sequence

from diffusers.models.resnet import ResnetBlock2D
from torch import Tensor, nn


class PoseAdapter(nn.Module):
    """H_P: pose map (B, P, H, W) → [F1, F2, F3] at the UNet's down-block resolutions.

    Args:
        pose_channels: Channels of the pose map (21: skeleton RGB + 18 heatmaps).
        downscale_factor: Pixel-unshuffle factor (4: a 256² pose map → 64² = the latent size).
        in_channels: Width after the 1×1 input conv.
        channels: Output width of each level (= the UNet's down-block widths).
    """

    def __init__(
        self,
        pose_channels: int = 21,
        downscale_factor: int = 4,
        in_channels: int = 320,
        channels: Sequence[int] = (320, 640, 1280),
    ) -> None:
        super().__init__()
        self.pose_channels = pose_channels
        self.downscale_factor = downscale_factor
        self.unshuffle = nn.PixelUnshuffle(downscale_factor)
        self.conv_in = nn.Conv2d(pose_channels * downscale_factor**2, in_channels, 1)
        widths = [in_channels, *channels]
        self.resnets = nn.ModuleList(
            ResnetBlock2D(in_channels=widths[i], out_channels=widths[i + 1], temb_channels=None,
                          eps=1e-6)
            for i in range(len(channels))
        )
        self.downsample = nn.AvgPool2d(2, 2)

    @property
    def channels(self) -> list[int]:
        """Output width of each level."""
        return [r.out_channels for r in self.resnets]

    def forward(self, pose_map: Tensor) -> list[Tensor]:
        """Return one residual per level, highest resolution first (no time conditioning)."""
        if pose_map.ndim != 4 or pose_map.shape[1] != self.pose_channels:
            raise ValueError(
                f"pose map must have shape (B, {self.pose_channels}, H, W), got "
                f"{tuple(pose_map.shape)}; render it with cfld.pose.render_pose_map"
            )
        f = self.downscale_factor
        if pose_map.shape[-2] % f or pose_map.shape[-1] % f:
            raise ValueError(f"pose map size {tuple(pose_map.shape[-2:])} is not divisible by the "
                             f"adapter's downscale factor {f}")
        x = self.conv_in(self.unshuffle(pose_map))  # (B, P·f², H/f, W/f) → (B, in, H/f, W/f)
        features = []
        for i, resnet in enumerate(self.resnets):
            if i > 0:
                x = self.downsample(x)
            x = resnet(x, None)
            features.append(x)
        return features
