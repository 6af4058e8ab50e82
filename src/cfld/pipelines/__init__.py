"""Sampling pipelines: :class:`CFLDPipeline` and guidance definitions."""

from cfld.pipelines.guidance import GUIDANCE_TYPES, GuidanceScales, get_guidance
from cfld.pipelines.pipeline_cfld import CFLDPipeline, CFLDPipelineOutput, official_scheduler

__all__ = ["GUIDANCE_TYPES", "CFLDPipeline", "CFLDPipelineOutput", "GuidanceScales",
           "get_guidance", "official_scheduler"]
