"""What the raw-data preparation scripts (`prepare_ntu`, `prepare_pku`) share: the layout of the benchmark files
they write, the worker processes that read the raw files, the list of skipped samples, and the checks and
command-line options of their common arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import numbers
import os
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from .npz import NpzWriter

# A row of `x_*` in the standard files: one frame of two persons x 25 joints x (x, y, z), persons outermost.
VALUES_PER_FRAME = 150


@contextlib.contextmanager
def parallel_map(num_workers: int | None) -> Iterator[Callable]:
    """An ordered, lazy map over worker processes (`num_workers=0`: in this process; None: one per CPU)."""
    if num_workers == 0:
        yield map
        return
    with multiprocessing.Pool(num_workers) as pool:
        yield lambda function, items: pool.imap(function, items, chunksize=16)


def check_worker_and_frame_counts(num_workers: int | None, max_frames: int) -> None:
    """Raises `ValueError` unless `num_workers` is None or >= 0 and `max_frames` >= 1 (both integers)."""
    if num_workers is not None and (not isinstance(num_workers, numbers.Integral) or num_workers < 0):
        raise ValueError(f"`num_workers` is {num_workers!r}; pass a count >= 0 (0: no worker processes) or None.")
    if not isinstance(max_frames, numbers.Integral) or max_frames < 1:
        raise ValueError(f"`max_frames` is {max_frames!r}; pass the number of frames per sample (>= 1, e.g. 300).")


def add_split(
    writer: NpzWriter,
    split: str,
    rows: Iterable[np.ndarray],
    labels: np.ndarray | Sequence[int],
    num_frames: int,
    num_classes: int,
) -> None:
    """Writes one split as the standard files hold it: `x_{split}` (N, num_frames, 150) float32, streamed from
    `rows` (one zero-padded (num_frames, 150) sequence per sample), and `y_{split}` (N, num_classes) one-hot
    float64 from the (N,) 0-based class indices `labels`."""
    labels = np.asarray(labels, dtype=np.int64)
    writer.add_rows(f"x_{split}", rows, len(labels), (num_frames, VALUES_PER_FRAME), np.float32)
    writer.add(f"y_{split}", np.eye(num_classes)[labels])


def write_skipped_list(path: str | os.PathLike, skipped: Sequence[tuple[str, str]]) -> None:
    """Writes one `name<TAB>reason` line per skipped file or sample."""
    with open(path, "w") as file:
        file.writelines(f"{name}\t{reason}\n" for name, reason in skipped)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every preparation script: `--output-dir`, `--workers`, `--max-frames`."""
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all CPUs)")
    parser.add_argument("--max-frames", type=int, default=300)
