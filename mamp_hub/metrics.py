"""Top-1 / top-5 accuracy for `Trainer(compute_metrics=...)`, in percent as in the paper's tables."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers import EvalPrediction

from .checks import checked, positive_int


def top_k_accuracy(logits: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Percent of samples whose label is among the `k` highest logits, for each `k`.

    Args:
        logits: `(N, num_labels)` class scores.
        labels: `(N,)` class indices.
    Returns:
        `{"top1": ..., "top5": ...}`; a `k` above the number of classes counts every sample as correct.
    """
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Sequence) or not ks:
        raise ValueError(f"`ks` must be a list of positive integers, got {ks!r}; pass e.g. (1, 5).")
    ks = [checked("ks", positive_int, k) for k in ks]
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"Need logits (N, num_labels) and labels (N,), got {logits.shape} and {labels.shape}.")
    ranking = np.argsort(-logits, axis=1, kind="stable")[:, : max(ks)]
    hits = ranking == labels[:, None]
    return {f"top{k}": float(100.0 * hits[:, :k].any(axis=1).mean()) for k in ks}


def compute_metrics(eval_prediction: EvalPrediction) -> dict[str, float]:
    """`compute_metrics` for classification: top-1 and top-5 accuracy of the gathered logits."""
    return top_k_accuracy(eval_prediction.predictions, eval_prediction.label_ids)


def logits_only(outputs: torch.Tensor | tuple[torch.Tensor, ...], labels: torch.Tensor) -> torch.Tensor:
    """`preprocess_logits_for_metrics`: keep the class scores, drop the pooled features the model also returns,
    so evaluation gathers `(N, num_labels)` instead of `(N, num_labels + hidden_size)` numbers."""
    return outputs[0] if isinstance(outputs, tuple) else outputs
