"""The classification heads of `MampForSkeletonClassification`: the authors' linear probe and fine-tuning MLP, and
the grouped BatchNorm that reproduces their multi-GPU BatchNorm statistics on one device.

Shapes: B clips, M persons, T_e segments, V_p joint groups, D width.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..configuration_mamp import MampConfig


class MampGroupedBatchNorm(nn.BatchNorm1d):
    """`nn.BatchNorm1d` that, in training, normalises each run of `group_size` consecutive samples with that run's
    statistics and updates the running statistics from the first run only (`group_size=None`: plain BatchNorm).

    This is the BatchNorm of the authors' multi-GPU runs on one device: there, each GPU's BatchNorm saw its own
    batch, and DistributedDataParallel (`broadcast_buffers=True`, its default) copied rank 0's running statistics to
    every rank before each training forward, so the saved model and every rank's evaluation used statistics updated
    from rank 0's batches alone. A batch holding the processes' batches one after another, rank 0's first, gets
    the same outputs, gradients and running statistics. Evaluation uses the running statistics, as BatchNorm does.
    """

    def __init__(self, num_features: int, group_size: int | None, **kwargs):
        super().__init__(num_features, **kwargs)
        self.group_size = group_size

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.group_size is None or not self.training:
            return super().forward(hidden_states)
        batch_size, channels = hidden_states.shape
        if batch_size % self.group_size:
            raise ValueError(
                f"A training batch of {batch_size} is not a multiple of classifier_batch_norm_group_size="
                f"{self.group_size}; use a batch of whole groups or set the group size to None (the whole batch)."
            )
        groups = batch_size // self.group_size
        # (B, C) -> (group_size, groups * C): every (group, channel) pair becomes one channel of a single
        # batch_norm call, so the groups are normalised separately with the kernel plain BatchNorm uses.
        grouped = hidden_states.reshape(groups, self.group_size, channels).transpose(0, 1)
        grouped = grouped.reshape(self.group_size, groups * channels)
        momentum, running_mean, running_var = 0.0, None, None
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            # Every group updates a copy of the running statistics; the first group's copy is kept (rank 0's).
            running_mean, running_var = self.running_mean.repeat(groups), self.running_var.repeat(groups)
        normalized = F.batch_norm(
            grouped,
            running_mean,
            running_var,
            self.weight.repeat(groups) if self.affine else None,
            self.bias.repeat(groups) if self.affine else None,
            training=True,
            momentum=momentum,
            eps=self.eps,
        )
        if self.track_running_stats:
            with torch.no_grad():
                self.running_mean.copy_(running_mean[:channels])
                self.running_var.copy_(running_var[:channels])
        return normalized.reshape(self.group_size, groups, channels).transpose(0, 1).reshape(batch_size, channels)


class MampLinearProbeHead(nn.Linear):
    """A linear classifier on the pooled clip embedding, after a BatchNorm without affine parameters (the authors'
    linear-probe head; the BatchNorm standardises frozen features so that one learning rate suits every encoder)."""

    def __init__(self, config: MampConfig):
        super().__init__(config.hidden_size, config.num_labels)
        self.batch_norm = MampGroupedBatchNorm(
            config.hidden_size, config.classifier_batch_norm_group_size, affine=False, eps=1e-6
        )

    def forward(self, last_hidden_state: torch.Tensor, pooler_output: torch.Tensor) -> torch.Tensor:
        return super().forward(self.batch_norm(pooler_output))


class MampFinetuneHead(nn.Module):
    """The authors' fine-tuning head: dropout on the tokens, mean over time, each person's joints concatenated,
    mean over persons, then linear, BatchNorm, ReLU, linear."""

    def __init__(self, config: MampConfig):
        super().__init__()
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.fc1 = nn.Linear(config.num_joint_patches * config.hidden_size, config.classifier_hidden_size)
        self.batch_norm = MampGroupedBatchNorm(config.classifier_hidden_size, config.classifier_batch_norm_group_size)
        self.activation = nn.ReLU()
        self.fc2 = nn.Linear(config.classifier_hidden_size, config.num_labels)

    def forward(self, last_hidden_state: torch.Tensor, pooler_output: torch.Tensor) -> torch.Tensor:
        features = self.dropout(last_hidden_state).mean(dim=2).flatten(2).mean(dim=1)
        return self.fc2(self.activation(self.batch_norm(self.fc1(features))))


CLASSIFIER_HEADS: dict[str, type[nn.Module]] = {"linear_probe": MampLinearProbeHead, "finetune": MampFinetuneHead}
