"""Input pipeline: the evaluation and training transforms per batch, and the data loader over an epoch, of mamp-hub
and (with `--official-repo`) of the authors' per-sample feeder, on the same `.npz` file.

    python benchmarks/bench_pipeline.py --official-repo /path/to/MAMP
    python benchmarks/bench_pipeline.py --data /data/NTU60_XSub.npz --official-repo /path/to/MAMP

Data: an `.npz` in the standard NTU layout (`x_train` (N, 300, 150), one-hot `y_train`, `x_test`, `y_test`). By
default a SYNTHETIC one from `mamp_hub.data.synthetic` (1,280 sequences of 60-200 frames, 20% with two persons)
is written to a temporary folder; `--data` takes a real file instead.

- evaluation transform: 32 items -> a `(32, 2, 120, 25, 3)` batch with the central 95% crop. Authors:
  `Feeder.__getitem__` (valid-frame count + `valid_crop_resize`) for each item, then `default_collate`.
  mamp-hub: the data set's items (slices of a memory map, with their valid-frame counts, which the data set
  remembers from the warm-up call as it does from a first epoch) and `SkeletonDataCollator`, which runs
  `MampSkeletonProcessor` once on the batch; "first pass" makes the data set count the valid frames again in
  every call, as in a first epoch; "processor only" times the processor (counting too) on a batch already in
  memory. The script checks that both give the same numbers before timing.
- training transform: the same with the pre-training augmentation (random crop of 50-100%, random rotation).
- data loader: one shuffled epoch of the training split through `torch.utils.data.DataLoader` (batch 32,
  training transform), with 0 and 2 worker processes. Memory is the main process's (workers are separate).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    Result,
    add_common_arguments,
    configure_torch,
    format_table,
    import_official,
    interleaved_timings,
    machine_info,
    measure_memory_here,
    measure_memory_in_subprocess,
    median_throughput,
    write_json,
)

from mamp_hub import MampSkeletonProcessor
from mamp_hub.data import NpzSkeletonDataset, SkeletonDataCollator
from mamp_hub.data.synthetic import write_synthetic_npz

EVAL, TRAIN, LOADER = "evaluation transform", "training transform", "data loader"
TASKS = {"eval": EVAL, "train": TRAIN, "loader": LOADER}  # command-line name -> table name
# The data set remembers each sequence's valid frames once counted; this variant forgets them before every call.
FIRST_PASS = "first pass, valid frames counted"


@dataclass(frozen=True)
class Case:
    task: str
    implementation: str  # "authors" or "mamp-hub"
    options: str = ""  # "processor only", "N workers"

    @property
    def name(self) -> str:
        return "/".join(part.replace(" ", "-") for part in (self.task, self.implementation, self.options) if part)


def list_cases(args: argparse.Namespace) -> list[Case]:
    cases = []
    for task in (TASKS[key] for key in args.pipeline_tasks):
        variants = [f"{n} workers" for n in args.workers] if task == LOADER else [""]
        for options in variants:
            if args.official_repo:
                cases.append(Case(task, "authors", options))
            cases.append(Case(task, "mamp-hub", options))
        if task in (EVAL, TRAIN):
            cases.append(Case(task, "mamp-hub", FIRST_PASS))
        if task == EVAL:
            cases.append(Case(task, "mamp-hub", "processor only"))
    return cases


# ------------------------------------------------------------------------------------------------- pieces


def authors_feeder(official, path: str, training: bool, num_frames: int):
    """The authors' NTU feeder with their pre-training (`training`) or evaluation arguments."""
    if training:
        return official.feeder.Feeder(path, split="train", window_size=num_frames, p_interval=[0.5, 1], random_rot=True)
    return official.feeder.Feeder(path, split="test", window_size=num_frames, p_interval=[0.95])


def our_pipeline(path: str, training: bool, num_frames: int) -> tuple[NpzSkeletonDataset, SkeletonDataCollator]:
    dataset = NpzSkeletonDataset(path, split="train" if training else "test")
    return dataset, SkeletonDataCollator(MampSkeletonProcessor(num_frames=num_frames), training=training)


def batch_indices(size: int, batch_size: int, seed: int) -> list[int]:
    return np.random.default_rng(seed).choice(size, batch_size, replace=False).tolist()


def build_call(case: Case, args: argparse.Namespace, official) -> Callable[[], object]:
    """One timed call: a batch through a transform, or an epoch through a data loader."""
    training = case.task != EVAL
    if case.implementation == "authors":
        dataset = authors_feeder(official, args.data, training, args.num_frames)
        collate = default_collate
    else:
        dataset, collate = our_pipeline(args.data, training, args.num_frames)
    if case.task == LOADER:
        workers = int(case.options.split()[0])
        loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=workers, collate_fn=collate)
        return lambda: sum(len(batch[0] if isinstance(batch, list) else batch["skeleton_values"]) for batch in loader)
    indices = batch_indices(len(dataset), args.batch_size, args.seed)
    if case.options == "processor only":
        sequences = np.stack([np.asarray(dataset.sequences[i]) for i in indices])
        return lambda: collate.processor(sequences, training=training, layout="ntu_flat")["skeleton_values"]
    if case.options == FIRST_PASS:

        def first_pass():
            dataset._valid_frames.fill(-1)  # as before a first epoch
            return collate([dataset[i] for i in indices])

        return first_pass
    return lambda: collate([dataset[i] for i in indices])


@torch.no_grad()
def check_evaluation_parity(args: argparse.Namespace, official) -> str:
    """The evaluation transform has no randomness: both implementations must give the same batch."""
    feeder = authors_feeder(official, args.data, training=False, num_frames=args.num_frames)
    dataset, collator = our_pipeline(args.data, training=False, num_frames=args.num_frames)
    indices = batch_indices(len(dataset), args.batch_size, args.seed)
    theirs = default_collate([feeder[i] for i in indices])[0].permute(0, 4, 2, 3, 1)  # (N, C, T, V, M) -> ours
    ours = collator([dataset[i] for i in indices])["skeleton_values"]
    error = (theirs.float() - ours).abs().max().item()
    if error > 1e-5:
        raise AssertionError(f"evaluation transform: mamp-hub and the authors' feeder differ by {error:.2e}")
    return f"evaluation batches agree to {error:.1e}"


def items_per_call(case: Case, args: argparse.Namespace) -> int:
    if case.task == LOADER:
        return len(NpzSkeletonDataset(args.data, split="train"))
    return args.batch_size


# ------------------------------------------------------------------------------------------------- runs


def run(args: argparse.Namespace, log=print) -> list[Result]:
    configure_torch(args.threads)
    official = import_official(args.official_repo) if args.official_repo else None
    log(f"data: {args.data}")
    if official is not None and EVAL in (TASKS[key] for key in args.pipeline_tasks):
        log(f"  parity: {check_evaluation_parity(args, official)}")
    results = []
    for task in (TASKS[key] for key in args.pipeline_tasks):
        cases = [case for case in list_cases(args) if case.task == task]
        log(f"{task}: {len(cases)} configurations")
        calls = {case.name: build_call(case, args, official) for case in cases}
        seconds = interleaved_timings(calls, args.pipeline_warmup, args.pipeline_repeats, log=log)
        del calls
        for case in cases:
            count = items_per_call(case, args)
            result = Result(
                task=task,
                implementation=case.implementation,
                unit="sequences/s",
                dtype="",
                options=case.options,
                seconds=[round(s, 5) for s in seconds[case.name]],
                items_per_call=count,
                throughput=median_throughput(seconds[case.name], count),
            )
            if args.memory:
                result.__dict__.update(measure_memory_in_subprocess(__file__, case.name, memory_argv(args), log))
            results.append(result)
    return results


def memory_argv(args: argparse.Namespace) -> list[str]:
    argv = [
        "--data",
        args.data,
        "--batch-size",
        str(args.batch_size),
        "--num-frames",
        str(args.num_frames),
        "--pipeline-tasks",
        ",".join(args.pipeline_tasks),
        "--workers",
        ",".join(map(str, args.workers)),
        "--seed",
        str(args.seed),
        "--threads",
        str(args.threads or 0),
    ]
    return argv + (["--official-repo", args.official_repo] if args.official_repo else [])


def measure_one_case_memory(args: argparse.Namespace) -> dict[str, float]:
    configure_torch(args.threads)
    official = import_official(args.official_repo) if args.official_repo else None
    case = next(case for case in list_cases(args) if case.name == args.memory_case)
    return measure_memory_here(lambda: build_call(case, args, official), "cpu")


def ensure_data(args: argparse.Namespace, folder: str) -> None:
    if args.data is None:
        args.data = str(Path(folder) / "synthetic_ntu_layout.npz")
        print(f"writing {args.num_samples} SYNTHETIC sequences to {args.data}")
        write_synthetic_npz(args.data, num_samples=args.num_samples, seed=args.seed)


# -------------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The pipeline benchmark's own options (next to `common.add_common_arguments`)."""
    parser.add_argument("--data", help="NTU-layout .npz (default: a synthetic one written to a temporary folder)")
    parser.add_argument("--num-samples", type=int, default=1280, help="size of the synthetic file")
    parser.add_argument(
        "--pipeline-tasks",
        dest="pipeline_tasks",
        type=lambda t: t.split(","),
        default=list(TASKS),
        help=f"comma-separated, from {', '.join(TASKS)}",
    )
    parser.add_argument(
        "--workers",
        type=lambda t: [int(n) for n in t.split(",")],
        default=[0, 2],
        help="data-loader worker counts to time (comma-separated)",
    )
    parser.add_argument("--pipeline-warmup", dest="pipeline_warmup", type=int, default=1)
    parser.add_argument("--pipeline-repeats", dest="pipeline_repeats", type=int, default=5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    add_arguments(parser)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--memory-case", help=argparse.SUPPRESS)  # internal: one configuration's memory
    args = parser.parse_args(argv)
    if args.memory_case:
        print(json.dumps(measure_one_case_memory(args)))
        return
    with tempfile.TemporaryDirectory() as folder:
        ensure_data(args, folder)
        machine = machine_info("cpu")
        results = run(args)
    print(format_table(results))
    if args.json:
        write_json(
            args.json, machine, {k: v for k, v in vars(args).items() if k not in ("json", "memory_case")}, results
        )


if __name__ == "__main__":
    main()
