"""Which checkpoint a run resumes from: one its own recipe wrote, whose save finished.

Trainer's `checkpoint-N/` folders hold the weights, optimizer, scheduler, RNG and trainer state. `SkeletonTrainer`
adds `checkpoint-N/mamp_run.json` (a `RunRecord`) after all of them, under a temporary name renamed into place, so:

- a checkpoint without a readable record did not finish saving (the process died during the save) and is skipped;
- the record's fingerprint, a hash of the resolved recipe without the settings in `NOT_FINGERPRINTED`, tells
  whether the checkpoint belongs to this recipe: `trainer.resume_from_checkpoint=true` refuses a folder whose
  newest complete checkpoint another recipe wrote (its weights would be trained on, or saved as this run's
  result); a checkpoint named by its path is resumed with a warning that lists what differs;
- the record carries the run's loss sum and training time so far, so that the metrics of a resumed run cover the
  whole run, not only the part after the resume.

`EpochSnapshots` keeps the model of chosen epochs as `output_dir/epoch-N/` (a `save_pretrained` folder that
checkpoint rotation does not touch): the authors' PKU-MMD probes and transfer start from the pre-training's
`checkpoint-300.pth`, which their `main_pretrain.py` wrote after epoch index 300, i.e. after 301 of 400 epochs.
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from mamp_hub.trainer import TrainingDivergedError, non_finite_tensors

logger = logging.getLogger(__name__)

RECORD_NAME = "mamp_run.json"

# Settings that a resumed run may change: where the run writes and how it reports, logs, loads data and saves
# checkpoints, not what it trains (the kNN monitor and the card only read the model).
NOT_FINGERPRINTED = (
    "trainer.output_dir",
    "trainer.resume_from_checkpoint",
    "trainer.logging_*",
    "trainer.report_to",
    "trainer.run_name",
    "trainer.disable_tqdm",
    "trainer.dataloader_num_workers",
    "trainer.dataloader_persistent_workers",
    "trainer.dataloader_pin_memory",
    "trainer.dataloader_prefetch_factor",
    "trainer.save_*",
    "trainer.push_to_hub",
    "trainer.hub_*",
    "knn_monitor",
    "card",
    "snapshot_epochs",
)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclasses.dataclass
class RunRecord:
    """What a checkpoint records about the run that wrote it.

    Attributes:
        fingerprint: hash of `recipe`.
        recipe: the resolved recipe without the settings in `NOT_FINGERPRINTED`.
        global_step: optimizer steps done when the checkpoint was written.
        loss_sum: sum of the training losses of those steps (mean over processes), so the run's mean training
            loss is `loss_sum / global_step` however often it was resumed.
        runtime_s: training time of the run up to the checkpoint, over all its resumes.
    """

    fingerprint: str
    recipe: dict[str, Any]
    global_step: int = 0
    loss_sum: float = 0.0
    runtime_s: float = 0.0

    @classmethod
    def for_recipe(cls, config: Mapping[str, Any]) -> RunRecord:
        """A record of nothing trained yet for recipe `config`."""
        recipe = fingerprinted_recipe(config)
        canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"), default=str)
        return cls(fingerprint=hashlib.sha256(canonical.encode()).hexdigest()[:16], recipe=recipe)

    def save(self, checkpoint: str | Path) -> None:
        """Write `checkpoint/mamp_run.json`; a crash while writing leaves no record rather than half of one."""
        path = Path(checkpoint) / RECORD_NAME
        partial = path.with_name(f".{RECORD_NAME}.partial")
        partial.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(partial, path)

    @classmethod
    def load(cls, checkpoint: str | Path) -> RunRecord | None:
        """The record of `checkpoint`, or None if it has none (its save did not finish)."""
        try:
            return cls(**json.loads((Path(checkpoint) / RECORD_NAME).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None


def fingerprinted_recipe(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` without the settings a resumed run may change (`NOT_FINGERPRINTED`)."""
    recipe = copy.deepcopy(dict(config))
    for section, values in list(recipe.items()):
        if _not_fingerprinted(section):
            del recipe[section]
        elif isinstance(values, dict):
            recipe[section] = {
                key: value for key, value in values.items() if not _not_fingerprinted(f"{section}.{key}")
            }
    return recipe


def checkpoint_to_resume(
    output_dir: str | Path, resume_from_checkpoint: bool | str | None, record: RunRecord
) -> tuple[str | None, RunRecord | None]:
    """The checkpoint a run of `record`'s recipe resumes from, and that checkpoint's record; (None, None) to start.

    Args:
        output_dir: the run's `trainer.output_dir`.
        resume_from_checkpoint: `trainer.resume_from_checkpoint`: `true` for the newest complete checkpoint of
            `output_dir` (it must have been written by the same recipe), a checkpoint folder, or null / `false`.
        record: the record of this run (`RunRecord.for_recipe`).
    """
    if not resume_from_checkpoint:
        return None, None
    if resume_from_checkpoint is True:
        return _newest_complete_checkpoint(Path(output_dir), record)
    checkpoint = Path(resume_from_checkpoint)
    found = RunRecord.load(checkpoint)
    if found is None:
        raise ValueError(
            f"trainer.resume_from_checkpoint={str(checkpoint)!r} is not a complete checkpoint (no readable "
            f"{RECORD_NAME}: its save did not finish, or it does not exist); pass another checkpoint-N folder or true."
        )
    if found.fingerprint != record.fingerprint:
        logger.warning(
            "Resuming from %s, written by a different recipe (%s), as trainer.resume_from_checkpoint names it.",
            checkpoint,
            recipe_differences(found.recipe, record.recipe),
        )
    return str(checkpoint), found


def recipe_differences(checkpoint_recipe: Mapping[str, Any], recipe: Mapping[str, Any], limit: int = 5) -> str:
    """The settings that differ, as `key: value in the checkpoint -> value now`, at most `limit` of them."""
    old, new = _flatten(checkpoint_recipe), _flatten(recipe)
    keys = sorted(key for key in old.keys() | new.keys() if old.get(key, "unset") != new.get(key, "unset"))
    shown = [f"{key}: {old.get(key, 'unset')!r} -> {new.get(key, 'unset')!r}" for key in keys[:limit]]
    return "; ".join(shown) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _newest_complete_checkpoint(output_dir: Path, record: RunRecord) -> tuple[str, RunRecord]:
    checkpoints = sorted(
        (int(match[1]), path)
        for path in (output_dir.iterdir() if output_dir.is_dir() else ())
        if path.is_dir() and (match := _CHECKPOINT.match(path.name))
    )
    for _, checkpoint in reversed(checkpoints):
        found = RunRecord.load(checkpoint)
        if found is None:
            logger.warning(
                "Skipping %s: it has no readable %s, so its save did not finish; resuming from an older checkpoint.",
                checkpoint,
                RECORD_NAME,
            )
            continue
        if found.fingerprint != record.fingerprint:
            raise ValueError(
                f"The newest complete checkpoint of {output_dir}, {checkpoint.name}, was written by another recipe "
                f"({recipe_differences(found.recipe, record.recipe)}); write this run to a new trainer.output_dir, "
                "or name the checkpoint to continue from anyway with trainer.resume_from_checkpoint=<its path>."
            )
        return str(checkpoint), found
    contents = f"holds {len(checkpoints)} checkpoint-N folders, none complete" if checkpoints else "holds no checkpoint"
    raise ValueError(
        f"trainer.resume_from_checkpoint=true, but {output_dir} {contents}; run without "
        "trainer.resume_from_checkpoint to start over."
    )


def _not_fingerprinted(key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in NOT_FINGERPRINTED)


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def snapshot_folder(output_dir: str | Path, epoch: int) -> Path:
    """Where `EpochSnapshots` keeps the model after `epoch` epochs (counted from 1)."""
    return Path(output_dir) / f"epoch-{epoch}"


class EpochSnapshots(TrainerCallback):
    """Saves the model and processor as `snapshot_folder(output_dir, N)` when epoch N of `epochs` ends.

    A snapshot is a plain `save_pretrained` folder (config, weights, processor), loadable as `init_from`; it is
    not named `checkpoint-*`, so `save_total_limit` never deletes it. Weights that are not finite are refused, as
    for every save of a recipe.
    """

    def __init__(self, epochs: list[int]):
        self.epochs = {float(epoch) for epoch in epochs}

    def on_epoch_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        # Trainer's `state.epoch` is a whole number only at the end of a complete epoch (not of an interrupted one).
        if state.epoch not in self.epochs:
            return
        non_finite = non_finite_tensors(model)
        if non_finite:
            raise TrainingDivergedError(
                state.global_step, f"the weights {', '.join(non_finite)} are not finite", args.learning_rate
            )
        if state.is_world_process_zero:
            folder = snapshot_folder(args.output_dir, round(state.epoch))
            model.save_pretrained(folder)
            if processing_class is not None:
                processing_class.save_pretrained(folder)
            logger.info("Saved the model after epoch %d to %s.", round(state.epoch), folder)
