"""Actions in a long recording, from the command line (console script `mamp-recognize`).

    mamp-recognize recording.npy --model converted/ntu60-xsub-finetune --fps 30 --out segments.json
    mamp-recognize recording.npz --model model.onnx --window 126 --stride 32 --out segments.csv --plot timeline.png

The recording is a `.npy` file, or an array of a `.npz` file (`--npz-key`, default `x_test`, else `x`), in any layout
the checkpoint's processor reads, with any number of people (`(persons, frames, joints, 3)`); `--tracks-key` names
a `.npz` array of track ids (`(persons,)` or `(persons, frames)`). The model is a classifier checkpoint (a folder or
a Hub id, loaded by `pipeline("skeleton-action-recognition")`) or an `.onnx` file from `mamp-export-onnx`.
`--out` writes the segments as JSON (with the windows and the settings) or CSV (one row per segment); without it they
are printed. `--plot` draws the per-frame scores of the top classes over time with the segments on top (needs
matplotlib: `pip install "mamp-hub[train]"`). Files are written only once everything has succeeded.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import checked, positive_int
from ..pipelines import load_skeleton_file
from ..recognition.persons import PERSON_POLICIES, Recording, checked_centre, read_recording
from ..recognition.recognize import recognize_recording
from ..recognition.runners import classifier_runner
from ..recognition.windows import checked_fps, checked_min_score, checked_window
from .cli import console_script

OUTPUT_SUFFIXES = (".json", ".csv")
SEGMENT_FIELDS = ("label", "score", "start", "end", "start_s", "end_s", "track")


def load_classifier(model: str, device: str | None = None) -> Any:
    """The classifier for `--model`: an ONNX file's path as it is, else the pipeline of a checkpoint folder or id."""
    if model.endswith(".onnx"):
        return model
    from transformers import pipeline

    return pipeline("skeleton-action-recognition", model=model, device=device)


def write_segments(path: Path, result: dict[str, Any], settings: dict[str, Any]) -> None:
    """`result`'s segments to `path`: `.json` (settings, segments and windows) or `.csv` (one row per segment)."""
    if path.suffix == ".json":
        content = {"settings": settings, "segments": result["segments"], "windows": result["windows"]}
        path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        return
    fields = [name for name in SEGMENT_FIELDS if any(name in segment for segment in result["segments"])]
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=fields or ["label", "score", "start", "end"])
        writer.writeheader()
        writer.writerows(result["segments"])


def plot_timeline(
    path: Path, result: dict[str, Any], id2label: dict[int, str], fps: float | None, top_classes: int = 5
) -> None:
    """A PNG of the per-frame scores of the `top_classes` classes with the highest total score (one panel per track
    with `persons="each"`), the segments drawn as labelled bars along the top of each panel."""
    from matplotlib.figure import Figure

    panels = result["frame_scores"]
    panels = panels if isinstance(panels, dict) else {None: panels}
    figure = Figure(figsize=(12, 1 + 2.6 * len(panels)), layout="constrained")
    axes = figure.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
    colours = {}
    for ax, (track, scores) in zip(axes, panels.items(), strict=True):
        frames = len(scores)
        times = np.arange(frames) / fps if fps else np.arange(frames)
        for label in np.argsort(-scores.sum(axis=0), kind="stable")[:top_classes]:
            name = id2label[int(label)]
            (line,) = ax.plot(times, scores[:, label], linewidth=1.2, label=name, color=colours.get(name))
            colours[name] = line.get_color()
        top = max(1.0, float(scores.max(initial=0)))
        for segment in result["segments"]:
            if segment.get("track") != track:
                continue
            start, end = (segment["start_s"], segment["end_s"]) if fps else (segment["start"], segment["end"])
            colour = colours.setdefault(segment["label"], f"C{len(colours) % 10}")
            ax.axvspan(start, end, ymin=0.9, ymax=1.0, color=colour, alpha=0.8)
            ax.text((start + end) / 2, top * 1.05, segment["label"], ha="center", va="center", fontsize=7, clip_on=True)
        ax.set_ylim(0, top * 1.12)
        ax.set_ylabel("score" if track is None else f"track {track}: score")
        ax.legend(loc="upper right", fontsize=7, framealpha=0.8, bbox_to_anchor=(1.0, 0.88))
        ax.set_xlim(0, times[-1] if frames > 1 else 1)
    axes[-1].set_xlabel("time (s)" if fps else "frame")
    figure.savefig(path, dpi=100)


@contextlib.contextmanager
def written_together(paths: Sequence[Path]) -> Iterator[list[Path]]:
    """Temporary files next to `paths`, moved onto them only if the block succeeds (else removed): nothing is
    half-written, and no old file is replaced by a failed run."""
    temporaries = []
    try:
        for path in paths:
            handle, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
            os.close(handle)
            temporaries.append(Path(name))
        yield temporaries
        for temporary, path in zip(temporaries, paths, strict=True):
            os.replace(temporary, path)
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)


def _check_outputs(out: Path | None, plot: Path | None) -> None:
    if out is not None and out.suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"--out {str(out)!r} must end in .json or .csv; pass e.g. segments.json.")
    if plot is not None and plot.suffix != ".png":
        raise ValueError(f"--plot {str(plot)!r} must end in .png; pass e.g. timeline.png.")
    if plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise ImportError('--plot needs matplotlib, which is not installed; pip install "mamp-hub[train]".')
    for path in (out, plot):
        if path is not None and not path.parent.is_dir():
            raise ValueError(
                f"The folder of {str(path)!r} does not exist; create it or pass a path in an existing one."
            )


def add_recognizer_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say how a recording is recognised: the model and its windows, people and batches (shared
    with `mamp-evaluate-untrimmed`)."""
    parser.add_argument("--model", required=True, help="a classifier checkpoint folder or Hub id, or a .onnx file")
    parser.add_argument("--window", type=int, help="frames per window (default: the checkpoint's)")
    parser.add_argument("--stride", type=int, help="frames between window starts (default: a quarter of the window)")
    parser.add_argument("--min-score", type=float, help="frames whose top score is below it are in no segment")
    parser.add_argument("--persons", choices=PERSON_POLICIES, default="most_active", help="default: most_active")
    parser.add_argument(
        "--centre", action="store_true", help="centre each window as the NTU files are (for NTU-trained checkpoints)"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="windows per model call (default 8)")
    parser.add_argument("--device", help="where a PyTorch model runs, e.g. cuda (default: the CPU)")


@dataclass
class Recognizer:
    """A checked `add_recognizer_arguments` set: the model's runner and the options of `recognize_recording`."""

    runner: Any
    options: dict[str, Any]

    @property
    def processor(self) -> Any:
        return self.runner.processor

    @property
    def id2label(self) -> dict[int, str]:
        return self.runner.config.id2label

    def __call__(self, recording: Recording, **options: Any) -> dict[str, Any]:
        return recognize_recording(recording, self.runner, self.id2label, **self.options, **options)


def recognizer_from_args(args: argparse.Namespace) -> Recognizer:
    """The model of `--model` and the checked options of `add_recognizer_arguments`."""
    min_score = checked_min_score(args.min_score)
    batch_size = checked("--batch-size", positive_int, args.batch_size)
    if args.device is not None and args.model.endswith(".onnx"):
        raise ValueError("--device applies to a PyTorch checkpoint; an .onnx model runs on ONNX Runtime's CPU.")
    runner = classifier_runner(load_classifier(args.model, args.device))
    processor = runner.processor
    window, stride = checked_window(args.window, args.stride, processor.num_frames, processor.eval_crop_ratio)
    options = {
        "window": window,
        "stride": stride,
        "max_persons": processor.max_persons,
        "persons": args.persons,
        "centre": checked_centre(args.centre, processor),
        "min_score": min_score,
        "batch_size": batch_size,
    }
    return Recognizer(runner, options)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mamp-recognize",
        description="Find the actions in a long skeleton recording with a MAMP classifier, window by window.",
    )
    parser.add_argument("recording", type=Path, help="a .npy or .npz file of joints, any number of people")
    add_recognizer_arguments(parser)
    parser.add_argument("--fps", type=float, help="frames per second: times in seconds too")
    parser.add_argument("--npz-key", help="the .npz array of the recording (default x_test, else x)")
    parser.add_argument("--tracks-key", help="a .npz array of track ids, (persons,) or (persons, frames)")
    parser.add_argument("--layout", help="the recording's array layout when its shape fits several: TVC, MTVC, ...")
    parser.add_argument("--out", type=Path, help="write the segments to this .json or .csv file")
    parser.add_argument("--plot", type=Path, help="draw the scores over time and the segments to this .png file")
    parser.add_argument("--top-classes", type=int, default=5, help="classes drawn by --plot (default 5)")
    return parser.parse_args(argv)


@console_script("mamp-recognize")
def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    _check_outputs(args.out, args.plot)
    fps = checked_fps(args.fps)
    if args.top_classes < 1:
        raise ValueError(f"--top-classes must be at least 1, got {args.top_classes}.")
    tracks = None
    if args.tracks_key is not None:
        if args.recording.suffix != ".npz":
            raise ValueError(f"--tracks-key names an array of a .npz file, but {str(args.recording)!r} is not one.")
        tracks = load_skeleton_file(args.recording, args.tracks_key)
    array = load_skeleton_file(args.recording, args.npz_key)
    recognize = recognizer_from_args(args)
    recording = read_recording(array, recognize.processor, args.layout, tracks)
    id2label = recognize.id2label
    result = recognize(
        recording, fps=fps, return_frame_scores=args.plot is not None, return_windows=True, progress=True
    )
    window, stride, min_score = (recognize.options[name] for name in ("window", "stride", "min_score"))
    settings = {"recording": str(args.recording), "model": args.model, "window": window, "stride": stride, "fps": fps}
    outputs = [path for path in (args.out, args.plot) if path is not None]
    with written_together(outputs) as temporaries:
        files = dict(zip(outputs, temporaries, strict=True))
        if args.out is not None:
            options = {"min_score": min_score, "persons": args.persons, "centre": args.centre}
            write_segments(files[args.out], result, {**settings, **options})
        if args.plot is not None:
            plot_timeline(files[args.plot], result, id2label, fps, args.top_classes)
    seconds = f" ({fps:g} fps)" if fps else ""
    print(f"{len(result['segments'])} segments in {recording.frames} frames{seconds}; window {window}, stride {stride}")
    if args.out is None:
        for segment in result["segments"]:
            track = f"track {segment['track']}: " if "track" in segment else ""
            span = f"{segment['start_s']:.2f}-{segment['end_s']:.2f} s" if fps else ""
            print(
                f"  {track}frames {segment['start']}-{segment['end']} {span} {segment['label']} {segment['score']:.3f}"
            )
    for path in outputs:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
