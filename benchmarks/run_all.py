"""Every benchmark in one run: the model (feature extraction, pre-training step) and the input pipeline (transforms,
data loader), one table printed and one JSON file written.

    python benchmarks/run_all.py --official-repo /path/to/MAMP --json benchmarks/results/cpu.json
    python benchmarks/run_all.py --device cuda --official-repo /path/to/MAMP --json benchmarks/results/gpu.json

All options of `bench_model.py` and `bench_pipeline.py` apply (see `--help`); the input pipeline always runs on
the CPU, where data loading happens.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_model
import bench_pipeline
from common import add_common_arguments, format_table, machine_info, write_json


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    bench_model.add_arguments(parser)
    bench_pipeline.add_arguments(parser)
    parser.add_argument("--only", choices=("model", "pipeline"), help="run one of the two benchmarks")
    parser.add_argument("--json", default="benchmarks/results.json", help="where to write the results")
    args = bench_model.normalise(parser.parse_args(argv))

    machine = machine_info(args.device)
    print("machine: " + ", ".join(f"{key} {value}" for key, value in machine.items()))
    results = []
    if args.only != "pipeline":
        results += bench_model.run(args)
    if args.only != "model":
        with tempfile.TemporaryDirectory() as folder:
            bench_pipeline.ensure_data(args, folder)
            results += bench_pipeline.run(args)

    print(format_table(results))
    minutes = bench_model.epoch_minutes(results)
    for name, value in minutes.items():
        print(f"pre-training epoch of NTU-60 X-Sub size, {name}: {value} min")
    settings = {key: value for key, value in vars(args).items() if key != "json"}
    write_json(args.json, machine, {**settings, "epoch_minutes": minutes}, results)
    print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
