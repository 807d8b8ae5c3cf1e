"""The training transform on padded batches where they live (`PaddedSkeletonCollator`, `transform_padded_batch`):
the same draws give the processor's output; the collator's checks; `SkeletonTrainer` runs it in the training step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_config

from mamp_hub import MampForSkeletonClassification, MampSkeletonProcessor
from mamp_hub.data import ArraySkeletonDataset, PaddedSkeletonCollator, SkeletonDataCollator
from mamp_hub.trainer import SkeletonTrainer

# Valid frames of the clips: a single frame, fewer than `min_train_frames`, around it, and up to the whole row.
VALID = [1, 2, 30, 63, 64, 65, 97, 120, 200, 299, 300, 150]


def ntu_items(valid: list[int], seed: int = 0, frames: int = 300) -> list[dict]:
    """Items as the data sets give them: `(frames, 150)` NTU rows, zero after the valid frames; every third clip
    has a second person, one clip has none at all; the last item comes without its valid-frame count."""
    rng = np.random.default_rng(seed)
    items = []
    for index, count in enumerate(valid):
        rows = np.zeros((frames, 2, 75), dtype=np.float32)
        rows[:count, 0] = rng.normal(size=(count, 75)) + 1
        if index % 3 == 0:
            rows[:count, 1] = rng.normal(size=(count, 75)) - 1
        if index == 4:
            rows[:] = 0
        items.append({"skeleton_values": rows.reshape(frames, 150), "valid_frames": count if index != 4 else 0})
        items[-1]["labels"] = index % 5
    del items[-1]["valid_frames"]
    return items


def batches(items: list[dict], size: int) -> list[list[dict]]:
    return [items[first : first + size] for first in range(0, len(items), size)]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"num_frames": 24, "do_random_rotation": False},
        {"num_frames": 16, "train_crop_ratio_range": (0.9, 0.95), "min_train_frames": 8, "rotation_range": 1.0},
    ],
    ids=["defaults", "no-rotation", "other-options"],
)
def test_same_draws_give_the_processors_output(options):
    """Several batches from one generator each: the transform of padded batches and the processor's consume the
    same draws and give the same numbers (bit for bit before the rotation, to float32 rounding after it)."""
    processor = MampSkeletonProcessor(**options)
    items = ntu_items(VALID * 2)
    padded = PaddedSkeletonCollator(processor, layout="ntu_flat", generator=torch.Generator().manual_seed(7))
    reference = SkeletonDataCollator(processor, training=True, layout="ntu_flat", generator=torch.Generator())
    reference.generator.manual_seed(7)
    for batch in batches(items, 5):
        expected = reference(batch)
        raw = padded(batch)
        assert raw["sequences"].shape[1] == max(item.get("valid_frames", 150) for item in batch)  # to the longest
        inputs = padded.model_inputs(raw)
        assert sorted(inputs) == ["labels", "present_persons", "skeleton_values"]
        if processor.do_random_rotation:
            torch.testing.assert_close(inputs["skeleton_values"], expected["skeleton_values"])
        else:
            assert torch.equal(inputs["skeleton_values"], expected["skeleton_values"])
        assert torch.equal(inputs["present_persons"], expected["present_persons"])
        assert torch.equal(inputs["labels"], expected["labels"])


def test_clips_of_other_lengths_and_layouts_pad_to_the_longest():
    """A list of `(M, T, V, C)` clips of different lengths, one-person clips among them, as a user's data set."""
    rng = np.random.default_rng(1)
    lengths = [40, 300, 7, 120]
    clips = [rng.normal(size=(1 + index % 2, length, 25, 3)).astype(np.float32) for index, length in enumerate(lengths)]
    items = [{"skeleton_values": clip} for clip in clips]
    processor = MampSkeletonProcessor(num_frames=32)
    raw = PaddedSkeletonCollator(processor, layout="MTVC")(items)
    assert raw["sequences"].shape == (4, 300, 150) and raw["valid_frames"].tolist() == lengths
    assert raw["present_persons"].tolist() == [0, 2, 3, 4, 6, 7]
    inputs = PaddedSkeletonCollator(processor, generator=torch.Generator().manual_seed(0)).model_inputs(raw)
    expected = processor(clips, training=True, layout="MTVC", seed=0)
    torch.testing.assert_close(inputs["skeleton_values"], expected["skeleton_values"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda items: items[1].update(valid_frames=301), r"`valid_frames` \[1, 301\] must be within 0 and each"),
        (lambda items: items[0]["skeleton_values"].__setitem__((0, 3), np.nan), r"NaN or infinite .* slots \[0\]"),
        (lambda items: items[1].update(skeleton_values=np.zeros((0, 150), np.float32)), r"Sequences \[1\] have no"),
        (lambda items: items[0].update(skeleton_values=np.zeros((300, 140), np.float32)), r"fits no supported"),
    ],
    ids=["valid-frames-beyond-the-clip", "nan", "no-frames", "bad-shape"],
)
def test_bad_items_are_refused_in_the_loader_not_on_the_device(change, message):
    items = ntu_items([1, 2])
    change(items)
    with pytest.raises(ValueError, match=message):
        PaddedSkeletonCollator(MampSkeletonProcessor(), layout=None)(items)
    with pytest.raises(ValueError, match="empty batch"):
        PaddedSkeletonCollator(MampSkeletonProcessor())([])


def test_bad_collator_options_are_refused():
    with pytest.raises(ValueError, match="processor is of type str; pass the MampSkeletonProcessor"):
        PaddedSkeletonCollator("processor")
    with pytest.raises(ValueError, match="return_labels"):
        PaddedSkeletonCollator(MampSkeletonProcessor(), return_labels="yes")


def test_skeleton_trainer_transforms_padded_batches_in_the_training_step(tmp_path, monkeypatch):
    """Given a `PaddedSkeletonCollator`, `SkeletonTrainer` hands the model the transformed batch."""
    from transformers import TrainingArguments

    processor = MampSkeletonProcessor(num_frames=16)
    collator = PaddedSkeletonCollator(processor, layout="ntu_flat")
    items = ntu_items(VALID[:8])
    dataset = ArraySkeletonDataset(
        np.stack([item["skeleton_values"] for item in items]), np.arange(8) % 2, layout="ntu_flat"
    )
    model = MampForSkeletonClassification(tiny_config(num_labels=2))
    seen = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda **inputs: seen.append(sorted(inputs)) or forward(**inputs))
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=2, use_cpu=True, report_to="none",
        remove_unused_columns=False, save_strategy="no", dataloader_drop_last=True,
    )  # fmt: skip
    trainer = SkeletonTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=collator,
        eval_data_collator=SkeletonDataCollator(processor, training=False),
    )
    trainer.train()
    assert seen == [["labels", "present_persons", "skeleton_values"]] * 2
