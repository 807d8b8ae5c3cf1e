"""mamp-release: a folder of the authors' checkpoints -> one repository folder each, with its card, and its push.

The source folders are built from the reference run's weights (`tests/fixtures`), saved the way the authors'
scripts save them (`{"model": state_dict, "epoch": ..., "args": Namespace}`), with class counts and paths of the
released checkpoints.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import OFFICIAL_CHECKPOINT, Reference
from hub_server import client_env, run_python
from huggingface_hub import ModelCard

from mamp_hub import MampForMaskedMotionPrediction, MampForSkeletonClassification
from mamp_hub.skeletons import get_id2label
from mamp_hub.tools import release
from mamp_hub.tools.release import RELEASES, REPORTED_TOP1, ReleaseError, find_checkpoints, main

ORG = "mamp-test"
# Where the authors' scripts put each file (`script_*.sh`: `--output_dir ./output_dir/<split>_joint/<run>`).
PRETRAIN_60 = "ntu60_xsub_joint/pretrain_mamp_t120_layer8+3_mask90_tau0.80_ep400_noamp/checkpoint-399.pth"
LINEAR_60 = "ntu60_xsub_joint/linear_mamp_t120_layer8+3_mask90_tau0.80_ep400_400/checkpoint-99.pth"
FINETUNE_120 = "ntu120_xset_joint/finetune_mamp_t120_layer8+5_mask90_tau0.75_ep400_400_warm5/checkpoint-99.pth"
UNNAMED = "downloads/checkpoint-best.pth"  # identified by its contents alone (NTU-60 X-sub fine-tune)


def save_official(
    reference: Reference,
    path: Path,
    stage: str,
    num_classes: int | None = None,
    data_path: str | None = None,
    num_heads: int | None = 4,
) -> None:
    """A checkpoint as the authors' scripts write it, with the reference weights and a head of `num_classes`."""
    state_dict = reference.state_dict({"linear": "linprobe"}.get(stage, stage))
    for key in ("head.fc.1", "head.fc2"):
        if f"{key}.weight" in state_dict:
            generator = torch.Generator().manual_seed(num_classes)
            width = state_dict[f"{key}.weight"].shape[1]
            state_dict[f"{key}.weight"] = torch.randn(num_classes, width, generator=generator) * 0.02
            state_dict[f"{key}.bias"] = torch.zeros(num_classes)
    model_args = dict(reference.model_args, num_heads=num_heads)
    if num_heads is None:
        del model_args["num_heads"]
    args = argparse.Namespace(model="model.transformer.Transformer", model_args=model_args)
    if data_path is not None:
        args.train_feeder_args = {"data_path": data_path, "split": "train"}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state_dict, "epoch": 99, "args": args}, path)


def build_source(reference: Reference, source: Path) -> None:
    (source / PRETRAIN_60).parent.mkdir(parents=True)
    shutil.copy(OFFICIAL_CHECKPOINT, source / PRETRAIN_60)
    save_official(reference, source / LINEAR_60, "linear", num_classes=60)
    save_official(reference, source / FINETUNE_120, "finetune", num_classes=120, num_heads=None)
    save_official(reference, source / UNNAMED, "finetune", num_classes=60, data_path="data/ntu/NTU60_XSub.npz")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_checkpoints_are_identified_by_path_and_contents(reference, tmp_path):
    build_source(reference, tmp_path)
    found = {checkpoint.relative_path: checkpoint for checkpoint in find_checkpoints(tmp_path)}
    assert {path: c.release.name for path, c in found.items()} == {
        PRETRAIN_60: "mamp-ntu60-xsub-pretrain",
        LINEAR_60: "mamp-ntu60-xsub-linear",
        UNNAMED: "mamp-ntu60-xsub-finetune",
        FINETUNE_120: "mamp-ntu120-xset-finetune",
    }
    # Pre-trained encoders come first, so that a classifier's base model is on the Hub before it.
    assert [c.release.stage for c in find_checkpoints(tmp_path)] == ["pretrain", "linear", "finetune", "finetune"]
    assert found[PRETRAIN_60].sha256 == sha256(OFFICIAL_CHECKPOINT)
    # The head count comes from the args when they hold it, else it is the authors' 8.
    assert "num_attention_heads" not in found[LINEAR_60].config_overrides
    assert found[FINETUNE_120].config_overrides["num_attention_heads"] == 8
    assert found[FINETUNE_120].config_overrides["id2label"] == get_id2label("ntu120")


@pytest.mark.parametrize(
    ("path", "stage", "num_classes", "data_path", "message"),
    [
        (
            "ntu60_xsub/finetune/checkpoint.pth",
            "finetune",
            120,
            None,
            "its path says dataset 'ntu60' but its contents say 'ntu120'",
        ),
        (
            "ntu60_xsub/finetune/checkpoint.pth",
            "linear",
            60,
            None,
            "its path says stage 'finetune' but its contents say 'linear'",
        ),
        ("checkpoint.pth", "finetune", 60, None, "neither its path nor its contents tell its protocol"),
        (
            "xsub/checkpoint.pth",
            "finetune",
            60,
            "data/ntu120/NTU120_XSub.npz",
            "its head has 60 classes \\(ntu60\\) but its args name the data file",
        ),
        ("ntu60_xset/checkpoint.pth", "finetune", 60, None, "ntu60 xset, which has no released checkpoint"),
        ("ntu60_xsub_joint/finetune_mae_t120/checkpoint.pth", "finetune", 60, None, "SkeletonMAE baseline"),
    ],
)
def test_checkpoints_that_cannot_be_identified_are_refused(
    reference, tmp_path, path, stage, num_classes, data_path, message
):
    save_official(reference, tmp_path / path, stage, num_classes=num_classes, data_path=data_path)
    with pytest.raises(ReleaseError, match=message):
        find_checkpoints(tmp_path)


def with_nan_weight(path: Path) -> None:
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["model"]["blocks.1.mlp.fc1.weight"][0, 0] = float("nan")
    torch.save(checkpoint, path)


@pytest.mark.parametrize(
    ("broken", "setup", "message"),
    [
        (LINEAR_60, with_nan_weight, r"weights hold NaN or infinite values \(blocks.1.mlp.fc1.weight\)"),
        (LINEAR_60, lambda path: None, "its head has 51 classes, but the released checkpoints have 60 .* or 120"),
        (FINETUNE_120, lambda path: None, r"cannot be converted: .*hidden_size \(32\) must be divisible .* \(5\)"),
    ],
)
def test_a_bad_checkpoint_among_good_ones_is_named_and_nothing_is_written(
    reference, tmp_path, capsys, broken, setup, message
):
    """The error names the file (and the weight), in one line, suggests no option mamp-release lacks, and comes
    before any folder is written."""
    source, output = tmp_path / "source", tmp_path / "released"
    build_source(reference, source)
    if broken == LINEAR_60:
        save_official(reference, source / LINEAR_60, "linear", num_classes=60 if setup is with_nan_weight else 51)
    else:
        save_official(reference, source / FINETUNE_120, "finetune", num_classes=120, num_heads=5)
    setup(source / broken)
    with pytest.raises(SystemExit) as exit_info:
        main([str(source), "--output-dir", str(output), "--org", ORG])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and error.count("\n") == 1 and error.startswith("mamp-release: error: ")
    assert broken in error and re.search(message, error), error
    assert "action names were given" not in error and "--num-heads" not in error and "--force" not in error
    assert not output.exists()


def test_a_failure_while_writing_leaves_no_half_written_folder(reference, tmp_path, monkeypatch):
    source, output = tmp_path / "source", tmp_path / "released"
    save_official(reference, source / LINEAR_60, "linear", num_classes=60)
    folder = output / "mamp-ntu60-xsub-linear"

    def failing_card(*args, **kwargs):
        raise OSError("disk full")

    with monkeypatch.context() as patch:  # the model files are written, the card is not
        patch.setattr(release, "render_release_card", failing_card)
        with pytest.raises(SystemExit):
            main([str(source), "--output-dir", str(output), "--org", ORG])
    assert list(output.iterdir()) == []
    main([str(source), "--output-dir", str(output), "--org", ORG])
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    with monkeypatch.context() as patch:  # a later run that fails leaves the earlier folder as it was
        patch.setattr(release, "render_release_card", failing_card)
        with pytest.raises(SystemExit):
            main([str(source), "--output-dir", str(output), "--org", ORG, "--with-code"])
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    assert [path.name for path in output.iterdir()] == [folder.name]


def test_two_files_for_one_repository_are_refused(reference, tmp_path):
    save_official(reference, tmp_path / "ntu60_xsub_joint/linear_a/checkpoint-99.pth", "linear", num_classes=60)
    save_official(reference, tmp_path / "ntu60_xsub_joint/linear_b/checkpoint-99.pth", "linear", num_classes=60)
    with pytest.raises(
        ReleaseError,
        match=r"linear_a/checkpoint-99.pth and .*linear_b.* are both "
        "mamp-ntu60-xsub-linear",
    ):
        find_checkpoints(tmp_path)


def test_dry_run_writes_one_folder_per_repository_with_its_card(reference, tmp_path, capsys):
    source, output = tmp_path / "source", tmp_path / "released"
    build_source(reference, source)
    main([str(source), "--output-dir", str(output), "--org", ORG])
    report = capsys.readouterr().out
    assert f"{UNNAMED} (sha256 " in report and "mamp-ntu60-xsub-finetune" in report
    assert "not in" in report and "mamp-ntu120-xsub-pretrain" in report  # what the folder lacked

    names = {path.name for path in output.iterdir()}
    assert names == {
        "mamp-ntu60-xsub-pretrain",
        "mamp-ntu60-xsub-linear",
        "mamp-ntu60-xsub-finetune",
        "mamp-ntu120-xset-finetune",
    }
    for name in names:
        files = {path.name for path in (output / name).iterdir()}
        assert files == {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"}, name

    pretrain = MampForMaskedMotionPrediction.from_pretrained(output / "mamp-ntu60-xsub-pretrain")
    assert pretrain.config.num_attention_heads == 4 and pretrain.config.masking_strategy == "motion_aware"
    finetune = MampForSkeletonClassification.from_pretrained(output / "mamp-ntu120-xset-finetune")
    assert finetune.config.num_attention_heads == 8 and finetune.config.id2label == get_id2label("ntu120")

    card = ModelCard.load(output / "mamp-ntu60-xsub-pretrain" / "README.md")
    assert card.data.pipeline_tag == "feature-extraction" and card.data.base_model is None
    assert card.data.eval_results is None and card.data.datasets == ["ntu_rgbd_60"]
    assert sha256(OFFICIAL_CHECKPOINT) in card.text and PRETRAIN_60 in card.text
    assert "85.0 % with a linear probe (`mamp-test/mamp-ntu60-xsub-linear`)" in card.text

    for name, dataset, top1 in (
        ("mamp-ntu60-xsub-finetune", "ntu_rgbd_60", 93.0),
        ("mamp-ntu60-xsub-linear", "ntu_rgbd_60", 85.0),
        ("mamp-ntu120-xset-finetune", "ntu_rgbd_120", 91.5),
    ):
        card = ModelCard.load(output / name / "README.md")
        pretrained = name.rsplit("-", 1)[0] + "-pretrain"
        assert card.data.base_model == f"{ORG}/{pretrained}" and card.data.pipeline_tag == "video-classification"
        assert card.data.datasets == [dataset] and card.data.model_name == f"{ORG}/{name}"
        (result,) = card.data.eval_results
        assert (result.metric_value, result.dataset_type, result.dataset_split) == (top1, dataset, "test")
        assert "not measured by mamp-hub" in result.source_name and "maoyunyao/MAMP" in result.source_url
        assert f"**{top1} %**" in card.text and "not measured by `mamp-hub`" in card.text
        assert f"{ORG}/{name}" in card.text and "<org>/<repo>" not in card.text and "mamp:begin" in card.text
        # The authors' numbers are never under "Measured for this checkpoint".
        measured = card.text.split("### Measured for this checkpoint")[1].split("### Reported by the paper")[0]
        assert str(top1) not in measured and "Nothing was measured" in measured
        assert "Terms:" in card.text and "non-commercial" in card.text
    unnamed_card = (output / "mamp-ntu60-xsub-finetune" / "README.md").read_text()
    assert sha256(source / UNNAMED) in unnamed_card and f"`{UNNAMED}`" in unnamed_card
    assert set(REPORTED_TOP1) == {(r.dataset, r.protocol, r.stage) for r in RELEASES if r.stage != "pretrain"}


def test_a_later_run_without_code_removes_the_code_and_foreign_files_are_kept(reference, tmp_path, capsys):
    source, output = tmp_path / "source", tmp_path / "released"
    save_official(reference, source / LINEAR_60, "linear", num_classes=60)
    folder = output / "mamp-ntu60-xsub-linear"
    main([str(source), "--output-dir", str(output), "--org", ORG, "--with-code"])
    assert (folder / "modeling_mamp.py").is_file()
    assert "auto_map" in json.loads((folder / "config.json").read_text())
    assert "trust_remote_code=True" in (folder / "README.md").read_text()
    main([str(source), "--output-dir", str(output), "--org", ORG])
    assert not (folder / "modeling_mamp.py").exists()
    assert "auto_map" not in json.loads((folder / "config.json").read_text())
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit):
        main([str(source), "--output-dir", str(output), "--org", ORG])
    assert "mamp-release: error: " in capsys.readouterr().err and (folder / "notes.txt").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--org", "bad org"], "--org 'bad org' is not a Hub user or organisation name"),
        (["--org", ORG, "--card-template", "missing.md"], "No card template at missing.md"),
    ],
)
def test_bad_options_fail_in_one_line(reference, tmp_path, capsys, arguments, message):
    save_official(reference, tmp_path / LINEAR_60, "linear", num_classes=60)
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--output-dir", str(tmp_path / "out"), *arguments])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and error.count("\n") == 1 and message in error
    assert not (tmp_path / "out").exists()


def test_empty_source_folder_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--output-dir", str(tmp_path / "out"), "--org", ORG])
    assert "holds no .pth file; pass the folder holding the authors' .pth checkpoints" in capsys.readouterr().err


@pytest.mark.slow
def test_push_fails_half_way_and_resumes(reference, local_hub, tmp_path):
    source, output = tmp_path / "source", tmp_path / "released"
    build_source(reference, source)
    env = client_env(tmp_path / "hf_home", local_hub.url)
    command = ["-m", "mamp_hub.tools.release", str(source), "--output-dir", str(output), "--org", ORG, "--with-code"]
    order = [
        f"{ORG}/{name}"
        for name in (
            "mamp-ntu60-xsub-pretrain",
            "mamp-ntu60-xsub-linear",
            "mamp-ntu60-xsub-finetune",
            "mamp-ntu120-xset-finetune",
        )
    ]

    dry = run_python(command, env)
    assert dry.returncode == 0, dry.stderr
    assert local_hub.requests == [], "without --push, mamp-release must not touch the network"

    local_hub.refuse_next_commit(order[2])
    failed = run_python([*command, "--push"], env)
    error = failed.stderr.strip().splitlines()[-1]  # above it: the client's upload progress, if any
    assert failed.returncode == 2
    assert error.startswith(f"mamp-release: error: Pushing {order[2]} failed (") and "refused" in error
    assert error.endswith("2 of 4 repositories are on the Hub, and running the same command again pushes the rest.")
    assert dict(local_hub.commits) == {order[0]: 1, order[1]: 1}

    resumed = run_python([*command, "--push"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{order[0]}: up to date, skipped" in resumed.stdout and f"{order[2]}: pushed" in resumed.stdout
    assert dict(local_hub.commits) == dict.fromkeys(order, 1), "one commit per repository"
    for repo_id in order:
        folder = output / repo_id.split("/")[1]
        local = {path.name: path.read_bytes() for path in folder.iterdir()}
        assert local_hub.repos[repo_id] == local
        assert "modeling_mamp.py" in local

    again = run_python([*command, "--push"], env)
    assert again.returncode == 0 and again.stdout.count("up to date, skipped") == 4
    assert dict(local_hub.commits) == dict.fromkeys(order, 1)


@pytest.mark.slow
def test_a_dry_run_from_a_wheel_installed_outside_the_clone(tmp_path):
    """The wheel carries the card template (package data): `mamp-release`, installed from it into a fresh environment
    and run from a folder outside the clone, writes a filled card. The environment sees this one's dependencies
    (torch, transformers, ...; a `.pth` path line, which runs no other `.pth` file, so not this clone's editable
    install) and gets mamp-hub from the wheel alone."""
    root = Path(__file__).resolve().parents[1]
    source_tree = tmp_path / "source_tree"  # pip builds in the tree: a copy keeps build/ out of the clone
    source_tree.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(root / name, source_tree / name)
    shutil.copytree(root / "mamp_hub", source_tree / "mamp_hub", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", tmp_path / "dist", source_tree], check=True, timeout=600)
    (wheel,) = (tmp_path / "dist").glob("mamp_hub-*.whl")

    environment = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", environment], check=True, timeout=120)
    python = environment / "bin" / "python"
    own_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(own_site) / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([*pip, "--python", python, "install", "--no-deps", wheel], check=True, timeout=300)

    outside = tmp_path / "elsewhere"
    (outside / PRETRAIN_60).parent.mkdir(parents=True)
    shutil.copy(OFFICIAL_CHECKPOINT, outside / PRETRAIN_60)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MAMP_HUB_TRACEBACK")}
    where = subprocess.run(
        [python, "-c", "import mamp_hub; print(mamp_hub.__file__)"], cwd=outside, env=env, capture_output=True,
        text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(environment), where  # the wheel's copy, not the clone's
    released = subprocess.run(
        [environment / "bin" / "mamp-release", ".", "--output-dir", "released", "--org", ORG],
        cwd=outside, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert released.returncode == 0, released.stderr
    card = (outside / "released" / "mamp-ntu60-xsub-pretrain" / "README.md").read_text()
    assert f"{ORG}/mamp-ntu60-xsub-pretrain" in card and "<org>/<repo>" not in card
    assert sha256(OFFICIAL_CHECKPOINT) in card and "mamp:begin" in card
