"""Shared pieces of the benchmarks: machine description, the NTU mix of inputs, interleaved timing, peak memory
in a fresh process, the authors' code imported from a checkout, and the result table.

Method (the same for every script):
- time: `time.perf_counter` around one call (one batch), after warm-up calls; the figure is the median over
  `repeats` calls. The implementations compared in one script run in ONE process and take turns call by call
  (A B C, B C A, ...), so that a slower or busier stretch of the machine hits all of them alike and the ratios
  stay fair on a shared machine.
- memory: each configuration runs again in a fresh Python process that builds it, resets the kernel's peak-RSS
  mark (/proc/self/clear_refs), runs warm-up + one call, and reads the peak (VmHWM in /proc/self/status).
  `peak_rss_mb` is the process's peak resident set (imports, model, data and the work); `work_mb` is how far the
  calls raised it above the resident set before them. Torch's CPU allocator returns large blocks to the system,
  so RSS follows the tensors (`tracemalloc` would not see them). `ru_maxrss` is not used: Linux carries the
  parent's peak into a forked child across exec. On CUDA the figures are `torch.cuda.max_memory_allocated`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

# 49 of the 60 NTU RGB+D 60 classes are single-person actions: that share of samples has an all-zero second body.
NTU60_SINGLE_PERSON_SHARE = 49 / 60
NTU60_XSUB_TRAIN_SAMPLES = 40_091


@dataclass
class Result:
    """One row of a benchmark table."""

    task: str
    implementation: str  # "mamp-hub" or "authors"
    unit: str  # what `throughput` counts per second, e.g. "samples/s"
    attention: str = ""  # "eager" / "sdpa" for model rows
    dtype: str = ""  # model rows: "float32" or "bfloat16" (autocast)
    options: str = ""  # e.g. "skip absent persons", "torch.compile", "2 workers"
    throughput: float | None = None  # items per second, from the median call
    seconds: list[float] = field(default_factory=list)  # every timed call
    items_per_call: int = 0
    peak_rss_mb: float | None = None
    work_mb: float | None = None
    exact: bool = True  # False: an opt-in option that changes the numbers
    flops_per_call: float | None = None  # matmul FLOPs one call computes (benchmarks/flops.py)

    @property
    def variant(self) -> str:
        return ", ".join(part for part in (self.attention, self.dtype, self.options) if part)

    @property
    def gflops_per_s(self) -> float | None:
        """The FLOP rate of the median call."""
        if self.flops_per_call is None or not self.throughput:
            return None
        return self.flops_per_call * self.throughput / self.items_per_call / 1e9


def add_common_arguments(parser) -> None:
    """Options every benchmark script takes."""
    parser.add_argument("--official-repo", help="checkout of github.com/maoyunyao/MAMP, to time the authors' code")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-frames", type=int, default=120)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    parser.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure the peak memory of every configuration in a fresh process",
    )
    parser.add_argument("--seed", type=int, default=0)


def configure_torch(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def machine_info(device: str) -> dict[str, object]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info: dict[str, object] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": device,
    }
    with contextlib.suppress(ImportError):
        import transformers

        info["transformers"] = transformers.__version__
    info["commit"] = source_commit()
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def source_commit() -> str:
    """The mamp-hub commit measured, with "+changes" when the checkout differs from it ("unknown" outside git)."""
    root = Path(__file__).resolve().parents[1]

    def git(*arguments: str) -> str:
        return subprocess.run(["git", *arguments], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def ntu_mix_batch(batch_size: int, num_frames: int = 120, seed: int = 0) -> torch.Tensor:
    """Random `(B, 2, T, 25, 3)` skeletons in which `round(B * 49 / 60)` samples (seeded choice) have an all-zero
    second body, as in NTU-60. The values do not matter for speed; which slots are empty does."""
    generator = torch.Generator().manual_seed(seed)
    skeletons = torch.randn(batch_size, 2, num_frames, 25, 3, generator=generator)
    single = torch.randperm(batch_size, generator=generator)[: round(batch_size * NTU60_SINGLE_PERSON_SHARE)]
    skeletons[single, 1] = 0
    return skeletons


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def interleaved_timings(
    functions: dict[str, Callable[[], object]], warmup: int, repeats: int, device: str = "cpu", log=print
) -> dict[str, list[float]]:
    """Seconds per call of each function: `warmup` untimed calls each, then `repeats` rounds in which every
    function is called once, the order rotating from round to round."""
    names = list(functions)
    for name in names:
        for _ in range(warmup):
            functions[name]()
        synchronize(device)
        log(f"  warmed up {name}")
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            synchronize(device)
            start = time.perf_counter()
            functions[name]()
            synchronize(device)
            seconds[name].append(time.perf_counter() - start)
        log(f"  round {round_index + 1}/{repeats}: " + ", ".join(f"{n} {seconds[n][-1]:.3f}s" for n in names))
    return seconds


def median_throughput(seconds: Sequence[float], items_per_call: int) -> float:
    return items_per_call / statistics.median(seconds)


# --------------------------------------------------------------------------------------------------- memory


def _proc_status_mb(key: str) -> float:
    """A size from /proc/self/status (Linux), in MiB."""
    match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) / 1024


def _reset_peak_rss() -> bool:
    """Set this process's peak-RSS mark to its current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure_memory_here(build: Callable[[], Callable[[], object]], device: str, warmup: int = 1) -> dict[str, float]:
    """Build a configuration and run warm-up + one call in THIS process (meant to be a fresh one).

    `peak_rss_mb`: the process's peak resident set (VmHWM): imports, model, data and the work. `work_mb`: how far
    the calls raised it above the resident set once everything was built (the peak mark is reset there).
    On CUDA both are from `torch.cuda.max_memory_allocated`.
    """
    run = build()
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device) / 2**20
    else:
        build_peak = _proc_status_mb("VmHWM")
        before = _proc_status_mb("VmRSS") if _reset_peak_rss() else build_peak
    for _ in range(warmup + 1):
        run()
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        return {"peak_rss_mb": round(peak, 1), "work_mb": round(peak - before, 1)}
    work_peak = _proc_status_mb("VmHWM")
    return {"peak_rss_mb": round(max(build_peak, work_peak), 1), "work_mb": round(work_peak - before, 1)}


def measure_memory_in_subprocess(script: str, case: str, argv: Sequence[str], log=print) -> dict[str, float]:
    """Run `script --memory-case CASE argv...` in a fresh interpreter; it prints one JSON line last."""
    command = [sys.executable, script, "--memory-case", case, *argv]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        log(f"  memory run of {case} failed:\n{completed.stderr[-2000:]}")
        return {}
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    log(f"  memory {case}: peak {result['peak_rss_mb']:.0f} MB, work {result['work_mb']:.0f} MB")
    return result


# ------------------------------------------------------------------------------------------- authors' code


class _NumpyForOldFeeder(types.ModuleType):
    """numpy as the authors' feeder expects it (written for numpy 1.x).

    Their training crop takes `int()` of `np.random.rand(1) * ...`, a 1-element array, which numpy 2 refuses;
    here `np.random.rand(1)` returns the same number as a 0-d array (the same random stream), which `int()`
    accepts. Installed on their `feeder.tools` module only, in the benchmark process only.
    """

    class _Random:
        def __getattr__(self, name: str):
            return getattr(np.random, name)

        @staticmethod
        def rand(*shape: int):
            values = np.random.rand(*shape)
            return values.reshape(()) if shape == (1,) else values

    def __init__(self) -> None:
        super().__init__("numpy")
        self.random = self._Random()

    def __getattr__(self, name: str):
        return getattr(np, name)


def import_official(repo: str | os.PathLike) -> types.SimpleNamespace:
    """The authors' modules from a checkout of github.com/maoyunyao/MAMP (nothing of it is part of mamp-hub):
    `pretraining` (model_mamp.transformer), `classification` (model.transformer), `tools` and `feeder`
    (feeder.tools, feeder.feeder_ntu). Their model constructors print; that output is swallowed."""
    repo = Path(repo).resolve()
    if not (repo / "model_mamp" / "transformer.py").is_file():
        raise ValueError(
            f"{repo} is not a checkout of the authors' MAMP code (no model_mamp/transformer.py); pass the folder of "
            "`git clone https://github.com/maoyunyao/MAMP`."
        )
    sys.path.insert(0, str(repo))
    with contextlib.redirect_stdout(io.StringIO()):
        modules = types.SimpleNamespace(
            pretraining=importlib.import_module("model_mamp.transformer"),
            classification=importlib.import_module("model.transformer"),
            tools=importlib.import_module("feeder.tools"),
            feeder=importlib.import_module("feeder.feeder_ntu"),
        )
    modules.tools.np = _NumpyForOldFeeder()
    modules.repo = str(repo)
    return modules


def quiet(function: Callable, *args, **kwargs):
    """Call `function` with its prints swallowed (the authors' `SkeleEmbed` prints when built)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args, **kwargs)


# ------------------------------------------------------------------------------------------------- output


def speedup_over_authors(result: Result, results: Sequence[Result]) -> float | None:
    """Throughput of a mamp-hub row over the authors' row of the same task that matches it best: same dtype and
    options (e.g. worker count), else same dtype, else float32 (the only dtype their code runs on a CPU)."""
    if result.implementation != "mamp-hub" or result.throughput is None:
        return None
    theirs = {
        (r.dtype, r.options): r
        for r in results
        if r.task == result.task and r.implementation == "authors" and r.throughput
    }
    for key in ((result.dtype, result.options), (result.dtype, ""), ("float32", "")):
        if key in theirs:
            return result.throughput / theirs[key].throughput
    return None


def format_table(results: Sequence[Result], peak_gflops: float | None = None) -> str:
    """Markdown table of the results, with the speed-up over the authors where they were timed, and the FLOP rate
    (as a share of `peak_gflops`, the measured matmul peak, when given) where FLOPs are counted."""
    lines = [
        "| task | implementation | variant | throughput | vs. authors | GFLOP/call | GFLOP/s | % of peak "
        "| peak RSS (MB) | work (MB) | exact |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in results:
        throughput = f"{r.throughput:,.1f} {r.unit}" if r.throughput is not None else "not run"
        speedup = speedup_over_authors(r, results)
        rate = r.gflops_per_s
        lines.append(
            f"| {r.task} | {r.implementation} | {r.variant} | {throughput} | "
            f"{'' if speedup is None else f'{speedup:.2f}x'} | "
            f"{'' if r.flops_per_call is None else f'{r.flops_per_call / 1e9:,.0f}'} | "
            f"{'' if rate is None else f'{rate:,.1f}'} | "
            f"{'' if rate is None or not peak_gflops else f'{100 * rate / peak_gflops:.0f}%'} | "
            f"{'' if r.peak_rss_mb is None else f'{r.peak_rss_mb:,.0f}'} | "
            f"{'' if r.work_mb is None else f'{r.work_mb:,.0f}'} | {'yes' if r.exact else 'no'} |"
        )
    return "\n".join(lines)


def result_row(result: Result, results: Sequence[Result]) -> dict[str, object]:
    """A row of the JSON files: the result's fields and what the table derives from them."""
    return {
        **asdict(result),
        "variant": result.variant,
        "speedup_over_authors": speedup_over_authors(result, results),
        "gflops_per_s": result.gflops_per_s,
    }


def write_json(path: str | os.PathLike, machine: dict, settings: dict, results: Sequence[Result]) -> None:
    rows = [result_row(r, results) for r in results]
    machine = {**machine, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}
    payload = {"machine": machine, "settings": settings, "results": rows}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")
