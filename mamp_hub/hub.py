"""Save or push a MAMP checkpoint together with the code that defines it, for environments without `mamp_hub`.

A folder written by `save_with_code` holds, next to the usual `config.json`, `model.safetensors` and
`preprocessor_config.json`, a copy of `configuration_mamp.py`, `modeling_mamp.py` and `processing_mamp.py`, and an
`auto_map` in both JSON files that names the classes in them. `transformers` then loads it without this package:

    AutoModel.from_pretrained(repo_id, trust_remote_code=True)                        # features
    AutoModelForVideoClassification.from_pretrained(repo_id, trust_remote_code=True)  # classification
    AutoFeatureExtractor.from_pretrained(repo_id, trust_remote_code=True)             # the processor

`trust_remote_code=True` runs the repository's Python files on the loading machine: see docs/remote_code.md for
what that trusts and for the safer default (install `mamp-hub`, which needs no remote code at all).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from huggingface_hub import CommitInfo, HfApi
from transformers.dynamic_module_utils import custom_object_save

from .configuration_mamp import MampConfig
from .modeling_mamp import MampForMaskedMotionPrediction, MampForSkeletonClassification, MampModel, MampPreTrainedModel
from .processing_mamp import MampSkeletonProcessor

# The Auto classes `mamp_hub/__init__.py` registers, as `auto_map` spells them ("module.Class"). Every checkpoint
# maps all of them, as the registration does: any MAMP checkpoint loads as features (`AutoModel`), and a pre-trained
# encoder starts a classifier (`AutoModelForVideoClassification` with `num_labels=`).
_AUTO_CLASSES = {
    "AutoConfig": MampConfig,
    "AutoModel": MampModel,
    "AutoModelForPreTraining": MampForMaskedMotionPrediction,
    "AutoModelForVideoClassification": MampForSkeletonClassification,
    "AutoFeatureExtractor": MampSkeletonProcessor,
}
AUTO_MAP = {auto: f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}" for auto, cls in _AUTO_CLASSES.items()}


def save_with_code(
    model: MampPreTrainedModel, processor: MampSkeletonProcessor, save_directory: str | Path
) -> list[Path]:
    """Write `model` and `processor` with `save_pretrained`, plus the code and `auto_map` that load them remotely.

    Returns the code files copied: the configuration, modeling and processing modules and the flat sibling modules
    they import relatively (today the skeleton layouts and tables).
    """
    if not isinstance(model, MampPreTrainedModel):
        raise TypeError(
            f"save_with_code saves MAMP models, not {type(model).__name__}; pass a MampModel, "
            "MampForMaskedMotionPrediction or MampForSkeletonClassification."
        )
    folder = Path(save_directory)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    # `register_for_auto_class` would write one Auto class per saved class, and set it on the class for the rest of
    # the process (every later `save_pretrained` would copy code too); the full map is written into the JSON files
    # instead, and `custom_object_save` (what `save_pretrained` calls for registered classes) copies the modules of
    # the classes the map names, with their relative imports.
    copied = {Path(path) for cls in _AUTO_CLASSES.values() for path in custom_object_save(cls, folder)}
    _add_auto_map(folder / "config.json", AUTO_MAP)
    _add_auto_map(folder / "preprocessor_config.json", {"AutoFeatureExtractor": AUTO_MAP["AutoFeatureExtractor"]})
    return sorted(copied)


def push_with_code(
    model: MampPreTrainedModel,
    processor: MampSkeletonProcessor,
    repo_id: str,
    *,
    commit_message: str = "Upload MAMP model, processor and their code",
    private: bool | None = None,
    token: str | None = None,
) -> CommitInfo:
    """`save_with_code` into a temporary folder, then upload it to `repo_id` (created if needed) in one commit."""
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as folder:
        save_with_code(model, processor, folder)
        api.create_repo(repo_id, private=private, exist_ok=True)
        return api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message)


def _add_auto_map(path: Path, auto_map: dict[str, str]) -> None:
    # Written as `transformers` writes these files (2-space indent, sorted keys), so that a diff shows only the map.
    content = json.loads(path.read_text(encoding="utf-8"))
    content["auto_map"] = auto_map
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
