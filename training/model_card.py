"""The README.md of a trained folder: the card template filled with what was run and what was measured
(`mamp_hub.tools.model_card.render_model_card`, which `mamp-release` uses too). Nothing is claimed that the metrics do
not hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult

from mamp_hub.tools.model_card import render_model_card

PROTOCOL_DESCRIPTIONS = {
    "pretrain": "the pre-trained encoder and decoder (`MampForMaskedMotionPrediction`), pre-trained without labels",
    "linear_probe": 'a linear probe (`MampForSkeletonClassification`, `classifier_head="linear_probe"`): '
    "a linear classifier trained on the frozen encoder",
    "finetune": 'a fine-tuned classifier (`MampForSkeletonClassification`, `classifier_head="finetune"`), '
    "encoder and head trained together",
}

# The two accuracy conventions: the last epoch's (the saved weights) and the best epoch's (the authors': their
# scripts print the maximum test accuracy over the epochs, and the paper's tables report it).
LAST_EPOCH, BEST_EPOCH = "last epoch (these weights)", "best epoch (the authors' convention)"
METRIC_LABELS = {
    "eval_top1": f"Top-1 accuracy (%), test split, {LAST_EPOCH}",
    "eval_top5": f"Top-5 accuracy (%), test split, {LAST_EPOCH}",
    "best_eval_top1": f"Top-1 accuracy (%), test split, {BEST_EPOCH}: the best over the evaluated epochs",
    "best_eval_epoch": "Epoch of the best top-1 accuracy",
    "knn_top1": "kNN top-1 accuracy (%) of the pooled encoder features on the test split (k = 20)",
    "train_loss": "Training loss, mean over the run",
    "final_loss": "Training loss, last logged value",
    "train_samples": "Training clips",
    "eval_samples": "Test clips",
    "train_runtime": "Training time (s)",
}


def render_run_card(
    config: Mapping[str, Any],
    metrics: Mapping[str, float],
    command: str,
    repo_id: str,
    world_size: int = 1,
    template: str | None = None,
) -> str:
    """The card of a run of recipe `config` that measured `metrics`.

    Args:
        config: the recipe (sections `protocol`, `init_from`, `data`, `model`, `optimizer`, `schedule`, `card`).
        metrics: measured values, keys as in `METRIC_LABELS` (others are listed under their own name).
        command: the command line that produced the folder.
        repo_id: Hub id (or local folder) the card's code examples load from.
        world_size: number of training processes, reported with the batch sizes.
        template: card template text; defaults to the one shipped with `mamp_hub`.
    """
    protocol = config["protocol"]
    card_config = config.get("card", {})
    dataset_name = card_config.get("dataset_name", config["data"].get("dataset", "unknown data"))
    eval_results = []
    if protocol != "pretrain" and "eval_top1" in metrics:
        # The weights' own accuracy (last epoch) first; the best epoch's, named as such, after it.
        reported = {"eval_top1": f"Top-1 accuracy (%), {LAST_EPOCH}", "eval_top5": f"Top-5 accuracy (%), {LAST_EPOCH}",
                    "best_eval_top1": f"Top-1 accuracy (%), {BEST_EPOCH}"}  # fmt: skip
        eval_results = [
            EvalResult(
                task_type="video-classification",
                task_name="Skeleton-based action recognition",
                dataset_type=(card_config.get("dataset_ids") or [config["data"].get("dataset", "skeletons")])[0],
                dataset_name=dataset_name,
                dataset_split="test",
                metric_type="accuracy",
                metric_name=name,
                metric_value=round(float(metrics[key]), 2),
            )
            for key, name in reported.items()
            if key in metrics
        ]
    init_from = config.get("init_from")
    return render_model_card(
        repo_id,
        checkpoint=_checkpoint_text(config, dataset_name, command, world_size),
        results=_results_text(metrics, card_config),
        pipeline_tag="feature-extraction" if protocol == "pretrain" else "video-classification",
        datasets=card_config.get("dataset_ids") or [],
        # A Hub id (not a local folder) is recorded as the base model.
        base_model=init_from if init_from and not Path(init_from).exists() else None,
        eval_results=eval_results,
        license=card_config.get("license") or None,
        template=template,
    )


def write_model_card(output_dir: str | Path, *args, **kwargs) -> Path:
    """`render_run_card(...)` written to `output_dir/README.md`."""
    path = Path(output_dir) / "README.md"
    path.write_text(render_run_card(*args, **kwargs), encoding="utf-8")
    return path


def _checkpoint_text(config: Mapping[str, Any], dataset_name: str, command: str, world_size: int) -> str:
    protocol = config["protocol"]
    schedule, optimizer, model = config["schedule"], config.get("optimizer", {}), config.get("model", {})
    lines = [
        f"This repository holds {PROTOCOL_DESCRIPTIONS[protocol]}, trained on **{dataset_name}** with "
        "`mamp-hub`'s `training/` recipes.",
        "",
    ]
    if protocol != "pretrain":
        source = config.get("init_from")
        lines += [
            f"Initialised from: `{source}`." if source else "Initialised from random weights (no pre-training).",
            "",
        ]
    data = config["data"]
    hyperparameters = {
        "epochs": schedule["epochs"],
        "global batch": f"{schedule['global_batch_size']} ({world_size} process{'es' if world_size > 1 else ''})",
        "optimizer": optimizer.get("name", "adamw"),
        "learning rate": f"{schedule['learning_rate']} (warm-up {schedule.get('warmup_epochs', 0)} epochs, cosine "
        f"to {schedule.get('min_learning_rate', 0)})",
        "weight decay": optimizer.get("weight_decay", 0.0),
        "layer-wise lr decay": optimizer.get("layer_decay", 1.0),
        "seed": f"{config.get('seed', 0)}" + (" + process rank" if config.get("seed_per_process") else ""),
    }
    if protocol == "pretrain":
        hyperparameters.update(
            {
                key: model[key]
                for key in ("masking_strategy", "mask_ratio", "motion_aware_tau", "pretraining_target")
                if key in model
            }
        )
    else:
        hyperparameters.update({key: model[key] for key in ("drop_path_rate", "label_smoothing") if key in model})
        if data.get("train_fraction", 1.0) < 1.0:
            hyperparameters["labelled training fraction"] = data["train_fraction"]
            processes, seed = data.get("subset_processes", 1), data.get("subset_seed", 0)
            hyperparameters["labelled subsets"] = (
                f"{processes}, one per simulated process as in the authors' runs (seeds {seed}..{seed + processes - 1})"
                if processes > 1
                else f"1 (seed {seed})"
            )
        group = model.get("classifier_batch_norm_group_size")
        hyperparameters["head BatchNorm statistics"] = (
            f"per group of {group} clips (the authors' per-GPU batch)" if group else "over the whole batch"
        )
    lines += ["| hyper-parameter | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in hyperparameters.items()]
    lines += ["", "Produced by:", "", "```bash", command, "```"]
    terms = config.get("card", {}).get("terms")
    if terms:
        lines += ["", f"Terms: {terms}"]
    return "\n".join(lines)


def _results_text(metrics: Mapping[str, float], card_config: Mapping[str, Any]) -> str:
    if not metrics:
        return "Nothing was measured for this checkpoint."
    rows = [
        f"| {METRIC_LABELS.get(key, key)} | {value:.2f} |"
        if isinstance(value, float)
        else f"| {METRIC_LABELS.get(key, key)} | {value} |"
        for key, value in metrics.items()
    ]
    lines = ["Measured by the run that produced these weights (command above):", "", "| metric | value |", "|---|---|"]
    paper = card_config.get("paper_top1")
    if paper is not None and "best_eval_top1" in metrics:
        # Compared in the paper's own convention: the authors report the best epoch's test accuracy.
        lines = [
            f"**Top-1 {metrics['best_eval_top1']:.2f}%, {BEST_EPOCH}**; the paper reports {paper}% "
            f"({card_config.get('paper_source') or 'Mao et al., ICCV 2023'}; not measured here), also the best epoch. "
            f"The saved weights are the last epoch's: {metrics['eval_top1']:.2f}%. The best epoch is chosen on the "
            "test split, so it is an optimistic estimate.",
            "",
            *lines,
        ]
    return "\n".join(lines + rows)
