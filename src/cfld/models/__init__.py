"""The CFLD network, one component per file (paper Fig. 2)."""

from cfld.models.cfld import CFLDConditions, CFLDModel
from cfld.models.hybrid_attention import HybridGranularityAttention, QueryBiasAttnProcessor
from cfld.models.perception_decoder import PerceptionRefinedDecoder
from cfld.models.pose_adapter import PoseAdapter
from cfld.models.source_encoder import SourceEncoder

__all__ = [
    "CFLDConditions",
    "CFLDModel",
    "HybridGranularityAttention",
    "PerceptionRefinedDecoder",
    "PoseAdapter",
    "QueryBiasAttnProcessor",
    "SourceEncoder",
]
