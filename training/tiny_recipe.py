"""The tiny CPU recipe: the whole pipeline on SYNTHETIC data in a few minutes on 2 CPU cores.

    python -m training.tiny_recipe [--output_dir outputs/tiny_recipe] [--pretrain_epochs 60] [--seed 0]

Every stage goes through `training.recipe.run`, the code of the full recipes, with the configs in
`training/configs/tiny/` (the paper's optimisers, schedules and heads; a small model, few epochs):

1. write the synthetic `.npz` (`mamp_hub.data.synthetic`, NTU layout, cross-subject split);
2. save the randomly initialised model: the starting point of both pre-trainings (same seed) and the
   "random encoder" of the comparison;
3. pre-train MAMP, then the SkeletonMAE-style joint-reconstruction baseline with the same budget;
4. linear-probe the three encoders (MAMP, random, baseline) with the same probe;
5. fine-tune the MAMP encoder;
6. print the accuracies side by side, write `results.json` / `results.md` and `loss_curve.png`.

Each stage is announced as it starts (`stage 3/6: ...`). The linear probes and the fine-tuning put a new classifier
on an encoder: that is their purpose, so it is not warned about. `results.json` / `results.md` also hold the command,
the wall time, the peak memory and the machine they were measured on, so that a figure quoted from them can be
re-measured with the same command.

The data are generated, not recorded: the numbers show that the pipeline works, they say nothing about NTU.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import set_seed

from benchmarks.common import machine_info
from mamp_hub import MampConfig, MampForMaskedMotionPrediction
from mamp_hub.data.synthetic import write_synthetic_npz
from mamp_hub.tools.cli import console_script

from .config import load_config
from .data import build_processor
from .recipe import run

logger = logging.getLogger(__name__)

CONFIGS = Path(__file__).resolve().parent / "configs" / "tiny"
COMMAND = "python -m training.tiny_recipe"
STAGES = 6  # as numbered in this module's docstring
ENCODERS = {
    "mamp": "MAMP pre-trained",
    "random": "randomly initialised",
    "skeletonmae": "joint reconstruction (SkeletonMAE-style)",
}
PRETRAININGS = {"mamp": "MAMP (target: motion)", "skeletonmae": "the SkeletonMAE-style baseline (target: joints)"}


def run_tiny_recipe(
    output_dir: str | Path,
    overrides: Mapping[str, Sequence[str]] | None = None,
    num_samples: int = 800,
    finetune: bool = True,
    seed: int = 0,
    command: str = COMMAND,
) -> dict[str, Any]:
    """Run the tiny recipe into `output_dir`; returns the results (also written to `results.json`).

    Args:
        output_dir: folder for the data, every stage's `save_pretrained` folder and the results.
        overrides: `section.key=value` changes per stage kind (`"pretrain"`, `"linear_probe"`, `"finetune"`),
            e.g. to shrink the recipe further in tests.
        num_samples: synthetic clips in total (about half train, half test).
        finetune: also fine-tune the MAMP encoder.
        seed: seed of the synthetic data set (a new draw of clips, subjects and sensor noise) and of every stage
            (model initialisation, data order, crops and rotations, masking).
        command: the command line that ran it, recorded with the results.
    """
    started, machine = time.perf_counter(), machine_info("cpu")  # the load average before the run
    output_dir = Path(output_dir)
    overrides = overrides or {}
    data_path = output_dir / "synthetic.npz"
    output_dir.mkdir(parents=True, exist_ok=True)
    announce(1, f"write {num_samples} synthetic clips to {data_path}")
    write_synthetic_npz(data_path, num_samples=num_samples, split="subject", seed=seed)

    def config(name: str, stage: str, **values: Any) -> dict[str, Any]:
        protocol = "pretrain" if name.startswith("pretrain") else name
        settings = [f"data.path={data_path}", f"trainer.output_dir={output_dir / stage}", f"seed={seed}"]
        settings += [f"{key}={value}" for key, value in values.items()] + list(overrides.get(protocol, ()))
        return load_config(CONFIGS / f"{name}.yaml", settings)

    pretrain = {
        "mamp": config("pretrain_mamp", "pretrain_mamp"),
        "skeletonmae": config("pretrain_skeletonmae", "pretrain_skeletonmae"),
    }
    announce(2, f"save the randomly initialised model to {output_dir / 'random_init'}")
    save_random_init(pretrain["mamp"], output_dir / "random_init")
    results: dict[str, Any] = {"command": command, "seed": seed, "pretrain": {}, "linear_probe": {}}
    for step, (name, recipe) in enumerate(pretrain.items(), 1):
        announce(3, f"pre-training {step}/{len(pretrain)}, {PRETRAININGS[name]}", recipe)
        results["pretrain"][name] = run(recipe, command=f"{COMMAND} (stage pretrain_{name})")
    folders = {"mamp": "pretrain_mamp", "random": "random_init", "skeletonmae": "pretrain_skeletonmae"}
    for step, (name, folder) in enumerate(folders.items(), 1):
        recipe = config("linear_probe", f"linear_probe_{name}", init_from=output_dir / folder)
        announce(
            4, f"linear probe {step}/{len(folders)}, a new classifier on the frozen {ENCODERS[name]} encoder", recipe
        )
        results["linear_probe"][name] = run(recipe, command=f"{COMMAND} (stage linear_probe_{name})")
    if finetune:
        recipe = config("finetune", "finetune_mamp", init_from=output_dir / "pretrain_mamp")
        announce(5, f"fine-tuning, a new classifier and the {ENCODERS['mamp']} encoder", recipe)
        results["finetune"] = {"mamp": run(recipe, command=f"{COMMAND} (stage finetune_mamp)")}
    announce(STAGES, f"write results.json, results.md and loss_curve.png to {output_dir}")
    results["train_clips"], results["test_clips"] = (
        results["linear_probe"]["mamp"]["train_samples"],
        results["linear_probe"]["mamp"]["eval_samples"],
    )
    plot_loss_curves(output_dir, output_dir / "loss_curve.png")
    results["wall_time_s"] = round(time.perf_counter() - started, 1)
    results["peak_memory_mb"] = peak_memory_mb()
    results["machine"] = machine

    (output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (output_dir / "results.md").write_text(results_table(results) + "\n", encoding="utf-8")
    return results


def announce(stage: int, what: str, recipe: Mapping[str, Any] | None = None) -> None:
    """Print the stage that starts, above Trainer's progress bar and loss lines (and where its folder goes)."""
    into = f" -> {recipe['trainer']['output_dir']}" if recipe is not None else ""
    print(f"\n=== stage {stage}/{STAGES}: {what}{into}", flush=True)


def peak_memory_mb() -> float | None:
    """This process's peak resident memory so far (VmHWM; Linux), in MB; None where /proc does not say. The tiny
    recipe loads its data in the main process (no data-loader workers), so this is the whole run's peak."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    kilobytes = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return None if kilobytes is None else round(int(kilobytes) / 1024, 1)


def save_random_init(pretrain_config: dict[str, Any], folder: Path) -> None:
    """The untrained model both pre-trainings start from (`run` seeds the same way before building it)."""
    set_seed(int(pretrain_config.get("seed", 0)))
    model = MampForMaskedMotionPrediction(MampConfig(**pretrain_config["model"]))
    model.save_pretrained(folder)
    build_processor(pretrain_config["data"], model.config).save_pretrained(folder)


def results_table(results: Mapping[str, Any]) -> str:
    """Markdown table: linear-probe (and fine-tuning) test accuracy of each encoder."""
    probe = results["linear_probe"]
    lines = [
        "| encoder | linear probe top-1 (%, last epoch) | linear probe top-5 (%, last epoch) | kNN top-1 (%) |"
        " pre-training loss (last) |",
        "|---|---|---|---|---|",
    ]
    for name, label in ENCODERS.items():
        pretrain = results["pretrain"].get(name, {})
        knn = f"{pretrain['knn_top1']:.1f}" if "knn_top1" in pretrain else "-"
        loss = f"{pretrain['final_loss']:.3f}" if "final_loss" in pretrain else "-"
        lines.append(f"| {label} | {probe[name]['eval_top1']:.1f} | {probe[name]['eval_top5']:.1f} | {knn} | {loss} |")
    if "finetune" in results:
        finetuned = results["finetune"]["mamp"]
        lines += [
            "",
            f"Fine-tuned MAMP encoder (last epoch): top-1 {finetuned['eval_top1']:.1f}%, "
            f"top-5 {finetuned['eval_top5']:.1f}%.",
        ]
    machine = results["machine"]
    memory = f"{results['peak_memory_mb'] / 1024:.1f} GB" if results["peak_memory_mb"] is not None else "not measured"
    lines += [
        "",
        f"{results['train_clips']} training / {results['test_clips']} test clips of SYNTHETIC data, 10 classes "
        f"(chance 10%); seed {results['seed']}.",
        "",
        f"Command: `{results['command']}`. Whole recipe {results['wall_time_s']:.0f} s wall clock (load average "
        f"{machine['load_average_at_start'][0]:.1f} before it), peak memory {memory}; measured on "
        f"{machine['date']} on {machine['cpu']} ({machine['cpu_cores']} cores, {machine['torch_threads']} torch "
        f"threads), Python {machine['python']}, torch {machine['torch']}, transformers {machine['transformers']}.",
    ]
    return "\n".join(lines)


def plot_loss_curves(output_dir: Path, path: Path) -> None:
    """Pre-training losses of MAMP and the baseline against the step (each normalised target has its own scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for name, stage in (
        ("MAMP (target: motion)", "pretrain_mamp"),
        ("SkeletonMAE-style (target: joints)", "pretrain_skeletonmae"),
    ):
        history = json.loads((output_dir / stage / "trainer_state.json").read_text())["log_history"]
        steps, losses = zip(*[(entry["step"], entry["loss"]) for entry in history if "loss" in entry], strict=True)
        axis.plot(steps, losses, label=name)
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("masked-token MSE (normalised target)")
    axis.set_title("Tiny recipe: pre-training loss on SYNTHETIC data")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def pretraining_budget(epochs: int) -> list[str]:
    """Overrides of both pre-trainings for `epochs` epochs: a tenth of them warm-up, the kNN monitor at half and end."""
    return [
        f"schedule.epochs={epochs}",
        f"schedule.warmup_epochs={max(1, epochs // 10)}",
        f"knn_monitor.every_n_epochs={epochs // 2}",
    ]


@console_script(COMMAND)
def main(argv: Sequence[str] | None = None) -> None:
    """Run the tiny recipe from the command line; a failure (e.g. a diverged stage) is one line and exit status 2."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default="outputs/tiny_recipe")
    parser.add_argument("--num_samples", type=int, default=800, help="synthetic clips, train + test")
    parser.add_argument(
        "--pretrain_epochs",
        type=int,
        default=60,
        help="pre-training epochs of MAMP and of the baseline (warm-up: a tenth of them; kNN monitor: at half and end)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the synthetic data (regenerated) and of every stage: initialisation, data order, crops, masking",
    )
    args = parser.parse_args(argv)
    if args.pretrain_epochs < 2:
        parser.error(f"--pretrain_epochs must be at least 2, got {args.pretrain_epochs}.")
    if args.seed < 0:
        parser.error(f"--seed must be at least 0, got {args.seed}.")
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.INFO)
    overrides = {"pretrain": pretraining_budget(args.pretrain_epochs)}
    command = shlex.join([*COMMAND.split(), *(sys.argv[1:] if argv is None else argv)])
    results = run_tiny_recipe(args.output_dir, overrides, num_samples=args.num_samples, seed=args.seed, command=command)
    print(f"\n{command}\n")
    print(results_table(results))
    print(f"\nLoss curves: {Path(args.output_dir) / 'loss_curve.png'}; folders and model cards in {args.output_dir}/")


if __name__ == "__main__":
    main()
