"""benchmarks/gpu.sh (benchmarks/bench_gpu.py): the FLOP count and card peaks behind its MFU, and its CPU smoke run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_gpu
import flops

from mamp_hub import MampConfig
from training.config import load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def matmul_precision():
    """The script sets TF32 matmuls as `python -m training` does; the tests after it keep the default."""
    saved = torch.get_float32_matmul_precision()
    yield
    torch.set_float32_matmul_precision(saved)


def test_flops_per_clip_of_the_default_recipe():
    config = MampConfig(**load_config(bench_gpu.DEFAULT_CONFIG)["model"])
    # 750 tokens, 74 visible (int(750 * (1 - 0.9)), as the authors round); width 256, MLP 1024, 8 encoder and 3 decoder layers; 12 values per token; 2 slots.
    layer = lambda n: n * (8 * 256**2 + 4 * 256 * 1024) + 4 * n**2 * 256  # noqa: E731
    encoder = 2 * 750 * 12 * 256 + 8 * layer(74)
    decoder = 2 * 74 * 256 * 256 + 3 * layer(750) + 2 * 750 * 256 * 12
    assert flops.pretraining_flops_per_clip(config) == 3 * 2 * (encoder + decoder)
    assert flops.pretraining_flops_per_clip(config) == pytest.approx(37.57e9, rel=1e-3)
    epochs_flops = 400 * (40_091 // 128) * 128 * flops.pretraining_flops_per_clip(config)
    assert epochs_flops == pytest.approx(602e15, rel=1e-3)  # about 600 PFLOP (issue 21)
    deeper = MampConfig(**{**config.to_dict(), "decoder_num_hidden_layers": 5})
    assert flops.pretraining_flops_per_clip(deeper) > 1.5 * flops.pretraining_flops_per_clip(config)


def test_card_peaks_by_name(matmul_precision):
    torch.set_float32_matmul_precision("high")
    cards = {
        "NVIDIA H100 80GB HBM3": 989.0,
        "NVIDIA H100 PCIe": 756.0,
        "NVIDIA H200": 989.0,
        "NVIDIA A100-SXM4-80GB": 312.0,
        "NVIDIA L40S": 362.0,
        "NVIDIA L4": 121.0,
        "NVIDIA GeForce RTX 4090": 165.2,
        "Tesla V100-SXM2-16GB": None,
    }
    assert {name: bench_gpu.spec_peak_tflops(name, "bf16+compile") for name in cards} == cards
    assert bench_gpu.spec_peak_tflops("NVIDIA H100 80GB HBM3", "fp32") == 494.0  # TF32 matmuls
    torch.set_float32_matmul_precision("highest")
    assert bench_gpu.spec_peak_tflops("NVIDIA H100 80GB HBM3", "fp32") == 67.0


def test_smoke_run_on_the_cpu(tmp_path, capsys, matmul_precision):
    bench_gpu.main(["--device", "cpu", "--smoke", "--json", str(tmp_path / "gpu.json")])
    payload = json.loads((tmp_path / "gpu.json").read_text())
    report = capsys.readouterr().out
    assert "| fp32 |" in report and "| bf16 |" in report and "bf16+compile" not in report
    assert "| padded rows (device transform) | 0 |" in report and "| CPU transform in the workers | 0 |" in report
    assert "Goal: 400 epochs of the recipe in under 2 h on one H100 = 2,226 sequences/s" in report
    assert payload["checks"]["forward_max_abs_diff"] == 0  # the CPU against itself
    for result in payload["results"]:
        assert result["sequences_per_s"] > 0 and result["hours_400_epochs"] > 0 and result["mfu_spec"] is None
    assert payload["settings"]["gflops_per_clip"] == flops.pretraining_flops_per_clip(tiny_config(**{
        **load_config(bench_gpu.DEFAULT_CONFIG)["model"], **bench_gpu.SMOKE_MODEL, "num_labels": 2,
    })) / 1e9  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "tpu"], "--device"),
        (["--device", "cpu", "--modes", "fp16"], r"unknown --modes \['fp16'\]"),
        (["--device", "cpu", "--workers", "four"], "--workers takes comma-separated counts"),
    ],
)
def test_bad_options_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_gpu.main(argv)
    assert exit_info.value.code == 2 and message.replace("\\", "") in capsys.readouterr().err.replace("\\", "")


def test_a_recipe_other_than_pretraining_is_refused(capsys):
    config = ROOT / "training" / "configs" / "ntu60_xsub" / "finetune.yaml"
    with pytest.raises(SystemExit):
        bench_gpu.main(["--device", "cpu", "--smoke", "--config", str(config)])
    assert "is a finetune recipe; pass a pre-training recipe" in capsys.readouterr().err


@pytest.mark.slow
def test_gpu_sh_with_every_mode_on_the_cpu(tmp_path):
    """The shell script, with the compiled mode too (compilation takes most of the minute)."""
    command = ["bash", "benchmarks/gpu.sh", "--device", "cpu", "--smoke", "--modes", ",".join(bench_gpu.MODES)]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHON": sys.executable}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert all(f"| {mode} |" in result.stdout for mode in bench_gpu.MODES)
