"""`SkeletonTrainer`: `transformers.Trainer` for skeleton action models, with the authors' train/eval batching and a
loud failure for runs that diverge. Used by the recipes in `training/` and by `examples/finetune.py`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from transformers import Trainer
from transformers.trainer_utils import has_length

from .data.collator import PaddedSkeletonCollator


class TrainingDivergedError(RuntimeError):
    """The loss or the weights of a run stopped being finite; nothing is saved as the run's result."""

    def __init__(self, step: int, what: str, learning_rate: float):
        super().__init__(
            f"Training diverged at optimizer step {step}: {what}, and nothing was saved as the result; try a lower "
            f"schedule.learning_rate (this run: {learning_rate:g}), and check model.mask_ratio (pre-training) and "
            "that the data hold finite values."
        )
        self.step = step


class SkeletonTrainer(Trainer):
    """`Trainer` with separate training and evaluation batching, as the authors' loaders have, that fails loudly.

    Training batches come from `data_collator` (random crop and rotation) and, with `dataloader_drop_last=True`,
    are always full: the schedule sees the paper's batch size and the heads' BatchNorm never gets a batch of one (a
    training set smaller than one batch is then refused, naming the batch options, as no step would run).
    A `PaddedSkeletonCollator` there yields padded rows instead, whose transform `training_step` runs on the batch's
    device (`PaddedSkeletonCollator.model_inputs`) before the forward.
    Evaluation batches come from `eval_data_collator` (central crop) and keep every test clip.

    A step whose loss is not finite raises `TrainingDivergedError` (Trainer would log the mean of the previous
    losses instead and carry on), and so does saving weights that are not finite: a checkpoint, the final model or
    an upload. A non-finite gradient makes the next step's loss non-finite, or the final weights.

    Args:
        eval_data_collator: the collator of evaluation and prediction batches (`data_collator` makes the training
            batches), e.g. `SkeletonDataCollator(processor, training=False)`.
    """

    # The options that set the training batch, as this trainer's users write them (a recipe names its own).
    batch_size_option = "per_device_train_batch_size"
    drop_last_option = "dataloader_drop_last"

    def __init__(self, *args: Any, eval_data_collator: Callable, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.eval_data_collator = eval_data_collator

    def get_train_dataloader(self):
        dataloader = super().get_train_dataloader()
        # With `dataloader_drop_last`, a training set smaller than one batch (over all processes) makes epochs of no
        # step: a data loader of length 0, which Trainer takes for one without a length and asks for `max_steps`.
        if self.args.dataloader_drop_last and has_length(dataloader) and len(dataloader) == 0:
            clips, processes = len(self.train_dataset), self.args.world_size
            batch = self.args.per_device_train_batch_size * processes
            raise ValueError(
                f"The training set has {clips} clips, fewer than one training batch of {batch}"
                + (f" ({processes} processes)" if processes > 1 else "")
                + f", and {self.drop_last_option}=true drops an incomplete batch, so no step would run; lower "
                f"{self.batch_size_option} or set {self.drop_last_option}=false (to train on the incomplete batch)."
            )
        return dataloader

    def training_step(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        if isinstance(self.data_collator, PaddedSkeletonCollator):  # the transform runs here, on the batch's device
            inputs = self.data_collator.model_inputs(self._prepare_inputs(inputs))
        loss = super().training_step(model, inputs, num_items_in_batch)
        value = loss.item()  # Trainer synchronises on this loss every step anyway (its NaN filter)
        if not math.isfinite(value):
            raise TrainingDivergedError(self.state.global_step + 1, f"its loss is {value}", self.args.learning_rate)
        self.on_step_loss(value)
        return loss

    def on_step_loss(self, value: float) -> None:
        """Called with every training step's (finite) loss; a hook for subclasses that keep run totals."""

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        non_finite = non_finite_tensors(self.model)
        if non_finite:
            what = f"the weights {', '.join(non_finite)} are not finite"
            raise TrainingDivergedError(self.state.global_step, what, self.args.learning_rate)
        super().save_model(output_dir, _internal_call)

    @contextmanager
    def _evaluation_batching(self):
        saved = self.data_collator, self.args.dataloader_drop_last
        self.data_collator, self.args.dataloader_drop_last = self.eval_data_collator, False
        try:
            yield
        finally:
            self.data_collator, self.args.dataloader_drop_last = saved

    def get_eval_dataloader(self, eval_dataset=None):
        with self._evaluation_batching():
            return super().get_eval_dataloader(eval_dataset)

    def get_test_dataloader(self, test_dataset):
        with self._evaluation_batching():
            return super().get_test_dataloader(test_dataset)


def non_finite_tensors(model: nn.Module | Mapping[str, torch.Tensor], limit: int = 3) -> list[str]:
    """Names of (at most `limit` of) the parameters and buffers of `model` (or the tensors of a state dict) holding
    a NaN or an infinity."""
    tensors = model.state_dict() if isinstance(model, nn.Module) else model
    names = [
        name for name, tensor in tensors.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()
    ]
    return names[:limit] + ([f"{len(names) - limit} more"] if len(names) > limit else [])


__all__ = ["SkeletonTrainer", "TrainingDivergedError", "non_finite_tensors"]
