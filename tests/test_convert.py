"""mamp-convert: the authors' .pth checkpoints -> save_pretrained folders, safely."""

from __future__ import annotations

import argparse
import json
import os
import zipfile

import pytest
import torch
from conftest import OFFICIAL_CHECKPOINT, tiny_config
from test_modeling import ATOL

from mamp_hub import MampForMaskedMotionPrediction, MampForSkeletonClassification, MampSkeletonProcessor
from mamp_hub.tools.convert import (
    CheckpointError,
    convert_checkpoint,
    convert_state_dict,
    infer_config,
    load_id2label,
    load_official_checkpoint,
    main,
)

REFERENCE_HEADS = {"linear_probe": "linprobe", "finetune": "finetune"}


def official_state_dict(model: MampForSkeletonClassification, reference) -> dict[str, torch.Tensor]:
    """`model`'s weights under the authors' names and layout: the converter's renaming, run backwards.

    The names come from the reference run's checkpoint of the same head (so `model` must have its 2 layers); the
    converter maps each to ours, and the joint embedding goes back from `(D, t*p*C)` to the Conv2d's `(D, C, t, p)`.
    """
    config = model.config
    ours = model.state_dict()
    _, mapping = convert_state_dict(reference.state_dict(REFERENCE_HEADS[config.classifier_head]))
    official = {old: ours[new].clone() for old, new in mapping}
    official["joints_embed.proj.weight"] = (
        ours["mamp.embeddings.projection.weight"]
        .reshape(config.hidden_size, config.temporal_patch_size, config.joint_patch_size, config.num_channels)
        .permute(0, 3, 1, 2)
        .contiguous()
    )
    return official


def classifier_and_checkpoint(
    reference, path, classifier_head: str, hidden_size: int = 96, num_heads: int = 6, store_num_heads: bool = True
) -> MampForSkeletonClassification:
    """A randomly initialised classifier (with non-trivial BatchNorm statistics) and, at `path`, the same model as
    the authors' scripts would have saved it, with its args (`num_heads` among them if `store_num_heads`)."""
    torch.manual_seed(0)
    config = tiny_config(
        hidden_size=hidden_size,
        num_attention_heads=num_heads,
        intermediate_size=4 * hidden_size,
        decoder_hidden_size=hidden_size,
        decoder_num_attention_heads=num_heads,
        classifier_head=classifier_head,
        classifier_hidden_size=64,
    )
    model = MampForSkeletonClassification(config).eval()
    for name, buffer in model.named_buffers():
        if name.endswith("running_mean"):
            buffer.normal_()
        elif name.endswith("running_var"):
            buffer.uniform_(0.5, 2.0)
    model_args = {"dim_feat": hidden_size, "depth": 2} | ({"num_heads": num_heads} if store_num_heads else {})
    args = argparse.Namespace(model="model.transformer.Transformer", model_args=model_args, smoothing=0.1)
    torch.save({"model": official_state_dict(model, reference), "epoch": 99, "args": args}, path)
    return model


def skeletons(num_frames: int = 16) -> torch.Tensor:
    return torch.randn(3, 2, num_frames, 25, 3, generator=torch.Generator().manual_seed(1))


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


@pytest.mark.parametrize("classifier_head", ["linear_probe", "finetune"])
@pytest.mark.parametrize(("hidden_size", "num_heads"), [(96, 6), (48, 3)])
def test_classifier_checkpoints_of_any_width_and_head_count_convert(
    reference, tmp_path, capsys, classifier_head, hidden_size, num_heads
):
    """Width and head count that divide no decoder default (the decoder is not in these checkpoints)."""
    path = tmp_path / "checkpoint.pth"
    original = classifier_and_checkpoint(reference, path, classifier_head, hidden_size, num_heads)
    main([str(path), str(tmp_path / "converted")])
    assert f"{classifier_head} checkpoint -> MampForSkeletonClassification" in capsys.readouterr().out
    converted = MampForSkeletonClassification.from_pretrained(tmp_path / "converted").eval()
    config = converted.config
    assert (config.hidden_size, config.num_attention_heads, config.classifier_head) == (
        hidden_size,
        num_heads,
        classifier_head,
    )
    assert config.label_smoothing == (0.1 if classifier_head == "finetune" else 0.0)
    with torch.no_grad():
        torch.testing.assert_close(converted(skeletons()).logits, original(skeletons()).logits, atol=1e-6, rtol=0)


def test_head_count_that_contradicts_the_args_is_refused_unless_forced(reference, tmp_path, capsys):
    path = tmp_path / "checkpoint.pth"
    original = classifier_and_checkpoint(reference, path, "finetune")  # args: 6 heads
    with pytest.raises(SystemExit) as exit_info:
        main([str(path), str(tmp_path / "refused"), "--num-heads", "3"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "--num-heads 3" in error and "store 6" in error and "--force" in error
    assert not (tmp_path / "refused").exists()

    main([str(path), str(tmp_path / "forced"), "--num-heads", "3", "--force"])
    forced = MampForSkeletonClassification.from_pretrained(tmp_path / "forced").eval()
    assert forced.config.num_attention_heads == 3
    with torch.no_grad():  # why it is refused: the same weights split into other heads compute something else
        difference = (forced(skeletons()).logits - original(skeletons()).logits).abs().max()
    assert difference > 1e-3


def test_head_count_missing_from_args_is_asked_for(reference, tmp_path, capsys):
    path = tmp_path / "checkpoint.pth"
    original = classifier_and_checkpoint(reference, path, "linear_probe", store_num_heads=False)
    with pytest.raises(SystemExit):
        main([str(path), str(tmp_path / "refused")])
    error = capsys.readouterr().err
    assert "attention heads" in error and "--num-heads" in error and "96" in error
    main([str(path), str(tmp_path / "converted"), "--num-heads", "6"])  # not stored, so nothing to contradict
    converted = MampForSkeletonClassification.from_pretrained(tmp_path / "converted").eval()
    with torch.no_grad():
        torch.testing.assert_close(converted(skeletons()).logits, original(skeletons()).logits, atol=1e-6, rtol=0)


def test_another_frame_count_is_forced_by_resampling_the_temporal_embeddings(reference, tmp_path):
    """Forced, the converted model on 32 frames computes what the original computes on 32 frames."""
    path = tmp_path / "checkpoint.pth"
    original = classifier_and_checkpoint(reference, path, "finetune")  # 16 frames
    with pytest.raises(CheckpointError, match=r"num_frames=32 .* fix 16"):
        convert_checkpoint(path, verbose=False, num_frames=32)
    converted = convert_checkpoint(path, tmp_path / "converted", verbose=False, force=True, num_frames=32)
    assert converted.config.num_frames == 32 == MampSkeletonProcessor.from_pretrained(tmp_path / "converted").num_frames
    with torch.no_grad():
        torch.testing.assert_close(converted(skeletons(32)).logits, original(skeletons(32)).logits, atol=1e-6, rtol=0)


def test_masking_temperature_that_contradicts_the_args_is_refused_unless_forced(reference, tmp_path):
    with pytest.raises(CheckpointError, match=r"motion_aware_tau=0\.75 \(--motion-aware-tau 0\.75\).*store 0\.8"):
        convert_checkpoint(OFFICIAL_CHECKPOINT, verbose=False, motion_aware_tau=0.75)
    assert convert_checkpoint(OFFICIAL_CHECKPOINT, verbose=False, motion_aware_tau=0.8).config.motion_aware_tau == 0.8
    forced = convert_checkpoint(OFFICIAL_CHECKPOINT, verbose=False, force=True, motion_aware_tau=0.75)
    assert (forced.config.motion_aware_tau, forced.config.masking_strategy) == (0.75, "motion_aware")
    # Without args nothing is stored to contradict.
    config = infer_config(reference.state_dict("pretrain"), num_attention_heads=4, motion_aware_tau=0.75)
    assert (config.motion_aware_tau, config.masking_strategy) == (0.75, "motion_aware")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"hidden_size": 64}, r"hidden_size=64 contradicts the checkpoint's weights, which fix 32; leave it out"),
        ({"num_labels": 10}, r"num_labels=10 contradicts the checkpoint's weights, which fix 7"),
        ({"num_frames": 32}, r"num_frames=32 \(--num-frames 32\) contradicts .* which fix 16; pass force=True"),
        ({"num_attention_heads": 8}, r"num_attention_heads=8 \(--num-heads 8\) contradicts the checkpoint's args, "),
        ({"label_smoothing": 0.2}, r"label_smoothing=0\.2 contradicts the checkpoint's args, which store 0\.1"),
        ({"hidden_size": 64, "force": True}, r"hidden_size=64 contradicts the checkpoint's weights"),
    ],
)
def test_options_that_contradict_the_checkpoint_are_refused(reference, override, message):
    args = argparse.Namespace(model_args={"num_heads": 4}, smoothing=0.1)
    with pytest.raises(CheckpointError, match=message):
        infer_config(reference.state_dict("finetune"), args, **override)


class _RunsCodeWhenUnpickled:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_checkpoint_with_arbitrary_objects_is_refused_without_running_them(reference, tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "malicious.pth"
    torch.save({"model": reference.state_dict("pretrain"), "args": _RunsCodeWhenUnpickled(str(marker))}, path)
    with pytest.raises(CheckpointError, match="mkdir, which weights-only loading refuses, so it is not loaded"):
        load_official_checkpoint(path)
    assert not marker.exists()
    with pytest.raises(SystemExit) as exit_info:
        main([str(path), str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert not marker.exists() and not (tmp_path / "out").exists()


def _write_bad_checkpoint(kind: str, path, reference) -> None:
    if kind == "empty file":
        path.write_bytes(b"")
    elif kind == "text file":
        path.write_text("model weights go here\n")
    elif kind == "zip that is not a checkpoint":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("readme.txt", "hello")
    elif kind == "tensor":
        torch.save(torch.zeros(3), path)
    elif kind == "other model":
        torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, path)
    elif kind == "truncated":
        state_dict = reference.state_dict("finetune")
        del state_dict["temp_embed"]
        torch.save({"model": state_dict}, path)
    elif kind == "no head":
        state_dict = {k: v for k, v in reference.state_dict("finetune").items() if not k.startswith("head.")}
        torch.save({"model": state_dict}, path)
    elif kind == "diverged":
        state_dict = reference.state_dict("finetune")
        state_dict["blocks.0.attn.qkv.weight"] = state_dict["blocks.0.attn.qkv.weight"].clone()  # not the fixture's
        state_dict["blocks.0.attn.qkv.weight"][3, 1] = float("inf")
        torch.save({"model": state_dict}, path)
    elif kind == "directory":
        path.mkdir()
    # "missing": nothing is written


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "does not exist"),
        ("directory", "is not a file"),
        ("empty file", "is empty"),
        ("text file", "is not a PyTorch checkpoint"),
        ("zip that is not a checkpoint", "is not a PyTorch checkpoint"),
        ("tensor", "holds a Tensor that is neither a state dict"),
        ("other model", "has no 'joints_embed.proj.weight': it is not a MAMP checkpoint"),
        ("truncated", "has no 'temp_embed'"),
        ("no head", "neither a decoder ('decoder_pred.weight') nor"),
        ("diverged", "weights hold NaN or infinite values (blocks.0.attn.qkv.weight)"),
    ],
)
def test_files_that_are_not_mamp_checkpoints_are_explained(reference, tmp_path, capsys, kind, message):
    path = tmp_path / "checkpoint-best.pth"
    _write_bad_checkpoint(kind, path, reference)
    with pytest.raises(CheckpointError) as error_info:
        convert_checkpoint(path, tmp_path / "out", verbose=False, num_attention_heads=4)
    assert message in str(error_info.value)
    if kind not in ("truncated", "no head"):  # those name the missing weight rather than the file
        assert str(path) in str(error_info.value)
    with pytest.raises(SystemExit) as exit_info:
        main([str(path), str(tmp_path / "out"), "--num-heads", "4"])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and error.count("\n") == 1 and error.startswith("mamp-convert: error: ")
    assert message in error and "Traceback" not in error
    assert not (tmp_path / "out").exists()


def test_not_a_mamp_checkpoint_and_missing_heads_are_explained(reference):
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
    id2label = MampForSkeletonClassification.from_pretrained(tmp_path / "named").config.id2label
    assert id2label == {i: f"action {i}" for i in range(7)}
    with pytest.raises(SystemExit):  # 60 NTU names for a 7-class head
        main([str(path), str(tmp_path / "wrong"), "--id2label", "ntu60"])
    assert not (tmp_path / "wrong").exists()
    with pytest.raises(CheckpointError, match="7 classes but 60 action names"):
        convert_checkpoint(path, id2label={i: str(i) for i in range(60)}, verbose=False)
    with pytest.raises(CheckpointError, match="pre-training checkpoint has none"):
        convert_checkpoint(OFFICIAL_CHECKPOINT, id2label={i: str(i) for i in range(7)}, verbose=False)
    assert load_id2label("ntu60")[0] == "drink water"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({str(i + 1): f"action {i}" for i in range(7)}, "keys must be 0..6, but 0 is missing and 7 is out of range"),
        ({"0": "a", "01": "b"}, "has the key '01'"),
        ({"0": "a", "one": "b"}, "has the key 'one'"),
        ({"0": "a", "1": ""}, "the name of class 1 is ''"),
        ({"0": "a", "1": None}, "the name of class 1 is None"),
        ({"0": "a", "1": 3}, "the name of class 1 is 3"),
        (["a", "b"], "holds a JSON list, not an object"),
        ("", "is empty"),
        ("names: a, b", "is not JSON (Expecting value at line 1, column 1)"),
        (b"\x80\x81", "is not a UTF-8 text file"),
        (None, "is neither a known data set nor a file"),
        ("directory", "is not a file"),
    ],
)
def test_bad_action_name_files_are_explained(tmp_path, capsys, content, message):
    path = tmp_path / "names.json"
    if isinstance(content, (dict, list)):
        path.write_text(json.dumps(content))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "directory":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    with pytest.raises(CheckpointError) as error_info:
        load_id2label(str(path))
    assert message in str(error_info.value) and str(path) in str(error_info.value)
    with pytest.raises(SystemExit) as exit_info:  # refused before the checkpoint is read
        main([str(tmp_path / "checkpoint.pth"), str(tmp_path / "out"), "--id2label", str(path)])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and error == f"mamp-convert: error: {error_info.value}\n"


@pytest.mark.parametrize(
    ("id2label", "message"),
    [
        ({i + 1: f"action {i}" for i in range(7)}, "0 is missing and 7 is out of range"),
        ({i: f"action {i}" for i in range(8)}, "7 classes but 8 action names"),
        ({**{i: f"action {i}" for i in range(6)}, 6: " "}, "the name of class 6 is ' '"),
        (["a"] * 7, "id2label is a list"),
    ],
)
def test_bad_action_names_from_python_are_explained(reference, id2label, message):
    args = argparse.Namespace(model_args={"num_heads": 4})
    with pytest.raises(CheckpointError) as error_info:
        infer_config(reference.state_dict("finetune"), args, id2label=id2label)
    assert message in str(error_info.value)
