"""benchmarks/: the speed-up chart reads the JSON the benchmark scripts write."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib.image
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import plot_speedups


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
