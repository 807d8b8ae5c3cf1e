"""Every benchmark in one run, and the one results file the speed tables of README.md and benchmarks/README.md are
generated from (`render.py`): the matmul peak of the machine, the model (feature extraction, pre-training step),
the input pipeline (transforms, data loader), ONNX Runtime against PyTorch, and windowed and streaming recognition.

    python benchmarks/run_all.py --official-repo /path/to/MAMP           # writes benchmarks/results/run_all_cpu.json
    python benchmarks/render.py                                          # regenerates the tables from it
    python benchmarks/run_all.py --device cuda --official-repo /path/to/MAMP --only model

The results file holds the date, the machine, the mamp-hub commit and the settings beside every timing. The options
of `bench_model.py` and `bench_pipeline.py` apply (see `--help`); the ONNX and streaming sections run at their
scripts' defaults. The input pipeline, ONNX Runtime and streaming run on the CPU, whatever `--device` is.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_model
import bench_onnx
import bench_pipeline
import bench_streaming
from common import add_common_arguments, configure_torch, format_table, machine_info, result_row
from flops import matmul_peak

SECTIONS = ("model", "pipeline", "onnx", "streaming")
# glibc malloc tunables: no mmap for large blocks, no trimming of the heap (freed memory stays for reuse).
FREED_MEMORY_KEPT = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=100000000000"


def run_sections(args: argparse.Namespace, peak: float, save, log=print) -> dict[str, list[dict]]:
    """The rows of each section in `args.only`, as the results file stores them; `save(sections)` after each."""
    sections: dict[str, list[dict]] = {}
    if "model" in args.only:
        results = bench_model.run(args, log)
        log(format_table(results, peak))
        sections["model"] = [result_row(r, results) for r in results]
        if "pretraining" in args.tasks and args.device == "cpu":
            sections["model"] += pretraining_with_freed_memory_kept(args, sections["model"], log)
        save(sections)
    with tempfile.TemporaryDirectory() as folder:
        if "pipeline" in args.only:
            bench_pipeline.ensure_data(args, folder)
            results = bench_pipeline.run(args, log)
            log(format_table(results))
            sections["pipeline"] = [result_row(r, results) for r in results]
            save(sections)
        if "onnx" in args.only:
            onnx_args = bench_onnx.options(["--threads", str(args.threads)] if args.threads else [])
            results = bench_onnx.run(onnx_args, Path(folder), log)
            log(bench_onnx.format_onnx_table(results, peak))
            sections["onnx"] = [result_row(r, results) for r in results]
            save(sections)
    if "streaming" in args.only:
        rows = bench_streaming.run(
            bench_streaming.options(["--threads", str(args.threads)] if args.threads else []), log
        )
        log(bench_streaming.format_rows(rows, peak))
        sections["streaming"] = rows
    return sections


def pretraining_with_freed_memory_kept(args: argparse.Namespace, rows: list[dict], log=print) -> list[dict]:
    """mamp-hub's default pre-training step timed in a process of its own whose glibc malloc keeps freed memory for
    reuse (`FREED_MEMORY_KEPT`), its speed-up taken over the authors' row of the interleaved rounds of this run.

    glibc serves blocks over 32 MB with a fresh mmap and unmaps them when freed, so every step page-faults its
    activations in anew (a third of the step's time on 2 EPYC cores). Kept, they are reused; the process stays at
    its peak memory. In a process of its own because the setting is per process and the authors' code, interleaved
    with it, would share (and fragment) the same heap."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "pretraining.json"
        options = {
            "--tasks": "pretraining",
            "--attention": "sdpa",
            "--dtypes": "float32",
            "--batch-size": args.batch_size,
            "--num-frames": args.num_frames,
            "--decoder-layers": args.decoder_layers,
            "--seed": args.seed,
            "--threads": args.threads or 0,
            "--warmup": args.warmup,
            "--repeats": args.repeats,
            "--row-note": "freed memory kept",
            "--json": output,
        }
        command = [sys.executable, bench_model.__file__, "--no-skip-absent", "--no-memory"]
        command += [str(part) for option in options.items() for part in option]
        log(f"pre-training step in a process of its own, GLIBC_TUNABLES={FREED_MEMORY_KEPT}")
        subprocess.run(command, env={**os.environ, "GLIBC_TUNABLES": FREED_MEMORY_KEPT}, check=True)
        kept = json.loads(output.read_text())["results"]
    authors = next((r for r in rows if r["task"] == bench_model.PRETRAINING and r["implementation"] == "authors"), None)
    for row in kept:
        row["speedup_over_authors"] = row["throughput"] / authors["throughput"] if authors else None
    return kept


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    bench_model.add_arguments(parser)
    bench_pipeline.add_arguments(parser)
    parser.add_argument(
        "--only", type=bench_model.comma_list(SECTIONS), default=list(SECTIONS), help="sections to run, comma-separated"
    )
    parser.add_argument("--json", help="where to write the results (default: benchmarks/results/run_all_<device>.json)")
    args = bench_model.normalise(parser.parse_args(argv))
    configure_torch(args.threads)
    path = Path(args.json or Path(__file__).parent / "results" / f"run_all_{args.device.split(':')[0]}.json")

    machine = machine_info(args.device)
    machine["matmul_gflops"] = matmul_peak(args.device)  # {"256": ..., "2048": ..., "peak": ...}
    print("machine: " + ", ".join(f"{key} {value}" for key, value in machine.items()))
    settings = {key: value for key, value in vars(args).items() if key != "json"}

    def write(sections: dict[str, list[dict]]) -> None:
        settings["epoch_minutes"] = bench_model.epoch_minutes(sections.get("model", []))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"machine": machine, "settings": settings, "sections": sections}, indent=2) + "\n")

    sections = run_sections(args, machine["matmul_gflops"]["peak"], write)
    machine["matmul_gflops_at_end"] = matmul_peak(args.device)  # a busier machine shows here
    write(sections)
    print(f"results written to {path}; `python benchmarks/render.py {path}` regenerates the READMEs' tables")


if __name__ == "__main__":
    main()
