"""Export a MAMP model folder to ONNX, then classify skeleton clips with ONNX Runtime alone (no PyTorch model).

    python examples/onnx_inference.py --output-dir outputs/onnx_inference
    python examples/onnx_inference.py --checkpoint converted/ntu60-xsub-finetune --output-dir out
    python examples/onnx_inference.py --checkpoint converted/ntu60-xsub-pretrain --output-dir out   # features only

The folder (a `save_pretrained` folder with its processor, e.g. from `mamp-convert` or `training/`) is exported
as `mamp-export-onnx` does: `model.onnx` in `--output-dir`, checked against PyTorch with ONNX Runtime. Then
synthetic clips (one- and two-person, generated) go through `MampSkeletonProcessor` into an `InferenceSession`,
which returns the clip embeddings (`pooler_output`) and, for a classifier, the logits; the action names come from
the config stored in the `.onnx` file. Without `--checkpoint`, a tiny randomly initialised NTU-60 classifier is
saved to a temporary folder and exported: the names are real, the predictions are chance.
Needs `pip install "mamp-hub[onnx]"`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime

from mamp_hub import MampConfig, MampForSkeletonClassification, MampSkeletonProcessor
from mamp_hub.data.synthetic import generate_synthetic_actions
from mamp_hub.skeletons import get_id2label
from mamp_hub.tools.onnx_export import CONFIG_METADATA_KEY, INPUT_NAME, export_onnx, load_for_export


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/onnx_inference"))
    parser.add_argument("--checkpoint", type=Path, help="a MAMP model folder (default: a tiny random classifier)")
    parser.add_argument(
        "--num-clips", type=int, default=10, help="synthetic clips (10: one per synthetic action, two are two-person)"
    )
    parser.add_argument("--top-k", type=int, default=5)
    return parser.parse_args(argv)


def save_tiny_classifier(folder: Path) -> Path:
    """A tiny randomly initialised NTU-60 classifier (width 64, 2 layers, 32 frames) and its processor."""
    config = MampConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        num_frames=32,
        decoder_num_hidden_layers=1,  # unused by a classifier, but no deeper than the encoder
        num_labels=60,
        id2label=get_id2label("ntu60"),
        classifier_head="finetune",
    )
    MampForSkeletonClassification(config).save_pretrained(folder)
    MampSkeletonProcessor(num_frames=config.num_frames).save_pretrained(folder)
    return folder


def export(checkpoint: Path, output_dir: Path) -> Path:
    """Export `checkpoint` to `output_dir/model.onnx` (verified against PyTorch) and return the file."""
    result = export_onnx(load_for_export(checkpoint), output_dir / "model.onnx")
    differences = ", ".join(f"{name} {value:.1e}" for name, value in result.max_abs_difference.items())
    print(f"exported {result.path} ({result.task}); ONNX Runtime vs PyTorch, max |difference|: {differences}")
    return result.path


def run_onnx(onnx_path: Path, skeleton_values: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    """The graph's outputs by name for `(B, M, T, V, C)` float32 clips, and the model config stored in the file."""
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    outputs = dict(zip(names, session.run(names, {INPUT_NAME: skeleton_values}), strict=True))
    config = json.loads(session.get_modelmeta().custom_metadata_map[CONFIG_METADATA_KEY])
    return outputs, config


def top_k_actions(logits: np.ndarray, id2label: dict[str, str], k: int) -> list[list[tuple[str, float]]]:
    """For each row of `(B, num_labels)` logits, its k most likely (action name, probability) pairs."""
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    order = np.argsort(-probabilities, axis=1)[:, :k]
    return [
        [(id2label[str(i)], round(float(row[i]), 4)) for i in top]
        for row, top in zip(probabilities, order, strict=True)
    ]


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temporary:
        checkpoint = args.checkpoint
        if checkpoint is None:
            checkpoint = save_tiny_classifier(Path(temporary))
            print("No --checkpoint: exporting a tiny randomly initialised NTU-60 classifier (chance predictions).")
        onnx_path = export(checkpoint, args.output_dir)
        processor = MampSkeletonProcessor.from_pretrained(checkpoint)

    synthetic = generate_synthetic_actions(args.num_clips, seed=0)  # rows (N, 300, 150), NTU layout
    skeleton_values = processor(synthetic.sequences, layout="ntu_flat", return_tensors="np")[INPUT_NAME]
    outputs, config = run_onnx(onnx_path, skeleton_values)
    persons = (skeleton_values != 0).reshape(*skeleton_values.shape[:2], -1).any(axis=2).sum(axis=1)
    print(f"{INPUT_NAME} {skeleton_values.shape} -> features (pooler_output) {outputs['pooler_output'].shape}")
    result = {"features": outputs["pooler_output"], "top_k": None}
    if "logits" in outputs:
        result["top_k"] = top_k_actions(outputs["logits"], config["id2label"], args.top_k)
        for index, top in enumerate(result["top_k"]):
            actions = ", ".join(f"{name} {probability:.3f}" for name, probability in top)
            print(f"clip {index} ({persons[index]} person{'s' if persons[index] > 1 else ''}): {actions}")
    return result


if __name__ == "__main__":
    main()
