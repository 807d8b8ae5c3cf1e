"""ONNX Runtime (CPU) against PyTorch: clips per second for feature extraction and classification.

    python benchmarks/bench_onnx.py --json benchmarks/results/<date>_cpu2_onnx.json
    python benchmarks/bench_onnx.py --batch-sizes 1,8,32 --threads 2

Workload: the paper's default model (hidden 256, 8 layers, 8 heads, 120 frames, 25 joints, segments of 4 frames:
750 tokens per body), randomly initialised (the weights do not change the speed); classification adds the
fine-tuning head with NTU-60's 60 classes. Inputs are `common.ntu_mix_batch`: two body slots, NTU-60's share of
clips (49/60) with an all-zero second body, so at batch 32, 26 second bodies are absent; a batch of 1 is one
one-person clip.

Each model is exported with `mamp_hub.tools.onnx_export.export_onnx` (which checks ONNX Runtime against PyTorch to 1e-4
first), then each batch size is timed with the three runtimes taking turns (`common.interleaved_timings`):
- PyTorch, absent persons skipped: `model(skeleton_values, present_persons=...)` under `torch.inference_mode()`
  (SDPA, float32), as a batch from `MampSkeletonProcessor` runs: absent slots are encoded once per batch.
- PyTorch, every person slot: `model(skeleton_values)`, the work the ONNX graph does.
- ONNX Runtime: an `InferenceSession` on the CPU execution provider (default graph optimisations), with as many
  intra-op threads as torch uses.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import onnxruntime
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_model import comma_list
from common import (
    Result,
    configure_torch,
    interleaved_timings,
    machine_info,
    median_throughput,
    ntu_mix_batch,
    write_json,
)
from flops import encoded_slots, feature_flops_per_slot

from mamp_hub import MampConfig, MampForSkeletonClassification, MampModel
from mamp_hub.skeletons.layouts import present_person_slots
from mamp_hub.tools.onnx_export import INPUT_NAME, export_onnx

FEATURES, CLASSIFICATION = "feature extraction", "classification"
TASKS = {"features": FEATURES, "classification": CLASSIFICATION}  # command-line name -> table name
EVERY_SLOT = "every person slot"
RUNTIMES = {  # name in the log -> (implementation, options) of its row
    "pytorch-skipping": ("PyTorch", "absent persons skipped"),
    "pytorch-every-slot": ("PyTorch", EVERY_SLOT),
    "onnxruntime": ("ONNX Runtime", EVERY_SLOT),
}


def build_model(task: str, args: argparse.Namespace) -> MampModel | MampForSkeletonClassification:
    """A randomly initialised model of the benchmark's size, in eval mode."""
    config = MampConfig(
        num_frames=args.num_frames,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.layers,
        intermediate_size=4 * args.hidden_size,
        decoder_num_hidden_layers=1,  # no decoder in these models; it may not be deeper than the encoder
        num_labels=60,
        classifier_head="finetune",
    )
    model_class = MampModel if task == FEATURES else MampForSkeletonClassification
    return model_class(config).eval()


def make_calls(
    model: MampModel | MampForSkeletonClassification, session: onnxruntime.InferenceSession, skeletons: torch.Tensor
) -> dict[str, Callable[[], object]]:
    """One batch through each runtime; every call returns its outputs, so none is optimised away."""
    present = present_person_slots(skeletons)
    values = skeletons.numpy()

    def pytorch_skipping():
        with torch.inference_mode():
            return model(skeletons, present_persons=present)

    def pytorch_every_slot():
        with torch.inference_mode():
            return model(skeletons)

    return {
        "pytorch-skipping": pytorch_skipping,
        "pytorch-every-slot": pytorch_every_slot,
        "onnxruntime": lambda: session.run(None, {INPUT_NAME: values}),
    }


def run(args: argparse.Namespace, folder: Path, log=print) -> list[Result]:
    configure_torch(args.threads)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    results = []
    for task in (TASKS[key] for key in args.tasks):
        model = build_model(task, args)
        export = export_onnx(model, folder / f"{task.replace(' ', '_')}.onnx")
        log(f"{task}: exported, ONNX Runtime vs PyTorch max |difference| {export.max_abs_difference}")
        session = onnxruntime.InferenceSession(str(export.path), options, providers=["CPUExecutionProvider"])
        for batch_size in args.batch_sizes:
            skeletons = ntu_mix_batch(batch_size, args.num_frames, seed=args.seed)
            present, slots = len(present_person_slots(skeletons)), skeletons.shape[0] * skeletons.shape[1]
            log(f"{task}, batch {batch_size} ({present} of {slots} slots present)")
            seconds = interleaved_timings(make_calls(model, session, skeletons), args.warmup, args.repeats, log=log)
            for name, timings in seconds.items():
                implementation, options_text = RUNTIMES[name]
                results.append(
                    Result(
                        task=task,
                        implementation=implementation,
                        unit="clips/s",
                        attention="sdpa" if implementation == "PyTorch" else "",
                        dtype="float32",
                        options=options_text,
                        throughput=median_throughput(timings, batch_size),
                        seconds=[round(s, 4) for s in timings],
                        items_per_call=batch_size,
                        # (the classifier head's FLOPs are negligible)
                        flops_per_call=encoded_slots(present, slots, options_text != EVERY_SLOT)
                        * feature_flops_per_slot(model.config),
                    )
                )
    return results


def format_onnx_table(results: list[Result], peak_gflops: float | None = None) -> str:
    """Markdown table, each row's speed against PyTorch on the same work (every person slot) at its batch size, and
    its FLOP rate (a share of `peak_gflops`, a measured matmul peak, when given)."""
    lines = [
        "| task | batch | runtime | variant | throughput | vs. PyTorch, every slot | GFLOP/s | % of peak |",
        "|---|---:|---|---|---:|---:|---:|---:|",
    ]
    baselines = {
        (r.task, r.items_per_call): r.throughput
        for r in results
        if r.implementation == "PyTorch" and r.options == EVERY_SLOT
    }
    for r in results:
        baseline = baselines[r.task, r.items_per_call]
        share = f"{100 * r.gflops_per_s / peak_gflops:.0f}%" if peak_gflops else ""
        lines.append(
            f"| {r.task} | {r.items_per_call} | {r.implementation} | {r.variant} | {r.throughput:,.1f} {r.unit} | "
            f"{r.throughput / baseline:.2f}x | {r.gflops_per_s:,.1f} | {share} |"
        )
    return "\n".join(lines)


def positive_ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"pass positive integers, comma-separated, e.g. 1,32; got {text!r}")
    return values


def options(argv: list[str] | None = None) -> argparse.Namespace:
    """This script's options, for `run`: `run(options([]), folder)` from another script."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=comma_list(tuple(TASKS)), default=list(TASKS))
    parser.add_argument("--batch-sizes", type=positive_ints, default=[1, 32])
    parser.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime threads (default: torch's)")
    parser.add_argument("--num-frames", type=int, default=120)
    parser.add_argument("--hidden-size", type=int, default=256, help="model width (paper: 256; 8 heads)")
    parser.add_argument("--layers", type=int, default=8, help="encoder layers (paper: 8)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per runtime")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per runtime (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[Result]:
    args = options(argv)
    configure_torch(args.threads)
    machine = {**machine_info("cpu"), "onnxruntime": onnxruntime.__version__}
    with tempfile.TemporaryDirectory() as folder:
        results = run(args, Path(folder))
    print(f"threads: torch {torch.get_num_threads()}, ONNX Runtime intra-op {torch.get_num_threads()}")
    print(format_onnx_table(results))
    if args.json:
        write_json(args.json, machine, {k: v for k, v in vars(args).items() if k != "json"}, results)
    return results


if __name__ == "__main__":
    main()
