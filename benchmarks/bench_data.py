"""Data throughput: `MampSkeletonProcessor`, the SYNTHETIC action generator, and the preparation of raw NTU
`.skeleton` files (with the authors' preparation scripts side by side when a checkout of their code is given).

    python benchmarks/bench_data.py
    python benchmarks/bench_data.py --official-repo /path/to/MAMP --json benchmarks/results/data.json

Workloads (all inputs SYNTHETIC, from `mamp_hub.data.synthetic`: 60-200 frames, 20% with two persons):
- processor: a batch of `--batch-size` rows of an NTU `.npz` ((B, 300, 150), zero-padded) -> `(B, 2, T, 25, 3)`,
  evaluation transform (central 95% crop) and training transform (random crop + rotation). "one call per
  sequence" is the same processor called on one sequence at a time, as a per-item data set would.
- generator: `generate_synthetic_actions(--generator-samples)`, sequences per second (the padded (N, 300, 150)
  output included).
- NTU files: `--skeleton-files` `.skeleton` files in the NTU text format (bodies of the synthetic sequences, and
  a short spurious body in one file of five, so that denoising runs), read, denoised and centred one by one in
  this process. With `--official-repo`, the authors' scripts (`data/ntu/get_raw_skes_data.py`,
  `get_raw_denoised_data.py`, `seq_transformation.py`'s centring) on the same files, after a check that both
  give the same arrays. "end to end" runs `prepare_ntu` on the files (worker processes, `.npz` writing).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.machinery
import importlib.util
import io
import logging
import os
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    Result,
    configure_torch,
    format_table,
    interleaved_timings,
    machine_info,
    median_throughput,
    write_json,
)

from mamp_hub import MampSkeletonProcessor
from mamp_hub.data.prepare_ntu import prepare_ntu, process_skeleton_file
from mamp_hub.data.synthetic import generate_synthetic_actions

# ---------------------------------------------------------------------------------------------------- inputs


def write_skeleton_files(folder: Path, count: int, seed: int) -> list[Path]:
    """`count` NTU-format `.skeleton` files from synthetic sequences (their second person as a second body, and
    in every fifth file a spurious body seen for 8 frames)."""
    data = generate_synthetic_actions(count, seed=seed)
    sequences = data.sequences.reshape(count, 300, 2, 25, 3)
    info = "0 1 1 1 1 0 0.01 -0.02 2"
    joint_tail = "250.1 180.2 960.3 540.4 0.5 0.1 0.2 0.3 2"
    paths = []
    for index in range(count):
        frames = sequences[index, : data.lengths[index]] + np.array([0.0, 0.2, 3.0], dtype=np.float32)
        two_persons = np.abs(frames[:, 1]).sum() > 0
        lines = [str(len(frames))]
        for t, persons in enumerate(frames):
            bodies = [("72057594037931101", persons[0])]
            if two_persons:
                bodies.append(("72057594037931102", persons[1]))
            if index % 5 == 0 and 10 <= t < 18:
                bodies.append(("72057594037931199", persons[0] + 0.5))
            lines.append(str(len(bodies)))
            for body_id, joints in bodies:
                lines += [f"{body_id} {info}", "25"]
                lines += [f"{x:.7f} {y:.7f} {z:.7f} {joint_tail}" for x, y, z in joints]
        action, replication, performer, camera = np.unravel_index(index, (60, 2, 40, 3))  # a distinct name each
        path = folder / f"S001C{camera + 1:03d}P{performer + 1:03d}R{replication + 1:03d}A{action + 1:03d}.skeleton"
        path.write_text("\r\n".join(lines) + "\r\n")
        paths.append(path)
    return paths


def import_authors_ntu_scripts(repo: Path, workdir: Path) -> types.SimpleNamespace:
    """The authors' NTU preparation modules from a checkout (nothing of it is part of mamp-hub). They were
    written for numpy 1.x (`np.int`), create log folders in the working directory when imported, and their
    centring module imports sklearn (unused by the centring): shims cover the three, in this process only."""
    scripts = repo / "data" / "ntu"
    if not (scripts / "get_raw_denoised_data.py").is_file():
        raise ValueError(f"{repo} is not a checkout of the authors' MAMP code (no data/ntu/get_raw_denoised_data.py).")
    np.int = int  # removed in numpy 1.24; their scripts use it for frame indices
    for name in ("sklearn", "sklearn.model_selection"):
        module = types.ModuleType(name)
        module.train_test_split = None
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules.setdefault(name, module)

    def load(file: str) -> types.ModuleType:
        spec = importlib.util.spec_from_file_location(f"authors_{file[:-3]}", scripts / file)
        module = importlib.util.module_from_spec(spec)
        with contextlib.chdir(workdir), contextlib.redirect_stdout(io.StringIO()):
            spec.loader.exec_module(module)
        return module

    return types.SimpleNamespace(
        raw=load("get_raw_skes_data.py"), denoise=load("get_raw_denoised_data.py"), centre=load("seq_transformation.py")
    )


def authors_process(authors: types.SimpleNamespace, path: Path, workdir: Path) -> np.ndarray:
    """One file through the authors' steps: raw bodies, denoising and actor selection, centring."""
    name = path.name[: -len(".skeleton")]
    with contextlib.chdir(workdir), contextlib.redirect_stdout(io.StringIO()):
        bodies = authors.raw.get_raw_bodies_data(str(path.parent), name, {}, authors.logger)
        if len(bodies["data"]) == 1:
            joints, _ = authors.denoise.get_one_actor_points(next(iter(bodies["data"].values())), bodies["num_frames"])
        else:
            joints, colors = authors.denoise.get_two_actors_points(bodies)
            joints, _ = authors.denoise.remove_missing_frames(name, joints, colors)
        return authors.centre.seq_translation([joints])[0]


# ---------------------------------------------------------------------------------------------------- run


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> list[Result]:
    configure_torch(args.threads)
    results: list[Result] = []

    def timed(task: str, unit: str, calls: dict[tuple[str, str], Callable[[], object]], items: int) -> None:
        seconds = interleaved_timings(
            {f"{impl} {opt}": call for (impl, opt), call in calls.items()}, 1, args.repeats, log=log
        )
        for (implementation, options), call_seconds in zip(calls, seconds.values(), strict=True):
            throughput = median_throughput(call_seconds, items)
            results.append(Result(task, implementation, unit, options=options, throughput=throughput,
                                  seconds=call_seconds, items_per_call=items))  # fmt: skip

    # Processor.
    data = generate_synthetic_actions(args.batch_size, seed=args.seed)
    rows = data.sequences  # (B, 300, 150), as a data set's items stacked by the collator
    processor = MampSkeletonProcessor(num_frames=args.num_frames)
    for task, training in (("processor, evaluation transform", False), ("processor, training transform", True)):
        log(task)
        timed(task, "sequences/s", {
            ("mamp-hub", "batched"): lambda training=training: processor(rows, training=training, layout="ntu_flat"),
            ("mamp-hub", "one call per sequence"): lambda training=training: [
                processor(row, training=training, layout="ntu_flat") for row in rows
            ],
        }, len(rows))  # fmt: skip

    # Generator.
    log("synthetic generator")
    timed("synthetic generator", "sequences/s", {
        ("mamp-hub", ""): lambda: generate_synthetic_actions(args.generator_samples, seed=args.seed),
    }, args.generator_samples)  # fmt: skip

    # NTU .skeleton files.
    with tempfile.TemporaryDirectory() as folder:
        raw, workdir = Path(folder) / "raw", Path(folder) / "work"
        raw.mkdir()
        workdir.mkdir()
        paths = write_skeleton_files(raw, args.skeleton_files, args.seed)
        log(f"NTU .skeleton files: {len(paths)} written to {raw}")
        calls = {("mamp-hub", "one process"): lambda: [process_skeleton_file(path) for path in paths]}
        if args.official_repo:
            authors = import_authors_ntu_scripts(Path(args.official_repo).resolve(), workdir)
            authors.logger = logging.getLogger("authors_frames_drop")
            same = all(
                np.array_equal(process_skeleton_file(path), authors_process(authors, path, workdir)) for path in paths
            )
            log(f"  parity with the authors' scripts on {len(paths)} files: {'identical arrays' if same else 'DIFFER'}")
            calls[("authors", "one process")] = lambda: [authors_process(authors, path, workdir) for path in paths]
        timed("NTU .skeleton -> denoised, centred sequence", "files/s", calls, len(paths))

        workers = os.cpu_count() or 1
        log(f"NTU preparation end to end ({workers} workers)")
        timed("NTU preparation end to end (.skeleton -> .npz)", "files/s", {
            ("mamp-hub", f"{workers} workers"): lambda: prepare_ntu(
                [raw], Path(folder) / "out", "ntu60", num_workers=workers, max_frames=300, progress=False
            ),
        }, len(paths))  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-repo", help="checkout of github.com/maoyunyao/MAMP, to time the authors' scripts")
    parser.add_argument("--batch-size", type=int, default=256, help="sequences per processor call")
    parser.add_argument("--num-frames", type=int, default=120, help="the processor's output frames")
    parser.add_argument("--generator-samples", type=int, default=2048)
    parser.add_argument("--skeleton-files", type=int, default=200, help="at most 14,400")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    machine = machine_info("cpu")
    print("machine: " + ", ".join(f"{key} {value}" for key, value in machine.items()))
    results = run(args)
    print(format_table(results))
    if args.json:
        write_json(args.json, machine, {k: v for k, v in vars(args).items() if k != "json"}, results)
        print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
