"""Sampling pipelines: :class:`CFLDPipeline` and guidance definitions."""

# diffusers only loads pipeline components from modules already imported (it refuses to import
# a module named in model_index.json): make ours importable for CFLDPipeline.from_pretrained.
import cfld.models.cfld  # noqa: F401
import cfld.models.pixel_autoencoder  # noqa: F401
from cfld.pipelines.guidance import GUIDANCE_TYPES, GuidanceScales, get_guidance
from cfld.pipelines.pipeline_cfld import CFLDPipeline, CFLDPipelineOutput, official_scheduler

__all__ = ["GUIDANCE_TYPES", "CFLDPipeline", "CFLDPipelineOutput", "GuidanceScales",
           "get_guidance", "official_scheduler"]
