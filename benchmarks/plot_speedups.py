"""Bar chart of mamp-hub's speed-ups over the authors' code, from the JSON files the benchmark scripts write.

    python benchmarks/plot_speedups.py benchmarks/results/run_all_cpu.json --output benchmarks/results/speedups_cpu.png

One bar per mamp-hub configuration timed beside the authors' code; the issue's target for each task is drawn as a
dashed line. Needs matplotlib (`pip install mamp-hub[dev]`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# The speed targets of the project (2-core CPU, batch 32, NTU-60 mix of bodies): task -> minimum speed-up.
TARGETS = {"feature extraction": 4.0, "pre-training step": 2.5, "evaluation transform": 10.0}


def file_rows(payload: dict) -> list[dict]:
    """The rows of a results file: `run_all.py`'s sections one after the other, or a single script's rows."""
    if "sections" in payload:
        return [row for rows in payload["sections"].values() for row in rows]
    return payload["results"]


def speedup_rows(paths: list[str]) -> list[tuple[str, str, float]]:
    """(task, variant, speed-up) of every mamp-hub row with an authors' row to compare with, in file order, grouped
    by task; a later file's row replaces an earlier one of the same task and variant (a newer run of part of the
    tables)."""
    rows = {}
    for path in paths:
        for result in file_rows(json.loads(Path(path).read_text())):
            if result["implementation"] == "mamp-hub" and result.get("speedup_over_authors"):
                variant = (result["variant"] or "default") + ("" if result.get("exact", True) else " (other outputs)")
                rows[result["task"], variant] = result["speedup_over_authors"]
    if not rows:
        raise ValueError(f"No mamp-hub result with a speed-up over the authors in {paths}; run with --official-repo.")
    tasks = list(dict.fromkeys(task for task, _ in rows))  # a later file's new variants join their task's rows
    return sorted(
        ((task, variant, speedup) for (task, variant), speedup in rows.items()), key=lambda row: tasks.index(row[0])
    )


def plot(rows: list[tuple[str, str, float]], output: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(task for task, _, _ in rows))
    colors = dict(zip(tasks, plt.get_cmap("tab10").colors, strict=False))
    figure, axes = plt.subplots(figsize=(9, 0.38 * len(rows) + 1.4))
    positions = range(len(rows))[::-1]
    axes.barh(list(positions), [s for _, _, s in rows], color=[colors[task] for task, _, _ in rows])
    axes.set_yticks(list(positions), [f"{task}: {variant}" for task, variant, _ in rows], fontsize=8)
    for y, (task, _, speedup) in zip(positions, rows, strict=True):
        axes.text(speedup, y, f" {speedup:.2f}x", va="center", fontsize=8)
        if task in TARGETS:
            axes.plot([TARGETS[task]] * 2, [y - 0.4, y + 0.4], "k--", linewidth=1)
    axes.axvline(1.0, color="grey", linewidth=0.8)
    axes.set_xlabel("speed-up over the authors' code (dashed: target)")
    figure.suptitle(title, fontsize=10)
    axes.set_xlim(0, max(max(s for _, _, s in rows), *TARGETS.values()) * 1.15)
    figure.tight_layout()
    figure.savefig(output, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="JSON files written by run_all.py, bench_model.py, ...")
    parser.add_argument("--output", default="speedups.png")
    parser.add_argument("--title", default="mamp-hub vs. the authors' MAMP code on the same work")
    args = parser.parse_args(argv)
    plot(speedup_rows(args.results), args.output, args.title)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
