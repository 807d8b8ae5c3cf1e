"""mamp-hub: MAMP (Masked Motion Predictors, ICCV 2023) for skeleton action recognition in the transformers API."""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForPreTraining,
    AutoModelForVideoClassification,
)
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_mamp import MampConfig, MampConfigError
from .modeling_mamp import (
    MampForMaskedMotionPrediction,
    MampForSkeletonClassification,
    MampModel,
    MampPreTrainedModel,
)
from .pipelines import SkeletonActionRecognitionPipeline, SkeletonFeatureExtractionPipeline
from .processing_mamp import MampSkeletonProcessor

__version__ = "0.1.0"

AutoConfig.register(MampConfig.model_type, MampConfig, exist_ok=True)
AutoModel.register(MampConfig, MampModel, exist_ok=True)
AutoModelForPreTraining.register(MampConfig, MampForMaskedMotionPrediction, exist_ok=True)
# A skeleton sequence is a video of joints: the video-classification Auto class is the closest task.
AutoModelForVideoClassification.register(MampConfig, MampForSkeletonClassification, exist_ok=True)
AutoFeatureExtractor.register(MampConfig, MampSkeletonProcessor, exist_ok=True)
# `pipeline("skeleton-action-recognition", model=...)` and `pipeline("skeleton-feature-extraction", model=...)`.
PIPELINE_REGISTRY.register_pipeline(
    "skeleton-action-recognition",
    pipeline_class=SkeletonActionRecognitionPipeline,
    pt_model=AutoModelForVideoClassification,
    type="multimodal",
)
PIPELINE_REGISTRY.register_pipeline(
    "skeleton-feature-extraction",
    pipeline_class=SkeletonFeatureExtractionPipeline,
    pt_model=AutoModel,
    type="multimodal",
)

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
]
