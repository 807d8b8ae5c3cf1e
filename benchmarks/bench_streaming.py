"""Windowed and streaming recognition: windows per second over a recording, and the latency of one `push` of `stride`
frames, for PyTorch and ONNX Runtime at the checkpoint's default window and stride.

    python benchmarks/bench_streaming.py --json benchmarks/results/<date>_cpu2_streaming.json
    python benchmarks/bench_streaming.py --device cuda          # PyTorch on the GPU (ONNX Runtime stays on the CPU)
    python benchmarks/bench_streaming.py --smoke                # a tiny model and a short recording: seconds

Workload: the paper's classifier (width 256, 8 layers, 8 heads, 120 frames; the fine-tuning head, NTU-60's 60
classes), randomly initialised (the weights do not change the speed), and so the default window of 126 frames
(`round(120 / 0.95)`) and stride of 31. The recording is one person moving for `--seconds` at 30 fps (a second,
absent person slot: PyTorch skips it, the ONNX graph encodes every slot).
- offline: `recognize_recording` over the whole recording (what `pipeline(recording, window=...)` runs), windows in
  batches of each `--batch-sizes`; windows/s from the median call.
- push: a `StreamingActionRecognizer` fed `stride` frames per `push`, each push completing one window (cut from the
  ring buffer, prepared by the processor, classified, returned); median and 95th percentile over `--pushes` pushes.
The runtimes take turns call by call (`common.interleaved_timings`). `run(options(argv))` returns the rows as dicts,
for `run_all.py`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_onnx import CLASSIFICATION, build_model
from common import configure_torch, interleaved_timings, machine_info
from flops import encoded_slots, feature_flops_per_slot

from mamp_hub import MampSkeletonProcessor, StreamingActionRecognizer
from mamp_hub.recognition import read_recording, recognize_recording
from mamp_hub.recognition.runners import OnnxRunner, TorchRunner
from mamp_hub.recognition.windows import default_stride, default_window

FRAME_RATE = 30
SMOKE = {"hidden_size": 32, "layers": 1, "num_frames": 16, "seconds": 4, "batch_sizes": [1, 4], "pushes": 5}


def one_person_moving(frames: int, seed: int = 0) -> np.ndarray:
    """`(frames, 25, 3)` float32: a pose drifting smoothly."""
    rng = np.random.default_rng(seed)
    drift = np.cumsum(rng.normal(scale=0.01, size=(frames, 1, 3)), axis=0)
    return (rng.normal(scale=0.3, size=(1, 25, 3)) + drift + [0.0, 0.0, 3.0]).astype(np.float32)


def runners(args: argparse.Namespace, folder: Path, log=print) -> dict[str, Callable]:
    """The PyTorch model and (unless `--no-onnx`) its ONNX Runtime export, as window runners."""
    model = build_model(CLASSIFICATION, args).to(args.device)  # bench_onnx's: NTU-60's 60 classes
    found = {"PyTorch": TorchRunner(model, MampSkeletonProcessor(num_frames=args.num_frames))}
    if args.onnx:
        import onnxruntime

        from mamp_hub.tools.onnx_export import export_onnx

        export = export_onnx(model.cpu(), folder / "classifier.onnx")
        model.to(args.device)
        log(f"exported to ONNX, ONNX Runtime vs PyTorch max |difference| {export.max_abs_difference}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(str(export.path), options, providers=["CPUExecutionProvider"])
        found["ONNX Runtime"] = OnnxRunner(session, found["PyTorch"].processor)
    return found


def run(args: argparse.Namespace, log=print) -> list[dict[str, object]]:
    """Time offline windows/s and push latency; one dict per (measure, runtime[, batch size])."""
    configure_torch(args.threads)
    window = default_window(args.num_frames, 0.95)
    stride = default_stride(window)
    frames = round(args.seconds * FRAME_RATE)
    with tempfile.TemporaryDirectory() as folder:
        found = runners(args, Path(folder), log)
    recording = read_recording(one_person_moving(frames), found["PyTorch"].processor)
    labels = found["PyTorch"].config.id2label
    per_slot = feature_flops_per_slot(found["PyTorch"].config)  # one person slot of one window (benchmarks/flops.py)
    common = {"window": window, "stride": stride, "device": args.device}
    rows: list[dict[str, object]] = []

    for batch_size in args.batch_sizes:
        calls = {
            name: lambda runner=runner, b=batch_size: recognize_recording(
                recording, runner, labels, window, stride, max_persons=2, batch_size=b, return_windows=True
            )
            for name, runner in found.items()
        }
        windows = len(calls["PyTorch"]()["windows"])
        log(f"offline: {frames} frames, {windows} windows of {window} frames, stride {stride}, batch {batch_size}")
        for name, seconds in interleaved_timings(calls, args.warmup, args.repeats, args.device, log).items():
            # Each window holds one person of two slots; PyTorch is given present_persons per batch of windows.
            batches = [min(batch_size, windows - start) for start in range(0, windows, batch_size)]
            slots = sum(encoded_slots(size, 2 * size, name == "PyTorch") for size in batches)
            rows.append(
                {
                    "task": "windowed recognition (offline)",
                    "implementation": name,
                    "unit": "windows/s",
                    "batch_size": batch_size,
                    "throughput": windows / float(np.median(seconds)),
                    "items_per_call": windows,
                    "seconds": [round(s, 4) for s in seconds],
                    "flops_per_call": slots * per_slot,
                    "gflops_per_s": slots * per_slot / float(np.median(seconds)) / 1e9,
                    **common,
                }
            )

    stream = one_person_moving(window + stride * (args.warmup + args.pushes + 1), seed=1)
    pushes = {name: pusher(runner, stream, window, stride) for name, runner in found.items()}
    log(f"push: {stride} frames per push, each completing a window of {window}")
    for name, seconds in interleaved_timings(pushes, args.warmup, args.pushes, args.device, log).items():
        milliseconds = 1000 * np.asarray(seconds)
        rows.append(
            {
                "task": "streaming push",
                "implementation": name,
                "unit": "ms per push",
                "batch_size": 1,
                "median_ms": float(np.median(milliseconds)),
                "p95_ms": float(np.percentile(milliseconds, 95)),
                "items_per_call": stride,
                "seconds": [round(s, 4) for s in seconds],
                "flops_per_call": encoded_slots(1, 2, name == "PyTorch") * per_slot,  # one window
                "gflops_per_s": encoded_slots(1, 2, name == "PyTorch") * per_slot / float(np.median(seconds)) / 1e9,
                **common,
            }
        )
    return rows


def pusher(runner: TorchRunner | OnnxRunner, stream: np.ndarray, window: int, stride: int) -> Callable[[], list]:
    """A call that pushes the next `stride` frames of `stream` into a recognizer of `runner`'s model (or ONNX
    session), primed so that every push completes one window."""
    source = runner.model if isinstance(runner, TorchRunner) else runner.session
    recognizer = StreamingActionRecognizer(source, window, stride, processor=runner.processor)
    recognizer.push(stream[: window - stride])
    starts = iter(range(window - stride, len(stream), stride))

    def push() -> list[dict]:
        start = next(starts)
        windows = recognizer.push(stream[start : start + stride])
        if len(windows) != 1:
            raise RuntimeError(f"a push of one stride completed {len(windows)} windows, not 1")
        return windows

    return push


def format_rows(rows: list[dict[str, object]], peak_gflops: float | None = None) -> str:
    """Markdown table; with `peak_gflops` (a measured matmul peak), the FLOP rate's share of it."""
    lines = [
        "| measure | runtime | device | window / stride | batch | result | GFLOP/s | % of peak |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row["unit"] == "windows/s":
            result = f"{row['throughput']:,.1f} windows/s"
        else:
            result = f"median {row['median_ms']:,.1f} ms, p95 {row['p95_ms']:,.1f} ms"
        device = "cpu" if row["implementation"] == "ONNX Runtime" else row["device"]
        share = f"{100 * row['gflops_per_s'] / peak_gflops:.0f}%" if peak_gflops else ""
        lines.append(
            f"| {row['task']} | {row['implementation']} | {device} | {row['window']} / {row['stride']} | "
            f"{row['batch_size']} | {result} | {row['gflops_per_s']:,.1f} | "
            f"{share} |"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hidden-size", type=int, default=256, help="model width (paper: 256; 8 heads)")
    parser.add_argument("--layers", type=int, default=8, help="encoder layers (paper: 8)")
    parser.add_argument("--num-frames", type=int, default=120, help="model frames: the window is round(T / 0.95)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the offline recording at 30 fps")
    parser.add_argument("--batch-sizes", type=lambda text: [int(v) for v in text.split(",")], default=[1, 8])
    parser.add_argument("--pushes", type=int, default=30, help="timed pushes per runtime (median and p95)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per runtime")
    parser.add_argument("--repeats", type=int, default=3, help="timed offline calls per runtime (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime threads")
    parser.add_argument("--device", default="cpu", help="where PyTorch runs")
    parser.add_argument("--no-onnx", dest="onnx", action="store_false", help="time PyTorch only")
    parser.add_argument("--smoke", action="store_true", help="a tiny model, a 4 s recording, 5 pushes: a quick check")


def options(argv: list[str] | None = None) -> argparse.Namespace:
    """This script's options (`--smoke` applied), for `run`: `run(options(["--smoke"]))` from another script."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--json", help="write the machine, settings and rows here")
    args = parser.parse_args(argv)
    if args.smoke:
        for name, value in SMOKE.items():
            setattr(args, name, value)
        args.warmup, args.repeats = 1, 1
    return args


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    args = options(argv)
    rows = run(args)
    print(format_rows(rows))
    if args.json:
        payload = {"machine": machine_info(args.device), "settings": vars(args), "results": rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
