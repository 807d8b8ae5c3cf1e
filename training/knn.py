"""kNN monitor: how well the pre-trained encoder's pooled features separate the actions, without training a head.

Weighted k-nearest-neighbour voting on L2-normalised features (Wu et al., 2018): each of the k most cosine-similar
training clips votes for its label with weight exp(similarity / temperature). Cheap enough to watch pre-training.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedModel, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

logger = logging.getLogger(__name__)


@torch.no_grad()
def extract_features(
    encoder: PreTrainedModel, loader: DataLoader, bf16: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled encoder features `(N, D)` (float32, on the CPU) and labels `(N,)` of every batch of `loader`."""
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    features, labels = [], []
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for batch in loader:
            outputs = encoder(batch["skeleton_values"].to(device), present_persons=batch["present_persons"].to(device))
            features.append(outputs.pooler_output.float().cpu())
            labels.append(batch["labels"])
    encoder.train(was_training)
    return torch.cat(features), torch.cat(labels)


def knn_classify(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    query_features: torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Predicted labels `(Q,)` of `(Q, D)` queries by weighted voting of their k nearest `(N, D)` training features.

    Queries go in chunks so that the similarity matrix stays `(chunk_size, N)`.
    """
    train_features = F.normalize(train_features, dim=1)
    k = min(k, train_features.shape[0])
    predictions = []
    for chunk in F.normalize(query_features, dim=1).split(chunk_size):
        similarity, neighbours = (chunk @ train_features.T).topk(k, dim=1)
        votes = torch.zeros(chunk.shape[0], num_classes, dtype=similarity.dtype)
        votes.scatter_add_(1, train_labels[neighbours], (similarity / temperature).exp())
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions)


class KnnMonitorCallback(TrainerCallback):
    """Logs `knn_top1` (percent) of the encoder every `every_n_epochs` epochs and after the last one.

    Runs on the main process only (the other processes wait at their next gradient synchronisation); the result
    goes into `state.log_history`, hence into `trainer_state.json` and the loss-curve plots.
    """

    def __init__(
        self,
        train_dataset: Dataset,
        eval_dataset: Dataset,
        collate_fn: Callable,
        num_classes: int,
        every_n_epochs: int = 10,
        k: int = 20,
        temperature: float = 0.07,
        batch_size: int = 256,
        num_workers: int = 0,
    ):
        if every_n_epochs < 1:
            raise ValueError(f"knn_monitor.every_n_epochs must be >= 1, got {every_n_epochs}.")
        self.loaders = [
            DataLoader(dataset, batch_size=batch_size, collate_fn=collate_fn, num_workers=num_workers)
            for dataset in (train_dataset, eval_dataset)
        ]
        self.num_classes = num_classes
        self.every_n_epochs = every_n_epochs
        self.k = k
        self.temperature = temperature

    def accuracy(self, model: PreTrainedModel, bf16: bool = False) -> float:
        """kNN top-1 accuracy (percent) of `model.base_model`'s pooled features on the evaluation set."""
        (train_features, train_labels), (eval_features, eval_labels) = (
            extract_features(model.base_model, loader, bf16) for loader in self.loaders
        )
        predictions = knn_classify(
            train_features, train_labels, eval_features, self.num_classes, self.k, self.temperature
        )
        return float(100.0 * (predictions == eval_labels).float().mean())

    def on_epoch_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: PreTrainedModel | None = None,
        **kwargs,
    ):
        epoch = round(state.epoch)
        is_last = state.global_step >= state.max_steps
        if not state.is_world_process_zero or (epoch % self.every_n_epochs and not is_last):
            return
        accuracy = self.accuracy(model, bf16=args.bf16)
        state.log_history.append({"epoch": state.epoch, "step": state.global_step, "knn_top1": accuracy})
        logger.info("epoch %d: kNN top-1 of the encoder features %.2f%%", epoch, accuracy)
