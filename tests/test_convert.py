"""mamp-convert: the authors' .pth checkpoints -> save_pretrained folders, safely."""

from __future__ import annotations

import argparse
import json
import os

import pytest
import torch
from conftest import OFFICIAL_CHECKPOINT
from test_modeling import ATOL

from mamp_hub import MampForMaskedMotionPrediction, MampForSkeletonClassification, MampSkeletonProcessor
from mamp_hub.convert import CheckpointError, convert_checkpoint, infer_config, load_official_checkpoint, main


def test_mamp_convert_reproduces_the_reference_outputs(reference, tmp_path, capsys):
    main([str(OFFICIAL_CHECKPOINT), str(tmp_path)])
    report = capsys.readouterr().out
    assert "pretrain checkpoint -> MampForMaskedMotionPrediction" in report
    assert "joints_embed.proj.weight -> mamp.embeddings.projection.weight" in report
    assert "verified" in report

    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "mamp" and config["masking_strategy"] == "motion_aware"
    assert (config["hidden_size"], config["num_attention_heads"], config["decoder_num_hidden_layers"]) == (32, 4, 1)
    assert (config["mask_ratio"], config["motion_aware_tau"], config["norm_target"]) == (0.9, 0.8, True)

    assert MampSkeletonProcessor.from_pretrained(tmp_path).num_frames == 16
    model = MampForMaskedMotionPrediction.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        output = model(reference.skeleton_values, noise=reference["pretrain.motion_aware.noise"])
    assert torch.equal(output.mask, reference["pretrain.motion_aware.mask"])
    assert torch.equal(output.ids_restore, reference["pretrain.motion_aware.ids_restore"])
    torch.testing.assert_close(output.logits, reference["pretrain.motion_aware.pred"], atol=ATOL, rtol=0)
    torch.testing.assert_close(
        output.encoder_last_hidden_state, reference["pretrain.motion_aware.latent"], atol=ATOL, rtol=0
    )
    torch.testing.assert_close(output.loss.reshape(1), reference["pretrain.motion_aware.loss"], atol=ATOL, rtol=0)


@pytest.mark.parametrize("head", ["linprobe", "finetune"])
def test_downstream_checkpoints_convert(reference, tmp_path, head):
    """Write the reference heads in the official checkpoint layout, convert, and compare logits."""
    args = argparse.Namespace(
        model="model.transformer.Transformer",
        model_args={"dim_feat": 32, "depth": 2, "num_heads": 4, "num_classes": 7, "protocol": head},
        smoothing=0.1,
    )
    path = tmp_path / "checkpoint-best.pth"
    torch.save({"model": reference.state_dict(head), "epoch": 99, "args": args}, path)
    model = convert_checkpoint(path, tmp_path / "converted", verbose=False)
    assert isinstance(model, MampForSkeletonClassification)
    loaded = MampForSkeletonClassification.from_pretrained(tmp_path / "converted").eval()
    assert loaded.config.classifier_head == ("linear_probe" if head == "linprobe" else "finetune")
    with torch.no_grad():
        logits = loaded(reference.skeleton_values).logits
    torch.testing.assert_close(logits, reference[f"{head}.logits"], atol=ATOL, rtol=0)


class _RunsCodeWhenUnpickled:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_checkpoint_with_arbitrary_objects_is_refused_without_running_them(reference, tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "malicious.pth"
    torch.save({"model": reference.state_dict("pretrain"), "args": _RunsCodeWhenUnpickled(str(marker))}, path)
    with pytest.raises(CheckpointError, match="not loaded"):
        load_official_checkpoint(path)
    assert not marker.exists()
    with pytest.raises(SystemExit) as exit_info:
        main([str(path), str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_not_a_mamp_checkpoint_and_missing_heads_are_explained(reference, tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, path)
    with pytest.raises(CheckpointError, match="not a MAMP checkpoint"):
        load_official_checkpoint(path)
    with pytest.raises(CheckpointError, match="attention heads"):
        infer_config(reference.state_dict("pretrain"), args=None)
    config = infer_config(reference.state_dict("pretrain"), args=None, num_attention_heads=4)
    assert config.num_attention_heads == 4 and config.num_frames == 16


def test_skeletonmae_checkpoints_convert_to_the_joint_target(reference):
    args = argparse.Namespace(
        model="model_mae.transformer.Transformer",
        model_args={"num_heads": 4, "norm_skes_loss": True},
        mask_ratio=0.9,
    )
    config = infer_config(reference.state_dict("pretrain"), args)
    assert (config.pretraining_target, config.masking_strategy) == ("joints", "random")


def test_action_names_are_attached_and_checked(reference, tmp_path):
    args = argparse.Namespace(model_args={"num_heads": 4})
    path = tmp_path / "checkpoint.pth"
    torch.save({"model": reference.state_dict("finetune"), "args": args}, path)
    names = tmp_path / "names.json"
    names.write_text(json.dumps({str(i): f"action {i}" for i in range(7)}))
    main([str(path), str(tmp_path / "named"), "--id2label", str(names)])
    assert MampForSkeletonClassification.from_pretrained(tmp_path / "named").config.id2label[6] == "action 6"
    with pytest.raises(SystemExit):  # 60 NTU names for a 7-class head
        main([str(path), str(tmp_path / "wrong"), "--id2label", "ntu60"])
    with pytest.raises(CheckpointError, match="7 classes but 60 action names"):
        convert_checkpoint(path, id2label={i: str(i) for i in range(60)}, verbose=False)
