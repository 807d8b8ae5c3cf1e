"""benchmarks/: the FLOPs they count, the speed tables generated from `run_all.py`'s results file, the speed-up chart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import flops
import plot_speedups
import render

from mamp_hub import MampConfig

ROOT = Path(__file__).resolve().parents[1]


def results_file(path: Path, rows: list[tuple[str, str, str, float | None, bool]]) -> str:
    """A JSON file in the layout of `common.write_json` with rows (task, implementation, variant, speed-up, exact)."""
    results = [
        {"task": task, "implementation": who, "variant": variant, "speedup_over_authors": speedup, "exact": exact}
        for task, who, variant, speedup, exact in rows
    ]
    path.write_text(json.dumps({"machine": {}, "settings": {}, "results": results}))
    return str(path)


def test_speedups_of_mamp_hub_rows_later_files_replace_earlier_ones(tmp_path):
    first = results_file(
        tmp_path / "all.json",
        [
            ("feature extraction", "authors", "eager, float32", None, True),
            ("feature extraction", "mamp-hub", "sdpa, float32", 5.0, True),
            ("pre-training step", "mamp-hub", "sdpa, float32, skip absent persons", 4.9, False),
            ("evaluation transform", "mamp-hub", "", 5.8, True),
        ],
    )
    newer = results_file(
        tmp_path / "pipeline.json",
        [("evaluation transform", "mamp-hub", "", 7.3, True), ("feature extraction", "mamp-hub", "bf16", 6.9, True)],
    )
    assert plot_speedups.speedup_rows([first, newer]) == [
        ("feature extraction", "sdpa, float32", 5.0),
        ("feature extraction", "bf16", 6.9),
        ("pre-training step", "sdpa, float32, skip absent persons (other outputs)", 4.9),
        ("evaluation transform", "default", 7.3),
    ]

    output = tmp_path / "speedups.png"
    plot_speedups.main([first, newer, "--output", str(output)])
    assert matplotlib.image.imread(output).shape[2] in (3, 4)


def test_files_without_a_comparison_are_refused(tmp_path):
    alone = results_file(tmp_path / "alone.json", [("feature extraction", "mamp-hub", "sdpa, float32", None, True)])
    with pytest.raises(ValueError, match="--official-repo"):
        plot_speedups.speedup_rows([alone])


def test_feature_flops_per_slot_of_the_default_model():
    """750 tokens of width 256, MLP 1024, 8 layers, 12 values per token (benchmarks/flops.py)."""
    layer = 750 * (8 * 256**2 + 4 * 256 * 1024) + 4 * 750**2 * 256
    assert flops.feature_flops_per_slot(MampConfig()) == 2 * 750 * 12 * 256 + 8 * layer
    assert flops.feature_flops_per_slot(MampConfig()) == pytest.approx(14.05e9, rel=1e-3)


def test_matmul_peak_is_measured_at_each_width():
    peak = flops.matmul_peak(widths=(16, 32), seconds=0.02)
    assert set(peak) == {"16", "32", "peak"} and peak["peak"] == max(peak["16"], peak["32"]) > 0


def test_the_readmes_speed_tables_are_generated_from_the_committed_results_file():
    """No hand-copied figure: README.md's and benchmarks/README.md's tables are what render.py makes of the file."""
    assert render.main(["--check"]) == 0


def test_targets_are_met_or_not_by_the_measured_speed_up():
    row = {"implementation": "mamp-hub", "variant": "sdpa, float32", "gflops_per_s": 100.0}
    payload = {
        "machine": {"matmul_gflops": {"peak": 200.0}},
        "sections": {
            "model": [
                {**row, "task": "feature extraction", "speedup_over_authors": 3.9},
                {**row, "task": "pre-training step", "speedup_over_authors": 2.5},
            ]
        },
    }
    table = render.targets_table(payload).splitlines()
    assert table[2] == "| feature extraction >= 4.0x the authors | 3.90x (sdpa, float32) | 100.0 (50%) | **no** |"
    assert table[3] == "| pre-training step >= 2.5x the authors | 2.50x (sdpa, float32) | 100.0 (50%) | yes |"
    del payload["sections"]["model"][1]["speedup_over_authors"]
    assert render.targets_table(payload).splitlines()[3].endswith("| not measured |")


@pytest.mark.slow
def test_run_all_writes_one_results_file_with_flops_and_the_peak(tmp_path):
    """A small run of the model section (the paper's model on 24 frames, batch 2): one file with the machine's
    peak, the commit, and rows with FLOP rates, the glibc-kept-memory pre-training row among them."""
    output = tmp_path / "run_all.json"
    arguments = ["--only", "model", "--batch-size", "2", "--num-frames", "24", "--attention", "sdpa"]
    arguments += ["--dtypes", "float32", "--no-memory", "--warmup", "0", "--repeats", "1", "--json", str(output)]
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), *arguments], check=True)
    payload = json.loads(output.read_text())
    assert payload["machine"]["matmul_gflops"]["peak"] > 0 and payload["machine"]["commit"]
    rows = {(row["task"], row["variant"]): row for row in payload["sections"]["model"]}
    assert set(rows) == {
        ("feature extraction", "sdpa, float32"),
        ("feature extraction", "sdpa, float32, every slot encoded"),
        ("pre-training step", "sdpa, float32"),
        ("pre-training step", "sdpa, float32, skip absent persons"),
        ("pre-training step", "sdpa, float32, freed memory kept"),
    }
    assert all(row["gflops_per_s"] > 0 for row in rows.values())
    # Batch 2 of the NTU mix: both second bodies absent (round(2 * 49 / 60) = 2); given present_persons, the two
    # present slots and the empty one are encoded, else all four.
    per_slot = flops.feature_flops_per_slot(MampConfig(num_frames=24))
    assert rows["feature extraction", "sdpa, float32"]["flops_per_call"] == 3 * per_slot
    assert rows["feature extraction", "sdpa, float32, every slot encoded"]["flops_per_call"] == 4 * per_slot
