"""One run of a recipe on `transformers.Trainer`: build data, model, optimizer and schedule from the config, train,
evaluate, and write a `save_pretrained` folder with the processor, the measured metrics and a model card.

The same code runs on one CPU, one GPU, or many GPUs and nodes under `torchrun` / `accelerate launch`:
Trainer (through accelerate) sets up distributed training from the launcher's environment, and the config's
`schedule.global_batch_size` is split over the processes, so a recipe means the same optimisation everywhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from huggingface_hub import HfApi
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from torch import nn
from torch.utils.data import Dataset, Sampler
from transformers import PreTrainedModel, Trainer, TrainerCallback, TrainingArguments, set_seed

from mamp_hub import MampConfig, MampForMaskedMotionPrediction, MampForSkeletonClassification
from mamp_hub.data import SkeletonDataCollator
from mamp_hub.metrics import compute_metrics, logits_only
from mamp_hub.processing_mamp import MampSkeletonProcessor
from mamp_hub.tools.cli import console_script
from mamp_hub.trainer import SkeletonTrainer, non_finite_tensors

from .checkpoints import EpochSnapshots, RunRecord, checkpoint_to_resume
from .config import load_config
from .data import build_datasets, build_processor, training_collator
from .knn import KnnMonitorCallback
from .model_card import write_model_card
from .optimization import optimizer_class_and_kwargs, schedule_arguments
from .sampling import PerProcessSubsetSampler, ProcessSubsets

logger = logging.getLogger(__name__)

COMMAND = "python -m training"


class RecipeTrainer(SkeletonTrainer):
    """`SkeletonTrainer` that records the recipe with every checkpoint and keeps the totals of the whole run.

    `run_record` is the `RunRecord` of the recipe, with the totals of the checkpoint it resumes from: every checkpoint
    gets its record (see `training/checkpoints.py`) and `run_totals()` covers the whole run. A training set of
    per-process subsets (`ProcessSubsets`, `data.subset_processes` > 1) is sampled as the authors' processes
    sampled theirs (`training/sampling.py`).
    """

    batch_size_option = "schedule.global_batch_size"
    drop_last_option = "trainer.dataloader_drop_last"

    def __init__(self, *args: Any, run_record: RunRecord, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.run_record = run_record
        # This process's step losses, and the clock, of the current `train()` call (see `run_totals`).
        self._loss_sum, self._started = 0.0, time.perf_counter()

    def train(self, *args, **kwargs):
        self._loss_sum, self._started = 0.0, time.perf_counter()
        return super().train(*args, **kwargs)

    def on_step_loss(self, value: float) -> None:
        self._loss_sum += value

    def _get_train_sampler(self, train_dataset: Dataset | None = None) -> Sampler | None:
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if not isinstance(dataset, ProcessSubsets):
            return super()._get_train_sampler(train_dataset)
        args = self.args
        global_batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        # The same order on every process (accelerate deals its batches out): `data_seed`, not a per-process seed.
        seed = args.data_seed if args.data_seed is not None else args.seed
        return PerProcessSubsetSampler(
            dataset.process_positions, batch_size=global_batch // len(dataset.process_positions), seed=seed
        )

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        # Here rather than in a callback's `on_save` (called right after this): the record needs `run_totals`.
        super()._save_checkpoint(model, trial)
        loss_sum, runtime_s = self.run_totals()
        if self.args.should_save:
            # Written last: a checkpoint whose save did not finish has no record, and resuming skips it.
            checkpoint = Path(self._get_output_dir(trial)) / f"checkpoint-{self.state.global_step}"
            record = dataclasses.replace(
                self.run_record, global_step=self.state.global_step, loss_sum=loss_sum, runtime_s=runtime_s
            )
            record.save(checkpoint)

    def run_totals(self) -> tuple[float, float]:
        """(sum of the step losses, training seconds) of the whole run so far, resumed parts included.

        The loss sum is averaged over the processes, so every process must call this.
        """
        local = torch.tensor(self._loss_sum, dtype=torch.float64, device=self.args.device)
        loss_sum = self.accelerator.reduce(local, reduction="mean").item()
        runtime_s = time.perf_counter() - self._started
        return loss_sum + self.run_record.loss_sum, runtime_s + self.run_record.runtime_s


def parse_command_line(argv: Sequence[str] | None = None) -> tuple[dict[str, Any], str]:
    """`CONFIG [section.key=value ...]` -> (config, the command line to record in the model card)."""
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description="Run a MAMP recipe (pre-training, linear probe or fine-tuning, as its `protocol` says) with "
        "transformers.Trainer.",
    )
    parser.add_argument("config", help="recipe file, e.g. training/configs/ntu60_xsub/pretrain_mamp.yaml")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="section.key=value",
        help="changes to the recipe, e.g. schedule.epochs=10 trainer.output_dir=runs/x trainer.bf16=true",
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    return load_config(args.config, args.overrides), shlex.join([*COMMAND.split(), *argv])


def build_model(config: dict[str, Any], id2label: dict[int, str] | None) -> PreTrainedModel:
    """The model a protocol trains: a fresh pre-training model, or a classifier (from `init_from` if given).

    The `model` section holds `MampConfig` fields, which override those of `init_from`'s config; the merged config
    is validated as a whole (`MampConfig` names a bad or unknown field).
    """
    options = dict(config.get("model", {}))
    if config["protocol"] == "pretrain":
        return MampForMaskedMotionPrediction(MampConfig(**options))
    options.update(num_labels=len(id2label), id2label=id2label, label2id={v: k for k, v in id2label.items()})
    init_from = config.get("init_from")
    if not init_from:
        model = MampForSkeletonClassification(MampConfig(**options))
    else:
        init_from = checked_init_from(init_from)
        saved, _ = MampConfig.get_config_dict(init_from)
        merged = MampConfig.from_dict({**saved, **options})
        # A new head on the encoder is what a linear probe or fine-tuning from a pre-trained folder means to do.
        model = MampForSkeletonClassification.from_pretrained(init_from, config=merged, expect_new_head=True)
        non_finite = non_finite_tensors(model)
        if non_finite:
            raise ValueError(
                f"init_from={init_from!r} holds weights that are not finite ({', '.join(non_finite)}): the run that "
                "wrote them diverged; pass another init_from, or re-run that training with a lower learning rate."
            )
    if config["protocol"] == "linear_probe":
        model.freeze_encoder()
    return model


def checked_init_from(init_from: str) -> str:
    """`init_from` if it is a `save_pretrained` folder or a Hub id; a ValueError says what it is not."""
    path = Path(init_from)
    if path.exists():
        if not (path / "config.json").is_file():
            raise ValueError(
                f"init_from={init_from!r} has no config.json, so it is not a save_pretrained folder; pass the folder a "
                "training/ run or mamp-convert wrote (it holds config.json and model.safetensors)."
            )
        return init_from
    try:
        validate_repo_id(init_from)
    except HFValidationError:
        raise ValueError(
            f"init_from={init_from!r} is neither a folder here nor a Hub id; run the training that writes it first, "
            "or pass an existing folder or a Hub id <org>/<name>."
        ) from None
    return init_from


def training_arguments(config: dict[str, Any], world_size: int, rank: int = 0) -> TrainingArguments:
    """`TrainingArguments` from the `trainer` section, with the schedule, batch size and seed the recipe fixes.

    With `seed_per_process`, process `rank` seeds with `seed + rank` (initialisation, which DDP overwrites with rank
    0's, augmentation, dropout, masking), as the authors' runs did, and the data order with `seed` on every process.
    """
    options = dict(config.get("trainer", {}))
    options.pop("resume_from_checkpoint", None)  # an argument of `train()`, see `run`
    schedule = config["schedule"]
    accumulation = int(options.get("gradient_accumulation_steps", 1))
    global_batch = int(schedule["global_batch_size"])
    if global_batch % (world_size * accumulation):
        raise ValueError(
            f"schedule.global_batch_size={global_batch} is not divisible by {world_size} processes x "
            f"{accumulation} accumulation steps; change trainer.gradient_accumulation_steps or the process count."
        )
    subset_processes = int(config.get("data", {}).get("subset_processes", 1))
    if global_batch % subset_processes:
        raise ValueError(
            f"schedule.global_batch_size={global_batch} is not divisible by data.subset_processes={subset_processes}: "
            "each simulated process needs a batch of the same size."
        )
    seed = int(config.get("seed", 0))
    if config.get("seed_per_process"):
        options.setdefault("data_seed", seed)
        seed += rank
    options.setdefault("per_device_eval_batch_size", global_batch // (world_size * accumulation))
    # `SkeletonDataCollator` builds the model inputs itself and reads the items' `valid_frames`, which Trainer's
    # column removal would strip (the processor would then count every sequence's frames again in every epoch).
    options.setdefault("remove_unused_columns", False)
    options.update(
        schedule_arguments(schedule),
        per_device_train_batch_size=global_batch // (world_size * accumulation),
        seed=seed,
    )
    try:
        return TrainingArguments(**options)
    except TypeError as error:
        raise ValueError(f"Bad option in the trainer section ({error}); it takes TrainingArguments fields.") from error


def check_batch_norm_groups(model_config: MampConfig, per_device_batch: int) -> None:
    """Refuse a grouped BatchNorm whose groups do not tile each process's training batch (see `MampConfig`)."""
    group = model_config.classifier_batch_norm_group_size
    if group is not None and per_device_batch % group:
        raise ValueError(
            f"model.classifier_batch_norm_group_size={group} does not divide the per-process training batch of "
            f"{per_device_batch}; use fewer processes or gradient accumulation steps, or set the group size to a "
            "divisor of it (null: the whole batch)."
        )


def run(config: dict[str, Any], command: str = "", callbacks: Sequence[TrainerCallback] = ()) -> dict[str, float]:
    """Train, evaluate and save one recipe; returns the measured metrics (also in `output_dir/metrics.json`).

    `callbacks` are added to the Trainer's (e.g. to watch or stop a run from Python).
    """
    protocol = config["protocol"]
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    args = training_arguments(config, world_size, rank=int(os.environ.get("RANK", "0")))
    set_seed(args.seed)
    train_dataset, eval_dataset, id2label = build_datasets(config["data"])
    model = build_model(config, id2label)
    check_batch_norm_groups(model.config, args.per_device_train_batch_size)
    processor = build_processor(config["data"], model.config)

    callbacks = [*callbacks, *recipe_callbacks(config, train_dataset, eval_dataset, processor, len(id2label), args)]
    classifying = protocol != "pretrain"
    record = RunRecord.for_recipe(config)
    checkpoint, resumed = checkpoint_to_resume(
        args.output_dir, config.get("trainer", {}).get("resume_from_checkpoint"), record
    )
    if resumed is not None:  # the run's totals so far, for the metrics of the whole run
        record = dataclasses.replace(
            record, global_step=resumed.global_step, loss_sum=resumed.loss_sum, runtime_s=resumed.runtime_s
        )
    trainer = RecipeTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset if classifying else None,
        data_collator=training_collator(config["data"], processor, classifying, args.device.type),
        eval_data_collator=SkeletonDataCollator(processor, training=False, return_labels=classifying),
        processing_class=processor,
        compute_metrics=compute_metrics if classifying else None,
        preprocess_logits_for_metrics=logits_only if classifying else None,
        optimizer_cls_and_kwargs=optimizer_class_and_kwargs(
            model, config["optimizer"], args.learning_rate, args.device.type
        ),
        callbacks=callbacks,
        run_record=record,
    )
    trainer.train(resume_from_checkpoint=checkpoint)

    metrics = measured_metrics(trainer, len(train_dataset), len(eval_dataset))
    save_and_publish(trainer, config, metrics, command, world_size)
    return metrics


def recipe_callbacks(
    config: dict[str, Any],
    train_dataset: Dataset,
    eval_dataset: Dataset,
    processor: MampSkeletonProcessor,
    num_classes: int,
    args: TrainingArguments,
) -> list[TrainerCallback]:
    """The callbacks the recipe asks for: epoch snapshots, and the kNN monitor of a pre-training."""
    callbacks: list[TrainerCallback] = []
    if config.get("snapshot_epochs"):
        callbacks.append(EpochSnapshots(config["snapshot_epochs"]))
    knn = config.get("knn_monitor") or {}
    if config["protocol"] == "pretrain" and knn.get("every_n_epochs"):
        callbacks.append(
            KnnMonitorCallback(
                train_dataset,
                eval_dataset,
                SkeletonDataCollator(processor, training=False),
                num_classes=num_classes,
                batch_size=args.per_device_eval_batch_size,
                num_workers=args.dataloader_num_workers,
                **knn,
            )
        )
    return callbacks


def save_and_publish(
    trainer: RecipeTrainer, config: dict[str, Any], metrics: dict[str, float], command: str, world_size: int
) -> None:
    """Save the trained model, processor, state, run record and model card (or push them with `push_to_hub`)."""
    args = trainer.args
    # `save_model` (also called by `push_to_hub`) refuses weights that are not finite, before anything is written.
    if args.push_to_hub:
        # Uploads the weights and processor (every process must call it); its generic README is replaced below.
        trainer.push_to_hub(commit_message="Trained weights and processor")
    else:
        trainer.save_model()
    trainer.save_state()
    if trainer.is_world_process_zero():
        save_run_record(args.output_dir, config, metrics)
        repo_id = trainer.hub_model_id if args.push_to_hub else args.output_dir
        card = write_model_card(
            args.output_dir, config, metrics, command=command, repo_id=repo_id, world_size=world_size
        )
        if args.push_to_hub:
            upload_card_and_metrics(trainer, card)
        logger.info("measured: %s", json.dumps(metrics))


def measured_metrics(trainer: RecipeTrainer, train_samples: int, eval_samples: int) -> dict[str, float]:
    """What the model card reports: test accuracy (classifiers), losses, kNN accuracy, sizes, time.

    Test accuracy is given in both conventions: `eval_top1` / `eval_top5` of the last epoch (the saved weights),
    and `best_eval_top1`, the best top-1 over the evaluated epochs, with `best_eval_epoch` (the authors'
    convention: their `main_finetune.py` / `main_linprobe.py` print the maximum over epochs, and the paper reports
    it). The mean training loss and the training time cover the whole run, the parts before any resume included.
    """
    history = trainer.state.log_history
    metrics: dict[str, float] = {}
    if trainer.eval_dataset is not None:
        final = trainer.evaluate()
        metrics.update({key: final[key] for key in ("eval_top1", "eval_top5") if key in final})
        evaluated = [(entry["eval_top1"], entry["epoch"]) for entry in history if "eval_top1" in entry]
        # The first of equal maxima, as the authors' running maximum keeps it.
        best, epoch = max(evaluated, key=lambda item: item[0])
        metrics.update(best_eval_top1=best, best_eval_epoch=round(epoch, 2))
    losses = [entry["loss"] for entry in history if "loss" in entry]
    if losses:
        metrics["final_loss"] = losses[-1]
    loss_sum, runtime_s = trainer.run_totals()
    metrics["train_loss"] = loss_sum / max(trainer.state.global_step, 1)
    knn = [entry["knn_top1"] for entry in history if "knn_top1" in entry]
    if knn:
        metrics["knn_top1"] = knn[-1]
    metrics.update(train_samples=train_samples, eval_samples=eval_samples, train_runtime=round(runtime_s, 4))
    return metrics


def save_run_record(output_dir: str, config: dict[str, Any], metrics: dict[str, float]) -> None:
    """`metrics.json` and the resolved recipe `recipe.yaml` next to the weights, for the card and for re-runs."""
    path = Path(output_dir)
    (path / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (path / "recipe.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def upload_card_and_metrics(trainer: Trainer, card: Path) -> None:
    """Replace the generic card `Trainer.push_to_hub` uploaded with ours, and add the run record, in one commit."""
    HfApi(token=trainer.args.hub_token).upload_folder(
        repo_id=trainer.hub_model_id,
        folder_path=card.parent,
        allow_patterns=[card.name, "metrics.json", "recipe.yaml"],
        revision=trainer.args.hub_revision,
        commit_message="Model card with the measured metrics, and the recipe",
    )


@console_script(COMMAND)
def main(argv: Sequence[str] | None = None) -> None:
    """`python -m training CONFIG [section.key=value ...]`: a failure (a bad recipe, a diverged run) is one line
    `python -m training: error: ...` and exit status 2."""
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.INFO)
    torch.set_float32_matmul_precision("high")  # TF32 matmuls on Ampere+ GPUs; no effect on CPUs
    config, command = parse_command_line(argv)
    run(config, command)
