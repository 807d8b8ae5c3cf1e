"""What mamp_hub registers with transformers, in one table: the Auto classes and the pipeline tasks.

`import mamp_hub` calls `register()`; `mamp_hub.tools.remote_code.save_with_code` writes the same Auto table into a
checkpoint as its `auto_map`, so that a checkpoint loads the same way with or without `mamp_hub` installed.
"""

from __future__ import annotations

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForPreTraining,
    AutoModelForVideoClassification,
)
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_mamp import MampConfig
from .modeling_mamp import MampForMaskedMotionPrediction, MampForSkeletonClassification, MampModel
from .pipelines import SkeletonActionRecognitionPipeline, SkeletonFeatureExtractionPipeline
from .processing_mamp import MampSkeletonProcessor

# Every MAMP checkpoint maps all of them: any checkpoint loads as features (`AutoModel`), and a pre-trained encoder
# starts a classifier (`AutoModelForVideoClassification` with `num_labels=`). A skeleton sequence is a video of joints:
# video classification is the closest Auto task.
AUTO_CLASSES: dict[type, type] = {
    AutoConfig: MampConfig,
    AutoModel: MampModel,
    AutoModelForPreTraining: MampForMaskedMotionPrediction,
    AutoModelForVideoClassification: MampForSkeletonClassification,
    AutoFeatureExtractor: MampSkeletonProcessor,
}

# `pipeline(task, model=...)`: the pipeline class and the Auto class that loads its model.
PIPELINE_TASKS: dict[str, tuple[type, type]] = {
    "skeleton-action-recognition": (SkeletonActionRecognitionPipeline, AutoModelForVideoClassification),
    "skeleton-feature-extraction": (SkeletonFeatureExtractionPipeline, AutoModel),
}


def register() -> None:
    """Register the Auto classes and pipeline tasks (idempotent)."""
    for auto_class, cls in AUTO_CLASSES.items():
        if auto_class is AutoConfig:
            AutoConfig.register(MampConfig.model_type, MampConfig, exist_ok=True)
        else:
            auto_class.register(MampConfig, cls, exist_ok=True)
    for task, (pipeline_class, auto_model) in PIPELINE_TASKS.items():
        PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=pipeline_class, pt_model=auto_model, type="multimodal")


def auto_map() -> dict[str, str]:
    """`AUTO_CLASSES` as a checkpoint's `auto_map` spells it: Auto class name -> `"module.Class"` of the code files
    that `save_with_code` writes (the three flat modules keep their names)."""
    return {auto.__name__: f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}" for auto, cls in AUTO_CLASSES.items()}
