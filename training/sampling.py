"""The authors' semi-supervised sampling, reproduced on any number of processes.

The authors fine-tuned on 1% / 10% of NTU-60 with 2 processes (`script_semi.sh`). Each process seeded NumPy with
`seed + rank` before its feeder drew its labelled subset (`feeder_ntu_semi.py`: a shuffle of all training indices,
the first `int(N * ratio)` kept), and `torch.utils.data.DistributedSampler` (seed 0, `shuffle=True`) then gave each
process, every epoch, its own share of a permutation of *its own* subset: rank r took positions r, r + 2, ...
of the permutation, padded to an even length. So the model never trained on one subset: each step held 24 clips
of rank 0's subset and 24 of rank 1's, and over the epochs it saw both subsets (about twice the labelled clips).

`process_subsets` draws those subsets, and `PerProcessSubsetSampler` yields, step by step, what every simulated
process's DistributedSampler gives it, the processes' batches one after another (rank 0's first). With one
process the global batch is exactly the authors' two per-GPU batches, which the heads' grouped BatchNorm
(`MampConfig.classifier_batch_norm_group_size`) normalises separately; under `torchrun`, accelerate deals the
per-process batches out in turn, so each real process gets the batches of the simulated process of its rank
whenever the two counts match (the authors' set-up), and the global steps are the same for any process count.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, Subset

from mamp_hub.data import semi_supervised_indices


class ProcessSubsets(Subset):
    """The labelled clips of a run whose processes each drew their own subset: their union, in index order.

    Attributes:
        process_positions: for each simulated process, the positions in this data set of its subset, in the order
            it was drawn (the order its DistributedSampler permutes).
    """

    def __init__(self, dataset: Dataset, subsets: Sequence[np.ndarray]):
        union = np.unique(np.concatenate(subsets))
        super().__init__(dataset, union.tolist())
        self.process_positions = [np.searchsorted(union, subset) for subset in subsets]


def process_subsets(dataset: Dataset, ratio: float, seed: int, processes: int) -> ProcessSubsets:
    """The labelled subsets of `processes` processes, process r drawing with `seed + r` as the authors' did.

    Raises:
        ValueError: `processes` is not a positive integer, or `ratio` keeps no clip (see `semi_supervised_indices`).
    """
    if processes < 1:
        raise ValueError(f"data.subset_processes must be at least 1, got {processes}.")
    subsets = [semi_supervised_indices(len(dataset), ratio, seed=seed + rank) for rank in range(processes)]
    return ProcessSubsets(dataset, subsets)


class PerProcessSubsetSampler(Sampler[int]):
    """The clips of each step of an N-process run where every process samples its own subset, as one sequence.

    Each epoch, simulated process r shuffles its subset as `DistributedSampler(subset, num_replicas=N, rank=r,
    shuffle=True, seed=seed)` does (a `torch.randperm` seeded with `seed + epoch`, padded by its first indices to
    a multiple of N, every N-th position from r) and cuts its share into batches of `batch_size`, dropping the
    last incomplete one; step k yields process 0's k-th batch, then process 1's, and so on.

    Args:
        subsets: the data-set indices of each process's subset, in the order it was drawn (all the same length).
        batch_size: the batch of one simulated process (the authors' per-GPU batch).
        seed: the DistributedSampler seed (the authors' was the default, 0).
    """

    def __init__(self, subsets: Sequence[Sequence[int]], batch_size: int, seed: int = 0):
        lengths = {len(subset) for subset in subsets}
        if len(lengths) != 1:
            raise ValueError(f"The processes' subsets must all have the same length, got {sorted(lengths)}.")
        self.subsets = [torch.as_tensor(np.asarray(subset), dtype=torch.long) for subset in subsets]
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0
        self.steps = math.ceil(lengths.pop() / len(subsets)) // batch_size
        if self.steps == 0:
            raise ValueError(
                f"Each of the {len(subsets)} processes gets {math.ceil(len(self.subsets[0]) / len(subsets))} clips "
                f"per epoch, less than its batch of {batch_size}: no step would run; label more clips or lower "
                "schedule.global_batch_size."
            )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def process_indices(self) -> list[torch.Tensor]:
        """This epoch's data-set indices of every process, in the order its DistributedSampler yields them."""
        processes = len(self.subsets)
        shares = []
        for rank, subset in enumerate(self.subsets):
            # Every process seeds its own generator alike: the same permutation, of a different subset.
            order = torch.randperm(len(subset), generator=torch.Generator().manual_seed(self.seed + self.epoch))
            total = math.ceil(len(order) / processes) * processes
            padded = order.repeat(math.ceil(total / len(order)))[:total]
            shares.append(subset[padded[rank:total:processes]])
        return shares

    def __iter__(self) -> Iterator[int]:
        batches = torch.stack([share[: self.steps * self.batch_size] for share in self.process_indices()])
        # (processes, steps * batch) -> step-major: step k is process 0's k-th batch, then process 1's, ...
        batches = batches.reshape(len(self.subsets), self.steps, self.batch_size).transpose(0, 1)
        return iter(batches.reshape(-1).tolist())

    def __len__(self) -> int:
        return self.steps * self.batch_size * len(self.subsets)
