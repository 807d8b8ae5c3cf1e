"""The default NTU-60 pre-training recipe on one GPU: sequences/s, MFU, peak memory and the projected 400-epoch time
in float32 (TF32 matmuls, as the recipe runs) / bf16 autocast / bf16 + torch.compile, the data loader's rate against
the step rate it must feed, and the GPU's forward against the CPU's. `benchmarks/gpu.sh` runs it.

    benchmarks/gpu.sh                                   # on a GPU machine (meant for under 5 minutes)
    benchmarks/gpu.sh --device cpu --smoke              # a tiny model and a few steps: the suite's smoke test

Workload: the model and global batch of `training/configs/ntu60_xsub/pretrain_mamp.yaml` (`--config`), on SYNTHETIC
clips of the same shapes made in memory (`mamp_hub.data.synthetic`: 300-row NTU arrays, 60-200 valid frames). A
timed step is what a recipe step does on one device: the padded batch copied to the device, the training transform
there (`PaddedSkeletonCollator.model_inputs`), forward and loss (under autocast for bf16), backward, the recipe's
optimizer (fused AdamW on a GPU) and one read of the loss on the host, as Trainer's NaN filter does every step.

FLOPs per clip: counted from the config by `flops.pretraining_flops_per_clip` (the formula is in benchmarks/flops.py;
the default recipe: 37.6 GFLOP per clip, 602 PFLOP for 400 epochs of NTU-60 X-sub).
MFU is the achieved FLOP rate over the card's dense peak for the matmul type of the mode (TF32 for float32 with
`torch.set_float32_matmul_precision("high")`, as `python -m training` sets it; bf16), from `PEAK_TFLOPS` by the
card's name; the rate of a square matmul loop measured on the same device is printed beside it. On a CPU only the
measured one exists.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: training/
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NTU60_XSUB_TRAIN_SAMPLES, machine_info
from flops import matmul_gflops, pretraining_flops_per_clip

from mamp_hub import MampConfig, MampForMaskedMotionPrediction
from mamp_hub.data import ArraySkeletonDataset, PaddedSkeletonCollator, SkeletonDataCollator
from mamp_hub.data.synthetic import generate_synthetic_actions
from mamp_hub.tools.cli import console_script
from training.config import load_config
from training.data import build_processor
from training.optimization import optimizer_class_and_kwargs

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "training" / "configs" / "ntu60_xsub" / "pretrain_mamp.yaml"
EPOCHS = 400
GOAL_HOURS = 2.0  # 400 epochs of NTU-60 X-sub on one H100: 10x the authors' reported wall clock
MODES = ("fp32", "bf16", "bf16+compile")
# Dense peak TFLOP/s (no sparsity) from the vendors' data sheets: (name pattern, bf16, tf32, fp32). First match wins.
PEAK_TFLOPS: list[tuple[str, float, float, float]] = [
    (r"H200", 989.0, 494.0, 67.0),
    (r"H100.*PCIe", 756.0, 378.0, 51.0),
    (r"H100", 989.0, 494.0, 67.0),  # SXM ("NVIDIA H100 80GB HBM3")
    (r"A100", 312.0, 156.0, 19.5),
    (r"L40S", 362.0, 183.0, 91.6),
    (r"RTX 4090", 165.2, 82.6, 82.6),
    (r"\bL4\b", 121.0, 60.0, 30.3),
]
# The smoke run's model: the tests' tiny size (width 32, 2 + 1 layers, 16 frames, 100 tokens per slot).
SMOKE_MODEL = {
    "num_frames": 16, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
    "decoder_hidden_size": 32, "decoder_num_hidden_layers": 1, "decoder_num_attention_heads": 4,
    "decoder_intermediate_size": 64,
}  # fmt: skip


# ------------------------------------------------------------------------------------------------------ peaks


def spec_peak_tflops(device_name: str, mode: str) -> float | None:
    """The card's dense peak for the matmuls of `mode` (bf16, or TF32/fp32 for float32), None for unknown cards."""
    for pattern, bf16, tf32, fp32 in PEAK_TFLOPS:
        if re.search(pattern, device_name):
            if mode.startswith("bf16"):
                return bf16
            return tf32 if torch.get_float32_matmul_precision() != "highest" else fp32
    return None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------------- training step


@dataclass
class StepResult:
    mode: str
    sequences_per_s: float
    step_ms: float
    tflops: float
    mfu_spec: float | None
    mfu_measured: float | None
    peak_memory_gb: float | None
    hours_400_epochs: float


def padded_batches(processor, clips, batch_size: int, count: int, device: torch.device) -> list[dict]:
    """`count` loader batches of `PaddedSkeletonCollator` from the synthetic clips, in (pinned) host memory."""
    collator = PaddedSkeletonCollator(processor, layout="ntu_flat", return_labels=False)
    batches = []
    for index in range(count):
        rows = range(index * batch_size, (index + 1) * batch_size)
        batch = collator([{"skeleton_values": clips.sequences[r % len(clips.labels)]} for r in rows])
        batches.append({k: v.pin_memory() if device.type == "cuda" else v for k, v in batch.items()})
    return batches


def build_step(config: dict, model_config: MampConfig, processor, mode: str, device: torch.device) -> tuple:
    """(model, step) for one mode: `step(batch)` trains on a host batch and returns the loss, still on the device."""
    torch.manual_seed(0)
    model = MampForMaskedMotionPrediction(model_config).to(device).train()
    optimizer_class, kwargs = optimizer_class_and_kwargs(model, config["optimizer"], 1e-3, device.type)
    optimizer = optimizer_class(**kwargs)
    forward = torch.compile(model) if mode.endswith("compile") else model
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if mode.startswith("bf16") else nullcontext()
    collator = PaddedSkeletonCollator(processor)

    def step(batch: dict) -> torch.Tensor:
        inputs = collator.model_inputs({k: v.to(device, non_blocking=True) for k, v in batch.items()})
        with autocast:
            loss = forward(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return model, step


def time_mode(config, model_config, processor, batches, mode, device, args, flops_per_clip) -> StepResult:
    _, step = build_step(config, model_config, processor, mode, device)
    for index in range(args.warmup):  # compiles in the first calls
        step(batches[index % len(batches)]).item()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for index in range(args.steps):
        loss = step(batches[index % len(batches)]).item()  # Trainer reads every step's loss
    synchronize(device)
    seconds = (time.perf_counter() - start) / args.steps
    if not math.isfinite(loss):
        raise RuntimeError(f"{mode}: the loss is {loss}")
    batch_size = len(batches[0]["valid_frames"])
    rate = batch_size / seconds
    tflops = rate * flops_per_clip / 1e12
    spec = spec_peak_tflops(args.device_name, mode) if device.type == "cuda" else None
    measured = args.measured_peaks["bf16" if mode.startswith("bf16") else "fp32"]
    steps_per_epoch = NTU60_XSUB_TRAIN_SAMPLES // batch_size  # drop_last, as the recipe
    return StepResult(
        mode=mode,
        sequences_per_s=rate,
        step_ms=seconds * 1e3,
        tflops=tflops,
        mfu_spec=tflops / spec if spec else None,
        mfu_measured=tflops / measured,
        peak_memory_gb=torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        hours_400_epochs=EPOCHS * steps_per_epoch * batch_size / rate / 3600,
    )


def sync_check(config, model_config, processor, batch, device) -> str:
    """Runs one step (without the loss read) under `torch.cuda.set_sync_debug_mode("error")`."""
    if device.type != "cuda":
        return "not checked here (tests/test_host_syncs.py checks the step on the meta device)"
    _, step = build_step(config, model_config, processor, "fp32", device)
    step(batch)
    synchronize(device)
    torch.cuda.set_sync_debug_mode("error")
    try:
        step(batch)
    except RuntimeError as error:
        return f"the step synchronises: {str(error).splitlines()[0]}"
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return "none (one step under torch.cuda.set_sync_debug_mode('error'))"


def forward_difference(model_config: MampConfig, processor, clips, device: torch.device) -> float:
    """Max abs difference of the encoder output (pre-training forward, fixed noise, eval mode) between `device` and
    the CPU, both in float32 without TF32."""
    torch.manual_seed(0)
    model = MampForMaskedMotionPrediction(model_config).eval()
    values = processor(list(clips.sequences[:4]), layout="ntu_flat")["skeleton_values"]
    tokens = model_config.num_temporal_patches * model_config.num_joint_patches
    noise = torch.rand(len(values) * model_config.max_persons, tokens)
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with torch.no_grad():
            expected = model(values, noise=noise).encoder_last_hidden_state
            model.to(device)
            actual = model(values.to(device), noise=noise.to(device)).encoder_last_hidden_state.cpu()
    finally:
        torch.set_float32_matmul_precision(precision)
    return (actual - expected).abs().max().item()


# ----------------------------------------------------------------------------------------------------- loader


def loader_rates(processor, clips, batch_size: int, workers: Sequence[int], batches: int, device) -> list[dict]:
    """Batches/s of a DataLoader over the clips with the CPU transform in its workers (`SkeletonDataCollator`) and
    with padded rows only (`PaddedSkeletonCollator`, whose transform is in the timed step); the first batch (worker
    start-up) is not timed."""
    dataset = ArraySkeletonDataset(clips.sequences, clips.labels, layout="ntu_flat")
    tiled = Subset(dataset, np.arange((batches + 1) * batch_size) % len(dataset))
    collators = {
        "CPU transform in the workers": SkeletonDataCollator(processor, training=True, return_labels=False),
        "padded rows (device transform)": PaddedSkeletonCollator(processor, return_labels=False),
    }
    rows = []
    for name, collator in collators.items():
        for count in workers:
            loader = DataLoader(
                tiled, batch_size, shuffle=True, num_workers=count, collate_fn=collator, drop_last=True,
                pin_memory=device.type == "cuda",
            )  # fmt: skip
            iterator = iter(loader)
            next(iterator)
            start = time.perf_counter()
            for _ in range(batches):
                next(iterator)
            rate = batches / (time.perf_counter() - start)
            rows.append({"loader": name, "workers": count, "batches_per_s": rate, "sequences_per_s": rate * batch_size})
    return rows


# ------------------------------------------------------------------------------------------------------ report


def format_report(settings: dict, results: list[StepResult], loaders: list[dict], checks: dict) -> str:
    def percent(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    lines = [
        f"## {settings['title']}",
        "",
        f"{settings['device_name']}; torch {torch.__version__}; batch {settings['batch_size']}; "
        f"{settings['gflops_per_clip']:.2f} GFLOP per clip per step (module docstring); peak for MFU: "
        f"{settings['peak_source']}; measured matmul peak {settings['measured_peaks_text']}.",
        "",
        "| mode | sequences/s | step (ms) | TFLOP/s | MFU (card peak) | MFU (measured matmul) | peak memory (GiB) "
        f"| {EPOCHS} epochs NTU-60 X-sub |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        memory = "-" if r.peak_memory_gb is None else f"{r.peak_memory_gb:.2f}"
        lines.append(
            f"| {r.mode} | {r.sequences_per_s:,.1f} | {r.step_ms:.1f} | {r.tflops:.3g} | {percent(r.mfu_spec)} | "
            f"{percent(r.mfu_measured)} | {memory} | {r.hours_400_epochs:,.2f} h |"
        )
    recipe_batch = settings["recipe_batch_size"]
    steps_needed = NTU60_XSUB_TRAIN_SAMPLES // recipe_batch * EPOCHS / (GOAL_HOURS * 3600)
    best = max(results, key=lambda r: r.sequences_per_s)
    lines += [
        "",
        f"Goal: {EPOCHS} epochs of the recipe in under {GOAL_HOURS:g} h on one H100 = "
        f"{steps_needed * recipe_batch:,.0f} sequences/s ({steps_needed:.1f} steps/s of {recipe_batch}); best here: "
        f"{best.mode}, {best.sequences_per_s:,.1f} sequences/s.",
        "",
        "| loader | workers | batches/s | sequences/s | / steps/s of the best mode |",
        "|---|---:|---:|---:|---:|",
    ]
    best_steps = best.sequences_per_s / settings["batch_size"]
    for row in loaders:
        lines.append(
            f"| {row['loader']} | {row['workers']} | {row['batches_per_s']:,.1f} | {row['sequences_per_s']:,.0f} | "
            f"{row['batches_per_s'] / best_steps:.2f}x |"
        )
    lines += [
        "",
        f"Forward on {settings['device']} vs CPU, float32 encoder output: max abs diff "
        f"{checks['forward_max_abs_diff']:.3g}.",
        f"Host synchronisation in a step: {checks['syncs']}.",
        f"Total time: {checks['seconds']:.0f} s.",
    ]
    return "\n".join(lines)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/gpu.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="pre-training recipe (model, batch, optimizer)")
    parser.add_argument("--smoke", action="store_true", help="tiny model, batch 8, 2 steps, no compile: seconds")
    parser.add_argument("--modes", default=None, help=f"comma-separated, of {','.join(MODES)} (default: all)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per mode (default 30; smoke 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5; smoke 1)")
    parser.add_argument("--workers", default=None, help="loader worker counts, e.g. 0,4,8 (default; smoke 0)")
    parser.add_argument("--loader-batches", type=int, default=None, help="timed loader batches (default 20)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    smoke = args.smoke
    args.modes = (args.modes or ("fp32,bf16" if smoke else ",".join(MODES))).split(",")
    unknown = [mode for mode in args.modes if mode not in MODES]
    if unknown:
        parser.error(f"unknown --modes {unknown}; pass some of {','.join(MODES)}")
    args.steps = args.steps or (2 if smoke else 30)
    args.warmup = args.warmup if args.warmup is not None else (1 if smoke else 5)
    workers = args.workers or ("0" if smoke else ",".join(str(w) for w in (0, 4, 8) if w <= (os.cpu_count() or 1)))
    try:
        args.workers = [int(count) for count in workers.split(",")]
    except ValueError:
        parser.error(f"--workers takes comma-separated counts such as 0,4,8, got {workers!r}")
    args.loader_batches = args.loader_batches or (2 if smoke else 20)
    try:
        args.device = torch.device(args.device)
    except RuntimeError:
        parser.error(f"--device {args.device!r} is not a torch device; pass cuda, cuda:N or cpu")
    if args.device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU is visible here; pass --device cpu (with --smoke for a quick check)")
    if args.device.type not in ("cuda", "cpu"):
        parser.error(f"--device {args.device} is not supported; pass cuda or cpu")
    return args


@console_script("benchmarks/gpu.sh")
def main(argv: Sequence[str] | None = None) -> None:
    args = parse_arguments(argv)
    started = time.perf_counter()
    device = args.device
    torch.set_float32_matmul_precision("high")  # as `python -m training` runs: TF32 matmuls on Ampere and newer
    config = load_config(args.config)
    if config["protocol"] != "pretrain":
        raise ValueError(f"--config {args.config} is a {config['protocol']} recipe; pass a pre-training recipe.")
    model_options = {**config["model"], **(SMOKE_MODEL if args.smoke else {})}
    model_config = MampConfig(**model_options)
    processor = build_processor(config["data"], model_config)
    batch_size = 8 if args.smoke else int(config["schedule"]["global_batch_size"])
    args.device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else machine_info("cpu")["cpu"]
    size, seconds = (256, 0.1) if args.smoke else ((8192, 1.0) if device.type == "cuda" else (1024, 1.0))
    args.measured_peaks = {
        "fp32": matmul_gflops(device, torch.float32, size, rows=size, seconds=seconds) / 1000,
        "bf16": matmul_gflops(device, torch.bfloat16, size, rows=size, seconds=seconds) / 1000,
    }
    clips = generate_synthetic_actions(max(4 * batch_size, 64) if not args.smoke else 16, seed=0)
    batches = padded_batches(processor, clips, batch_size, 4, device)
    flops_per_clip = pretraining_flops_per_clip(model_config)

    results = []
    for mode in args.modes:
        print(f"timing {mode} ...", file=sys.stderr, flush=True)
        results.append(time_mode(config, model_config, processor, batches, mode, device, args, flops_per_clip))
    print("timing the loader ...", file=sys.stderr, flush=True)
    loaders = loader_rates(processor, clips, batch_size, args.workers, args.loader_batches, device)
    checks = {
        "forward_max_abs_diff": forward_difference(model_config, processor, clips, device),
        "syncs": sync_check(config, model_config, processor, batches[0], device),
        "seconds": time.perf_counter() - started,
    }
    spec = spec_peak_tflops(args.device_name, "bf16") if device.type == "cuda" else None
    settings = {
        "title": f"{'Smoke run (tiny model, not the recipe)' if args.smoke else Path(args.config).name} on {device}",
        "device": str(device),
        "device_name": args.device_name,
        "config": args.config,
        "smoke": args.smoke,
        "batch_size": batch_size,
        "recipe_batch_size": int(config["schedule"]["global_batch_size"]),
        "gflops_per_clip": flops_per_clip / 1e9,
        "peak_source": "the card's data sheet (PEAK_TFLOPS)" if spec else "none known: see the measured matmul peak",
        "measured_peaks_text": ", ".join(f"{k} {v:.3g} TFLOP/s" for k, v in args.measured_peaks.items()),
        "measured_peaks_tflops": args.measured_peaks,
        "steps": args.steps,
        "warmup": args.warmup,
    }
    report = format_report(settings, results, loaders, checks)
    print(report)
    payload = {
        "machine": machine_info(str(device)),
        "settings": settings,
        "results": [asdict(r) for r in results],
        "loader": loaders,
        "checks": checks,
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
