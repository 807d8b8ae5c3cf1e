"""training/ fails loudly: bad recipe keys and values, unusable `init_from` folders, diverging runs, checkpoints of
another recipe or whose save did not finish.

The runs use the tiny test model of tests/test_training.py (width 32, 2 layers, 16 frames) for a few steps.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import SMALL_MODEL, StopAtStep, pretrain_recipe, tiny_config
from transformers import TrainerCallback

from mamp_hub import MampForMaskedMotionPrediction
from mamp_hub.data import NpzSkeletonDataset
from mamp_hub.trainer import SkeletonTrainer, TrainingDivergedError
from training.checkpoints import RECORD_NAME, RunRecord
from training.config import load_config
from training.recipe import run, training_arguments

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "training" / "configs" / "tiny"


class NoTraining(TrainerCallback):
    """Fails the test if a run that should have been refused starts training."""

    def on_train_begin(self, args, state, control, **kwargs):
        raise AssertionError("the run started training instead of refusing its recipe")


class TrainingStart(TrainerCallback):
    """Records the step training (re)starts from."""

    def on_train_begin(self, args, state, control, **kwargs):
        self.step = state.global_step


# ------------------------------------------------------------------------------------------------ recipe keys

UNKNOWN_KEYS = {
    "data": "data.train_fractoin=0.1",
    "data.processor": "data.processor.eval_crop_ration=0.9",
    "model": "model.mask_ratoi=0.5",
    "optimizer": "optimizer.weight_decya=0.1",
    "schedule": "schedule.min_learnig_rate=1e-4",
    "trainer": "trainer.logging_step=10",
    "knn_monitor": "knn_monitor.every_n_epoch=5",
    "card": "card.datset_name=mine",
    "top level": "sead=1",
}


@pytest.mark.parametrize("override", UNKNOWN_KEYS.values(), ids=UNKNOWN_KEYS.keys())
def test_every_section_refuses_an_unknown_key(override, synthetic_npz, tmp_path):
    """Caught when the recipe is read, or for the processor and the model, when the run builds them."""
    key = override.partition("=")[0].rpartition(".")[2]
    with pytest.raises(ValueError, match=re.escape(key)):
        run(pretrain_recipe(synthetic_npz, tmp_path, override), callbacks=[NoTraining()])


WRONG_TYPES = {
    "schedule.epochs": "schedule.epochs=ten",
    "schedule.global_batch_size": "schedule.global_batch_size=16.5",
    "data.train_fraction": "data.train_fraction=all",
    "data.processor.eval_crop_ratio": "data.processor.eval_crop_ratio=most",
    "model.hidden_size": "model.hidden_size=big",
    "optimizer.betas": "optimizer.betas=[high,low]",
    "trainer.logging_steps": "trainer.logging_steps=often",
    "trainer.bf16": "trainer.bf16=1",
    "knn_monitor.k": "knn_monitor.k=many",
    "card.dataset_ids": "card.dataset_ids=[1,2]",
    "seed": "seed=lucky",
}


@pytest.mark.parametrize("override", WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_a_value_of_the_wrong_type_is_refused_by_name(override, synthetic_npz, tmp_path):
    key = override.partition("=")[0].rpartition(".")[2]
    with pytest.raises(ValueError, match=re.escape(key)):
        run(pretrain_recipe(synthetic_npz, tmp_path, override), callbacks=[NoTraining()])


MISPLACED = {
    "trainer.learning_rate=0.1": "schedule.learning_rate",
    "trainer.weight_decay=0.1": "optimizer.weight_decay",
    "trainer.seed=3": "seed",
    "init_from=outputs/other": "init_from",
}


@pytest.mark.parametrize("override, named", MISPLACED.items(), ids=MISPLACED.keys())
def test_a_setting_the_recipe_would_ignore_is_refused(override, named, synthetic_npz, tmp_path):
    """A trainer field the schedule or optimizer sets, or init_from for pre-training, would have no effect."""
    with pytest.raises(ValueError, match=re.escape(named)):
        pretrain_recipe(synthetic_npz, tmp_path, override)


# ------------------------------------------------------------------------------------------------ init_from


@pytest.fixture(scope="module")
def pretrained_folders(tmp_path_factory) -> dict[str, Path]:
    """A finite pre-trained model, one with NaN weights, and a folder without config.json."""
    root = tmp_path_factory.mktemp("init_from")
    model = MampForMaskedMotionPrediction(tiny_config())
    model.save_pretrained(root / "finite")
    with torch.no_grad():
        model.mamp.encoder.layers[0].attention.qkv.weight[0, 0] = float("nan")
    model.save_pretrained(root / "diverged")
    (root / "no_config").mkdir()
    shutil.copy(root / "finite" / "model.safetensors", root / "no_config")
    return {name: root / name for name in ("finite", "diverged", "no_config")}


BAD_INIT_FROM = {"diverged": "not finite", "no_config": "no config.json", "missing/folder/here": "neither a folder"}


@pytest.mark.parametrize("folder, problem", BAD_INIT_FROM.items(), ids=BAD_INIT_FROM.keys())
def test_init_from_must_be_a_finite_save_pretrained_folder(
    folder, problem, pretrained_folders, synthetic_npz, tmp_path
):
    init_from = pretrained_folders.get(folder, tmp_path / folder)
    settings = [f"data.path={synthetic_npz}", f"trainer.output_dir={tmp_path / 'probe'}", f"init_from={init_from}"]
    with pytest.raises(ValueError, match=f"init_from='{re.escape(str(init_from))}'.*{problem}"):
        run(load_config(TINY / "linear_probe.yaml", settings), callbacks=[NoTraining()])


BAD_MODEL_OVERRIDES = {
    "model.label_smoothin=0.1": "label_smoothin",
    "model.label_smoothing=high": "label_smoothing",
    # Fine with MampConfig's default width (256), not with the saved one (32): the merged config is what is checked.
    "model.num_attention_heads=64": "hidden_size (32) must be divisible by its number of attention heads (64)",
}


@pytest.mark.parametrize("override, named", BAD_MODEL_OVERRIDES.items(), ids=BAD_MODEL_OVERRIDES.keys())
def test_the_model_section_is_checked_with_the_config_of_init_from(
    override, named, pretrained_folders, synthetic_npz, tmp_path
):
    init_from = pretrained_folders["finite"]
    settings = [f"data.path={synthetic_npz}", f"trainer.output_dir={tmp_path}", f"init_from={init_from}"]
    with pytest.raises(ValueError, match=re.escape(named)):
        run(load_config(TINY / "linear_probe.yaml", [*settings, override]), callbacks=[NoTraining()])


# ------------------------------------------------------------------------------------------------ divergence


def test_saving_weights_that_are_not_finite_is_refused(tmp_path):
    """Checkpoints, the final model and uploads all go through `save_model`."""
    model = MampForMaskedMotionPrediction(tiny_config())
    with torch.no_grad():
        model.mamp.layernorm.weight.fill_(float("inf"))
    config = load_config(TINY / "pretrain_mamp.yaml", [f"trainer.output_dir={tmp_path}"])
    trainer = SkeletonTrainer(model=model, args=training_arguments(config, world_size=1), eval_data_collator=None)
    with pytest.raises(TrainingDivergedError, match=r"step 0: the weights mamp\.layernorm\.weight are not finite"):
        trainer.save_model(str(tmp_path / "final"))
    assert not (tmp_path / "final").exists()


def test_a_training_set_smaller_than_one_batch_is_named_or_trains_on_the_incomplete_batch(
    synthetic_npz, tmp_path, capsys
):
    """With drop_last, fewer clips than one batch made epochs of no step, which Trainer reported as "args.max_steps
    must be set to a positive value if dataloader does not have a length"."""
    clips = len(NpzSkeletonDataset(synthetic_npz, split="train"))
    batch = f"schedule.global_batch_size={clips + 8}"
    expected = (
        rf"The training set has {clips} clips, fewer than one training batch of {clips + 8}, and "
        r"trainer\.dataloader_drop_last=true drops an incomplete batch, so no step would run; lower "
        r"schedule\.global_batch_size or set trainer\.dataloader_drop_last=false"
    )
    with pytest.raises(ValueError, match=expected):
        run(pretrain_recipe(synthetic_npz, tmp_path / "refused", batch), callbacks=[NoTraining()])
    metrics = run(pretrain_recipe(synthetic_npz, tmp_path / "trained", batch, "trainer.dataloader_drop_last=false"))
    assert (
        metrics["train_samples"] == clips
        and json.loads((tmp_path / "trained" / "trainer_state.json").read_text())["global_step"] == 1
    )


@pytest.mark.slow
def test_a_diverging_pretraining_exits_nonzero_and_saves_nothing(tmp_path, synthetic_npz):
    command = [
        sys.executable, "-m", "training", str(TINY / "pretrain_mamp.yaml"), *SMALL_MODEL,
        f"data.path={synthetic_npz}", f"trainer.output_dir={tmp_path}", "schedule.epochs=2", "schedule.warmup_epochs=0",
        "schedule.global_batch_size=16", "schedule.learning_rate=1e6", "schedule.min_learning_rate=0",
        "trainer.disable_tqdm=true",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("MAMP_HUB_TRACEBACK", None)
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    error = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"python -m training: error: Training diverged at optimizer step \d+: its loss is nan, .*"
        r"schedule\.learning_rate \(this run: 1e\+06\).*model\.mask_ratio.*",
        error,
    ), error
    assert not {"model.safetensors", "metrics.json", "README.md"} & {path.name for path in tmp_path.iterdir()}


# ------------------------------------------------------------------------------------------------ resuming


def test_resuming_refuses_a_checkpoint_of_another_recipe(synthetic_npz, tmp_path):
    """A folder whose newest checkpoint another recipe wrote: resuming would train that run's weights further."""
    run(pretrain_recipe(synthetic_npz, tmp_path, "trainer.save_strategy=steps", "trainer.save_steps=3"))
    assert RunRecord.load(tmp_path / "checkpoint-3") is not None
    resume = "trainer.resume_from_checkpoint=true"
    other = pretrain_recipe(synthetic_npz, tmp_path, "schedule.learning_rate=5e-4", resume)
    refused = r"checkpoint-3, was written by another recipe \(schedule\.learning_rate: 0\.001 -> 0\.0005\)"
    with pytest.raises(ValueError, match=refused):
        run(other, callbacks=[NoTraining()])
    # The settings that may change on resume are not part of the fingerprint.
    same = pretrain_recipe(
        synthetic_npz, tmp_path, "trainer.save_strategy=steps", "trainer.save_steps=3", "trainer.logging_steps=2",
        resume, "card.dataset_name=renamed",
    )  # fmt: skip
    start = TrainingStart()
    run(same, callbacks=[start])
    assert start.step == 3


def test_resuming_skips_a_checkpoint_whose_save_did_not_finish(synthetic_npz, tmp_path, caplog):
    settings = [
        "schedule.epochs=2", "trainer.save_strategy=steps", "trainer.save_steps=2", "trainer.save_total_limit=null"
    ]  # fmt: skip
    run(pretrain_recipe(synthetic_npz, tmp_path, *settings), callbacks=[StopAtStep(4)])
    # A crash while checkpoint-4 was being written: its optimizer state is cut short, its record never written.
    (tmp_path / "checkpoint-4" / RECORD_NAME).unlink()
    (tmp_path / "checkpoint-4" / "optimizer.pt").write_bytes(b"")
    resume = f"trainer.resume_from_checkpoint={tmp_path / 'checkpoint-4'}"
    with pytest.raises(ValueError, match=r"checkpoint-4.* not a complete checkpoint"):
        run(pretrain_recipe(synthetic_npz, tmp_path, *settings, resume), callbacks=[NoTraining()])
    start = TrainingStart()
    with caplog.at_level(logging.WARNING, logger="training.checkpoints"):
        resume = "trainer.resume_from_checkpoint=true"
        metrics = run(pretrain_recipe(synthetic_npz, tmp_path, *settings, resume), callbacks=[start])
    assert start.step == 2
    assert re.search(r"Skipping .*checkpoint-4: .* did not finish", caplog.text), caplog.text
    # Steps 1-2 come from checkpoint-2, 3-6 were run again: one logged loss each, all in the run's mean.
    history = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    losses = [entry["loss"] for entry in history if "loss" in entry]
    assert len(losses) == 6 and metrics["train_loss"] == pytest.approx(sum(losses) / 6, rel=1e-5)
