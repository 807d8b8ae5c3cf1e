"""mamp-hub: MAMP (Masked Motion Predictors, ICCV 2023) for skeleton action recognition in the transformers API.

The map of the package (which module holds what, and who uses it) is in docs/layout.md.
"""

from .configuration_mamp import MampConfig, MampConfigError
from .modeling_mamp import (
    MampForMaskedMotionPrediction,
    MampForSkeletonClassification,
    MampModel,
    MampPreTrainedModel,
)
from .pipelines import SkeletonActionRecognitionPipeline, SkeletonFeatureExtractionPipeline
from .processing_mamp import MampSkeletonProcessor
from .recognition import StreamingActionRecognizer
from .registration import register

__version__ = "0.1.0"

register()

__all__ = [
    "MampConfig",
    "MampConfigError",
    "MampForMaskedMotionPrediction",
    "MampForSkeletonClassification",
    "MampModel",
    "MampPreTrainedModel",
    "MampSkeletonProcessor",
    "SkeletonActionRecognitionPipeline",
    "SkeletonFeatureExtractionPipeline",
    "StreamingActionRecognizer",
]
