"""Action recognition on untrimmed recordings, scored (console script `mamp-evaluate-untrimmed`).

    mamp-evaluate-untrimmed DATA_DIR --model outputs/tiny_recipe/finetune_mamp --min-score 0.5

DATA_DIR holds recordings in PKU-MMD's raw layout: `skeleton/<name>.txt` (a line of 150 values per frame) and
`label/<name>.txt` (a line `label,start,end,confidence` per action, labels 1-based), as PKU-MMD ships them and as
`mamp-synthetic-untrimmed` writes synthetic ones. Each recording goes through the classifier window by window
(`mamp-recognize`'s options), and the table gives frame accuracy and temporal-detection mAP at IoU 0.1-0.5
(`mamp_hub.evaluation.evaluate_untrimmed`) beside a model that predicts the most frequent class everywhere.
PKU-MMD's labels are 1-based in the files and 0-based here: the classifier's class `i` is the files' label `i + 1`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from ..data.prepare_pku import iter_pku_recordings, read_split_file
from ..evaluation import evaluate_untrimmed, format_untrimmed_table
from ..recognition.persons import read_recording
from .cli import console_script
from .recognize import add_recognizer_arguments, recognizer_from_args, written_together


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mamp-evaluate-untrimmed",
        description="Score a MAMP classifier on untrimmed recordings (PKU-MMD layout): frame accuracy and "
        "detection mAP, beside the most-frequent-class baseline.",
    )
    parser.add_argument("data_dir", type=Path, help="folder with skeleton/<name>.txt and label/<name>.txt")
    add_recognizer_arguments(parser)
    parser.add_argument(
        "--split-file", type=Path, help="a PKU-MMD split file: evaluate the recordings NOT on its training line"
    )
    parser.add_argument("--per-recording", action="store_true", help="also a table with one row per recording")
    parser.add_argument("--out", type=Path, help="write the figures and per-recording details to this .json file")
    return parser.parse_args(argv)


def recording_names(data_dir: Path, split_file: Path | None) -> list[str]:
    """The recordings of `data_dir` to evaluate, sorted: all, or those not in `split_file`'s training list."""
    skeletons = data_dir / "skeleton"
    if not skeletons.is_dir() or not (data_dir / "label").is_dir():
        raise ValueError(
            f"{str(data_dir)!r} has no skeleton/ and label/ folders; pass a folder in PKU-MMD's raw layout "
            "(mamp-synthetic-untrimmed --output-dir DIR writes synthetic ones)."
        )
    names = sorted(path.stem for path in skeletons.glob("*.txt"))
    if split_file is not None:
        training = read_split_file(split_file)
        names = [name for name in names if name not in training]
    if not names:
        raise ValueError(f"No recording to evaluate in {str(skeletons)!r} (skeleton/*.txt, less the training split).")
    return names


@console_script("mamp-evaluate-untrimmed")
def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.out is not None and args.out.suffix != ".json":
        raise ValueError(f"--out {str(args.out)!r} must end in .json; pass e.g. results.json.")
    names = recording_names(args.data_dir, args.split_file)
    recognize = recognizer_from_args(args)
    results = evaluate_untrimmed(
        lambda skeleton: recognize(read_recording(skeleton, recognize.processor)),
        iter_pku_recordings(args.data_dir, names),
        id2label=recognize.id2label,
    )
    table = format_untrimmed_table(results, recognize.id2label, per_recording=args.per_recording)
    settings = {key: value for key, value in recognize.options.items() if key != "max_persons"}
    print(f"{args.model} on {len(names)} recordings of {args.data_dir} ({settings})\n\n{table}")
    if args.out is not None:
        with written_together([args.out]) as (temporary,):
            content = {"data_dir": str(args.data_dir), "model": args.model, "settings": settings, **results}
            temporary.write_text(json.dumps(content, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
