"""training/: recipe files, optimizer groups, schedule, metrics, kNN, model card, and short end-to-end runs.

The end-to-end runs use a tiny model (width 32, 2 layers, 16 frames) on a few synthetic clips: they check the
plumbing (Trainer, checkpoints, distributed launch, save/load), not the quality of the representation.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SMALL_MODEL, StopAtStep, tiny_config
from huggingface_hub import ModelCard

from mamp_hub import MampForSkeletonClassification, MampSkeletonProcessor
from mamp_hub.data import ArraySkeletonDataset, SkeletonDataCollator
from mamp_hub.metrics import top_k_accuracy
from mamp_hub.trainer import SkeletonTrainer
from training.checkpoints import RunRecord
from training.config import load_config
from training.data import build_datasets
from training.knn import knn_classify
from training.model_card import render_run_card
from training.optimization import layer_id, optimizer_class_and_kwargs, parameter_groups
from training.recipe import run, training_arguments

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "training" / "configs"
# The paper's recipes: every data set and protocol (base/ holds their shared parts, tiny/ the CPU demo's budget).
RECIPES = sorted(
    p for p in CONFIGS.glob("*/*.yaml") if p.parent.name not in ("base", "tiny") and not p.name.startswith("_")
)


# ------------------------------------------------------------------------------------------------ recipe files


def test_overrides_and_extends(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "protocol: finetune\nschedule: {epochs: 10, learning_rate: 1.0e-3, global_batch_size: 8}\n"
        "optimizer: {name: adamw, betas: [0.9, 0.999]}\n"
    )
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nschedule: {epochs: 20}\n")
    config = load_config(tmp_path / "child.yaml", ["schedule.learning_rate=3e-4", "optimizer.betas=[0.9, 0.95]"])
    assert config["schedule"] == {"epochs": 20, "learning_rate": 3e-4, "global_batch_size": 8}
    assert config["optimizer"]["betas"] == [0.9, 0.95]
    with pytest.raises(ValueError, match=r"section.key=value"):
        load_config(tmp_path / "child.yaml", ["schedule.epochs"])
    with pytest.raises(ValueError, match="Unknown key shedule; did you mean schedule"):
        load_config(tmp_path / "child.yaml", ["shedule.epochs=3"])
    with pytest.raises(ValueError, match="warmup_epochs"):
        load_config(tmp_path / "child.yaml", ["schedule.warmup_epochs=20"])


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recipes_hold_the_papers_hyperparameters(path):
    config = load_config(path)
    schedule, optimizer, model = config["schedule"], config["optimizer"], config["model"]
    pku = path.parent.name.startswith("pku")
    if config["protocol"] == "pretrain":
        assert (schedule["epochs"], schedule["warmup_epochs"], schedule["global_batch_size"]) == (400, 20, 128)
        assert (schedule["learning_rate"], schedule["min_learning_rate"]) == (1e-3, 5e-4)
        assert (optimizer["name"], optimizer["betas"], optimizer["weight_decay"]) == ("adamw", [0.9, 0.95], 0.05)
        assert model["mask_ratio"] == 0.9
        if "skeletonmae" in path.stem:
            assert (model["masking_strategy"], model["pretraining_target"]) == ("random", "joints")
        else:
            assert (model["masking_strategy"], model["pretraining_target"]) == ("motion_aware", "motion")
            assert model["motion_aware_tau"] == (0.75 if path.parent.name.startswith("ntu120") else 0.8)
    elif config["protocol"] == "linear_probe":
        assert (schedule["epochs"], schedule["warmup_epochs"], schedule["min_learning_rate"]) == (100, 0, 0.0)
        assert (optimizer["name"], optimizer["momentum"], optimizer["weight_decay"]) == ("sgd", 0.9, 0.0)
        assert pku or (schedule["global_batch_size"], schedule["learning_rate"]) == (256, 0.1)
        assert model["classifier_head"] == "linear_probe"
    else:
        assert (schedule["epochs"], schedule["warmup_epochs"], schedule["global_batch_size"]) == (100, 5, 48)
        assert (schedule["learning_rate"], schedule["min_learning_rate"]) == (3e-4, 1e-5)
        assert (optimizer["name"], optimizer["layer_decay"], optimizer["weight_decay"]) == ("adamw", 0.8, 0.05)
        assert (model["drop_path_rate"], model["label_smoothing"], model["classifier_head"]) == (0.3, 0.1, "finetune")
        fraction = {"semi_1pct": 0.01, "semi_10pct": 0.1}.get(path.stem, 1.0)
        assert config["data"]["train_fraction"] == fraction
        assert config["init_from"].startswith("outputs/")
    assert config["trainer"]["output_dir"].startswith(f"outputs/{path.parent.name}/")


def test_trainer_hands_the_items_valid_frames_to_the_processor(tmp_path, monkeypatch):
    """Trainer's default column removal would strip them, and the processor would count every frame each epoch."""
    overrides = [f"trainer.output_dir={tmp_path}", "trainer.eval_strategy=no", "schedule.global_batch_size=4"]
    args = training_arguments(load_config(CONFIGS / "ntu60_xsub" / "finetune.yaml", overrides), world_size=1)
    sequences = np.ones((8, 40, 150), dtype=np.float32)
    trainer = SkeletonTrainer(
        model=MampForSkeletonClassification(tiny_config(num_labels=2)),
        args=args,
        train_dataset=ArraySkeletonDataset(sequences, np.arange(8) % 2, layout="ntu_flat"),
        data_collator=SkeletonDataCollator(MampSkeletonProcessor(num_frames=16), training=True),
        eval_data_collator=None,
    )

    def no_counting(*args):
        raise AssertionError("the processor counted: the items' valid_frames did not reach it")

    monkeypatch.setattr("mamp_hub.processing_mamp.count_valid_frames", no_counting)
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["skeleton_values"].shape == (4, 2, 16, 25, 3)


# ------------------------------------------------------------------------------------------------ optimization


def test_layer_ids_follow_beit():
    assert layer_id("mamp.embeddings.temporal_position_embeddings", 8) == 0
    assert layer_id("mamp.embeddings.projection.weight", 8) == 0
    assert layer_id("mamp.encoder.layers.0.attention.qkv.weight", 8) == 1
    assert layer_id("encoder.layers.7.mlp.fc2.bias", 8) == 8
    assert layer_id("mamp.layernorm.weight", 8) == 9
    assert layer_id("classifier.fc2.weight", 8) == 9


def test_parameter_groups_layer_decay_and_weight_decay():
    model = MampForSkeletonClassification(tiny_config(classifier_head="finetune"))
    groups = parameter_groups(model, learning_rate=1.0, weight_decay=0.05, layer_decay=0.5)
    settings = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert len(settings) == len(named)
    # tiny_config has 2 layers: embeddings at 0.5^3, layer i at 0.5^(2-i), final norm and head at 1.
    assert settings[id(named["mamp.embeddings.projection.weight"])] == (0.125, 0.05)
    assert settings[id(named["mamp.embeddings.projection.bias"])] == (0.125, 0.0)
    assert settings[id(named["mamp.encoder.layers.0.attention.qkv.weight"])] == (0.25, 0.05)
    assert settings[id(named["mamp.encoder.layers.1.norm1.weight"])] == (0.5, 0.0)
    assert settings[id(named["classifier.fc2.weight"])] == (1.0, 0.05)
    assert settings[id(named["classifier.batch_norm.bias"])] == (1.0, 0.0)
    # The authors' code decays the position embeddings (they are not 1-D); the option exempts them.
    position = id(named["mamp.embeddings.temporal_position_embeddings"])
    assert settings[position] == (0.125, 0.05)
    exempt = parameter_groups(model, 1.0, 0.05, 0.5, weight_decay_position_embeddings=False)
    assert next(g["weight_decay"] for g in exempt for p in g["params"] if id(p) == position) == 0.0
    assert groups[0]["lr"] == 1.0  # the group Trainer logs carries the peak learning rate


def test_frozen_encoder_leaves_only_the_head_to_the_optimizer():
    model = MampForSkeletonClassification(tiny_config())
    model.freeze_encoder()
    groups = parameter_groups(model, learning_rate=0.1, weight_decay=0.0)
    assert {id(p) for g in groups for p in g["params"]} == {id(p) for p in model.classifier.parameters()}


def test_schedule_is_the_authors_per_iteration_warmup_cosine(tmp_path):
    """Trainer's scheduler, built from a recipe, gives every group the lr of the authors' `adjust_learning_rate`."""
    overrides = [f"trainer.output_dir={tmp_path}", "trainer.eval_strategy=no"]
    config = load_config(CONFIGS / "ntu60_xsub" / "finetune.yaml", overrides)
    config["schedule"].update(epochs=10, warmup_epochs=2)
    model = MampForSkeletonClassification(tiny_config(classifier_head="finetune"))
    args = training_arguments(config, world_size=1)
    trainer = SkeletonTrainer(
        model=model,
        args=args,
        eval_data_collator=None,
        optimizer_cls_and_kwargs=optimizer_class_and_kwargs(model, config["optimizer"], args.learning_rate),
    )
    steps_per_epoch = 7
    trainer.create_optimizer_and_scheduler(num_training_steps=10 * steps_per_epoch)
    peak, floor, decay = 3e-4, 1e-5, 0.8
    projection = model.mamp.embeddings.projection.weight
    embeddings = next(g for g in trainer.optimizer.param_groups if any(p is projection for p in g["params"]))
    for step in range(10 * steps_per_epoch):
        epoch = step / steps_per_epoch  # the authors' per-iteration epoch
        if epoch < 2:
            expected = peak * epoch / 2
        else:
            expected = floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * (epoch - 2) / 8))
        assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-6, abs=1e-12)
        assert embeddings["lr"] == pytest.approx(expected * decay**3, rel=1e-6, abs=1e-12)
        trainer.optimizer.step()
        trainer.lr_scheduler.step()


# ------------------------------------------------------------------------------------------------ metrics, kNN


def test_top_k_accuracy():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.5, 0.4, 0.1]])
    labels = np.array([1, 2, 2, 1])
    assert top_k_accuracy(logits, labels, ks=(1, 2)) == {"top1": 50.0, "top2": 100.0 * 3 / 4}
    assert top_k_accuracy(logits, labels)["top5"] == 100.0  # k above the class count: every label is in
    with pytest.raises(ValueError, match="labels"):
        top_k_accuracy(logits, labels[:2])


def test_knn_classify_separates_clusters():
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 8, generator=generator) * 5
    train_labels = torch.arange(30) % 3
    train = centres[train_labels] + torch.randn(30, 8, generator=generator)
    queries = centres + 0.1 * torch.randn(3, 8, generator=generator)
    assert knn_classify(train, train_labels, queries, num_classes=3, k=5).tolist() == [0, 1, 2]


# ------------------------------------------------------------------------------------------------ model card


def test_model_card_reports_the_measured_metrics():
    config = load_config(CONFIGS / "ntu60_xsub" / "finetune.yaml")
    metrics = {"eval_top1": 91.234, "eval_top5": 99.5, "best_eval_top1": 91.5, "best_eval_epoch": 87.0}
    text = render_run_card(config, metrics, command="python -m training x.yaml", repo_id="me/mamp-ft")
    card = ModelCard(text)
    assert card.data.pipeline_tag == "video-classification"
    assert card.data.datasets == ["ntu_rgbd_60"]
    # Every number names its convention: the last epoch (the saved weights) first, then the authors' best epoch.
    results = [(r.metric_name, r.metric_value) for r in card.data.eval_results]
    assert results == [
        ("Top-1 accuracy (%), last epoch (these weights)", 91.23),
        ("Top-5 accuracy (%), last epoch (these weights)", 99.5),
        ("Top-1 accuracy (%), best epoch (the authors' convention)", 91.5),
    ]
    assert "<org>/<repo>" not in text and 'from_pretrained("me/mamp-ft")' in text
    assert "python -m training x.yaml" in text and "| 91.23 |" in text
    assert "This file is both the project's model card and the template" not in text
    # The headline compares with the paper in the paper's convention (best epoch), naming the last epoch too.
    assert "**Top-1 91.50%, best epoch (the authors' convention)**; the paper reports 93.1% (Table 2" in text
    assert "The saved weights are the last epoch's: 91.23%" in text
    assert "| head BatchNorm statistics | per group of 24 clips (the authors' per-GPU batch) |" in text


# ------------------------------------------------------------------------------------------------ end to end

TINY = CONFIGS / "tiny"


SYNTHETIC_SAMPLES = 160  # clips of the `synthetic_npz` fixture (conftest.py)


def logged_losses(output_dir: Path) -> list[float]:
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    return [entry["loss"] for entry in history if "loss" in entry]


def test_tiny_recipe_pretraining_budget():
    from training.tiny_recipe import main, pretraining_budget

    assert load_config(TINY / "pretrain_mamp.yaml", pretraining_budget(60)) == load_config(TINY / "pretrain_mamp.yaml")
    config = load_config(TINY / "pretrain_skeletonmae.yaml", pretraining_budget(100))
    assert (config["schedule"]["epochs"], config["schedule"]["warmup_epochs"]) == (100, 10)
    assert config["knn_monitor"]["every_n_epochs"] == 50
    with pytest.raises(SystemExit):
        main(["--pretrain_epochs", "1"])


def test_tiny_recipe_seed_reaches_the_data_and_every_stage(tmp_path, monkeypatch, capsys):
    """`--seed` regenerates the synthetic data and seeds every stage: initialisation, data order, crops, masking.
    Each stage is announced; the results record the command, time, memory and machine they were measured with."""
    from training import tiny_recipe

    data_seeds, stage_seeds = [], []

    def fake_run(config, command=""):
        stage_seeds.append((config["protocol"], config["seed"]))
        return {"eval_top1": 50.0, "eval_top5": 90.0, "train_samples": 4, "eval_samples": 4, "final_loss": 0.5}

    monkeypatch.setattr(tiny_recipe, "write_synthetic_npz", lambda path, **kwargs: data_seeds.append(kwargs["seed"]))
    monkeypatch.setattr(
        tiny_recipe, "save_random_init", lambda config, folder: stage_seeds.append(("init", config["seed"]))
    )
    monkeypatch.setattr(tiny_recipe, "run", fake_run)
    monkeypatch.setattr(tiny_recipe, "plot_loss_curves", lambda output_dir, path: None)
    assert tiny_recipe.main(["--output_dir", str(tmp_path), "--seed", "3"]) is None  # exit status 0 as a script
    results = json.loads((tmp_path / "results.json").read_text())
    assert data_seeds == [3] and results["seed"] == 3
    protocols = ["init", "pretrain", "pretrain", "linear_probe", "linear_probe", "linear_probe", "finetune"]
    assert stage_seeds == [(protocol, 3) for protocol in protocols]
    headings = [line.split(":")[0] for line in capsys.readouterr().out.splitlines() if line.startswith("=== stage")]
    assert headings == [f"=== stage {stage}/6" for stage in (1, 2, 3, 3, 4, 4, 4, 5, 6)]

    command = f"python -m training.tiny_recipe --output_dir {tmp_path} --seed 3"
    assert results["command"] == command and results["wall_time_s"] >= 0 and results["peak_memory_mb"] > 100
    machine = results["machine"]
    assert machine["torch"] == torch.__version__ and machine["cpu_cores"] >= 1 and machine["cpu"]
    table = (tmp_path / "results.md").read_text()
    assert "seed 3" in table and f"Command: `{command}`" in table and f"torch {torch.__version__}" in table
    assert f"{machine['cpu_cores']} cores" in table and "peak memory" in table
    with pytest.raises(SystemExit):
        tiny_recipe.main(["--seed", "-1"])


def test_data_section_errors(synthetic_npz):
    with pytest.raises(ValueError, match=r"data.dataset must be one of"):
        build_datasets({"dataset": "synthetic", "path": str(synthetic_npz)})
    with pytest.raises(ValueError, match=r"data.path is required"):
        build_datasets({"dataset": "ntu"})
    with pytest.raises(ValueError, match=r"data.subset_processes must be at least 1 \(the authors' runs: 2\), got 0"):
        build_datasets({"dataset": "npz", "path": str(synthetic_npz), "train_fraction": 0.5, "subset_processes": 0})
    full, _, id2label = build_datasets({"dataset": "npz", "path": str(synthetic_npz)})
    labelled, _, _ = build_datasets({"dataset": "npz", "path": str(synthetic_npz), "train_fraction": 0.1})
    assert len(id2label) == 10 and len(labelled) == round(0.1 * len(full))


def test_a_new_head_on_a_pretrained_encoder_is_no_warning_in_a_recipe(tmp_path, caplog):
    """A linear probe or fine-tuning from a pre-training folder means to put a new classifier on its encoder."""
    from mamp_hub import MampForMaskedMotionPrediction
    from training.recipe import build_model

    MampForMaskedMotionPrediction(tiny_config()).save_pretrained(tmp_path)
    for protocol in ("linear_probe", "finetune"):
        with caplog.at_level("INFO", logger="mamp_hub.modeling_mamp"):
            model = build_model({"protocol": protocol, "init_from": str(tmp_path)}, {0: "a", 1: "b"})
        assert model.config.num_labels == 2 and "a new classifier was initialised" in caplog.text
        assert not [record for record in caplog.records if record.levelname == "WARNING"], caplog.text
        caplog.clear()


@pytest.mark.slow
def test_tiny_recipe_end_to_end(tmp_path, caplog):
    """Pre-train -> save_pretrained -> from_pretrained -> linear probe, for MAMP, a random encoder and the baseline."""
    from training.tiny_recipe import run_tiny_recipe

    overrides = {
        "pretrain": [*SMALL_MODEL, "schedule.epochs=4", "schedule.warmup_epochs=1"],
        "linear_probe": ["schedule.epochs=4", "schedule.global_batch_size=32"],
    }
    results = run_tiny_recipe(tmp_path, overrides, num_samples=200, finetune=False)
    assert "train it before use" not in caplog.text  # the probes' new heads are expected

    for name in ("pretrain_mamp", "pretrain_skeletonmae"):
        losses = logged_losses(tmp_path / name)
        assert all(map(math.isfinite, losses)) and losses[-1] < losses[0], (name, losses)
    probe = MampForSkeletonClassification.from_pretrained(tmp_path / "linear_probe_mamp")
    assert probe.config.classifier_head == "linear_probe" and probe.config.num_labels == 10
    encoder = MampForSkeletonClassification.from_pretrained(tmp_path / "pretrain_mamp", num_labels=10).mamp
    torch.testing.assert_close(probe.mamp.state_dict(), encoder.state_dict())  # the probe left the encoder frozen
    chance = 100.0 / 10
    assert results["linear_probe"]["mamp"]["eval_top1"] > 2 * chance, results["linear_probe"]
    card = ModelCard.load(tmp_path / "linear_probe_mamp" / "README.md")
    assert card.data.eval_results[0].metric_value == round(results["linear_probe"]["mamp"]["eval_top1"], 2)
    assert (tmp_path / "loss_curve.png").stat().st_size > 0
    assert "randomly initialised" in (tmp_path / "results.md").read_text()


@pytest.mark.slow
def test_pretraining_in_two_processes_with_gloo(tmp_path, synthetic_npz):
    """`torchrun` with 2 CPU processes: DDP over gloo, the global batch split between them, a falling loss."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "training", str(TINY / "pretrain_mamp.yaml"), *SMALL_MODEL,
        f"data.path={synthetic_npz}", f"trainer.output_dir={tmp_path}", "schedule.epochs=5", "schedule.warmup_epochs=1",
        "schedule.global_batch_size=16", "trainer.save_strategy=steps", "trainer.save_steps=5",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    assert state["train_batch_size"] == 8  # 16 clips per step, 8 on each of the 2 processes
    losses = logged_losses(tmp_path)
    assert len(losses) == state["global_step"] and all(map(math.isfinite, losses))
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses
    # Each logged loss is one step's mean over the processes; so are the run's mean and the checkpoints' sums.
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["train_loss"] == pytest.approx(np.mean(losses), rel=1e-5)
    last = state["global_step"]
    record = RunRecord.load(tmp_path / f"checkpoint-{last}")
    assert record.global_step == last and record.loss_sum == pytest.approx(sum(losses), rel=1e-5)


def test_resume_from_a_checkpoint(tmp_path, synthetic_npz):
    """A run stopped after its first checkpoint and resumed from it continues the same optimisation, and its
    metrics cover the whole run."""
    settings = [
        *SMALL_MODEL, f"data.path={synthetic_npz}", "schedule.epochs=4", "schedule.warmup_epochs=1",
        "schedule.global_batch_size=16", "trainer.save_strategy=steps", "trainer.save_steps=6",
        "trainer.save_total_limit=null",
    ]  # fmt: skip

    def recipe(output_dir: Path, *extra: str) -> dict:
        return load_config(TINY / "pretrain_mamp.yaml", [*settings, f"trainer.output_dir={output_dir}", *extra])

    metrics = {"uninterrupted": run(recipe(tmp_path / "uninterrupted"))}
    first_part = run(recipe(tmp_path / "interrupted"), callbacks=[StopAtStep(6)])
    assert (tmp_path / "interrupted" / "checkpoint-6").is_dir()
    assert len(logged_losses(tmp_path / "interrupted")) == 6
    metrics["interrupted"] = run(recipe(tmp_path / "interrupted", "trainer.resume_from_checkpoint=true"))

    history = {
        name: json.loads((tmp_path / name / "trainer_state.json").read_text())["log_history"]
        for name in ("uninterrupted", "interrupted")
    }
    steps = {name: [e["step"] for e in log if "loss" in e] for name, log in history.items()}
    assert steps["interrupted"] == steps["uninterrupted"]  # steps 1-6 kept from the checkpoint, 7.. run once
    rates = {name: [e["learning_rate"] for e in log if "loss" in e] for name, log in history.items()}
    assert rates["interrupted"] == rates["uninterrupted"]  # the scheduler resumed where it stopped
    losses = {name: [e["loss"] for e in log if "loss" in e] for name, log in history.items()}
    assert losses["interrupted"][:6] == losses["uninterrupted"][:6]
    # Same weights, optimizer state and data order: the resumed run follows the uninterrupted one, up to the
    # random crops, which come from the main process's generator and are not replayed exactly on resume.
    assert losses["interrupted"][6] < 0.8 * losses["uninterrupted"][0]
    np.testing.assert_allclose(losses["interrupted"][-1], losses["uninterrupted"][-1], rtol=0.05)
    # One loss is logged per step, so the mean over the run is their mean, the steps before the resume included.
    for name in ("uninterrupted", "interrupted"):
        assert metrics[name]["train_loss"] == pytest.approx(np.mean(losses[name]), rel=1e-5), name
    assert metrics["interrupted"]["train_runtime"] > first_part["train_runtime"]
    record = json.loads((tmp_path / "interrupted" / "checkpoint-12" / "mamp_run.json").read_text())
    assert record["global_step"] == 12
    assert record["loss_sum"] == pytest.approx(sum(losses["interrupted"][:12]), rel=1e-5)
