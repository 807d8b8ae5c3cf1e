"""Save or push a MAMP checkpoint together with the code that defines it, for environments without `mamp_hub`.

A folder written by `save_with_code` holds, next to the usual `config.json`, `model.safetensors` and
`preprocessor_config.json`, a copy of `configuration_mamp.py`, `modeling_mamp.py` and `processing_mamp.py` and of the
package's modules they import (flattened into one folder, see `code_files`), and an `auto_map` in both JSON files that
names the classes in them. `transformers` then loads it without this package:

    AutoModel.from_pretrained(repo_id, trust_remote_code=True)                        # features
    AutoModelForVideoClassification.from_pretrained(repo_id, trust_remote_code=True)  # classification
    AutoFeatureExtractor.from_pretrained(repo_id, trust_remote_code=True)             # the processor

`trust_remote_code=True` runs the repository's Python files on the loading machine: see docs/remote_code.md for
what that trusts and for the safer default (install `mamp-hub`, which needs no remote code at all).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import tempfile
from pathlib import Path

from huggingface_hub import CommitInfo, HfApi

from ..modeling_mamp import MampPreTrainedModel
from ..processing_mamp import MampSkeletonProcessor
from ..registration import AUTO_CLASSES, auto_map

PACKAGE = "mamp_hub"


def save_with_code(
    model: MampPreTrainedModel, processor: MampSkeletonProcessor, save_directory: str | Path
) -> list[Path]:
    """Write `model` and `processor` with `save_pretrained`, plus the code and `auto_map` that load them remotely.

    Returns the code files written: the configuration, modeling and processing modules and every module of the
    package they import (`code_files`).
    """
    if not isinstance(model, MampPreTrainedModel):
        raise TypeError(
            f"save_with_code saves MAMP models, not {type(model).__name__}; pass a MampModel, "
            "MampForMaskedMotionPrediction or MampForSkeletonClassification."
        )
    if not isinstance(processor, MampSkeletonProcessor):
        raise TypeError(
            f"save_with_code saves the model with its processor, got {type(processor).__name__}; pass the "
            "MampSkeletonProcessor that prepares the model's inputs (MampSkeletonProcessor.from_pretrained(...))."
        )
    folder = Path(save_directory)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    written = []
    for name, source in code_files(sorted({cls.__module__ for cls in AUTO_CLASSES.values()})).items():
        (folder / name).write_text(source, encoding="utf-8")
        written.append(folder / name)
    mapping = auto_map()
    _add_auto_map(folder / "config.json", mapping)
    _add_auto_map(folder / "preprocessor_config.json", {"AutoFeatureExtractor": mapping["AutoFeatureExtractor"]})
    return written


def code_files(modules: list[str]) -> dict[str, str]:
    """The source of `modules` and of every module of the package that they import, as flat files: file name ->
    source. transformers loads remote code from one folder and follows only `from .name import` imports of sibling
    files, so `mamp_hub.skeletons.layouts` becomes `skeletons_layouts.py` and the imports that name it are rewritten
    to `from .skeletons_layouts import`; the code is otherwise the installed package's, unchanged."""
    files: dict[str, str] = {}
    pending = list(modules)
    while pending:
        module_name = pending.pop()
        name = f"{_flat_name(module_name)}.py"
        if name in files:
            continue
        source, imported = _flattened_source(module_name)
        files[name] = source
        pending += imported
    return dict(sorted(files.items()))


def _flat_name(module_name: str) -> str:
    return module_name.removeprefix(f"{PACKAGE}.").replace(".", "_")


def _flattened_source(module_name: str) -> tuple[str, list[str]]:
    """`module_name`'s source with its relative imports pointing at flat siblings, and the modules they import."""
    spec = importlib.util.find_spec(module_name)
    path = Path(spec.origin)
    source = path.read_text(encoding="utf-8")
    package = module_name if path.name == "__init__.py" else module_name.rpartition(".")[0]
    lines = source.splitlines(keepends=True)
    imported = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        if node.module is None:  # `from . import name`: transformers would not find the file either
            raise ValueError(
                f"{path}: `from {'.' * node.level} import ...` (line {node.lineno}) cannot be saved as remote code; "
                "import from the module itself (`from .module import name`)."
            )
        target = importlib.util.resolve_name("." * node.level + node.module, package)
        line = lines[node.lineno - 1]
        lines[node.lineno - 1] = re.sub(r"from\s+\.+[\w.]*", f"from .{_flat_name(target)}", line, count=1)
        imported.append(target)
    return "".join(lines), imported


def push_with_code(
    model: MampPreTrainedModel,
    processor: MampSkeletonProcessor,
    repo_id: str,
    *,
    commit_message: str = "Upload MAMP model, processor and their code",
    private: bool | None = None,
    token: str | None = None,
) -> CommitInfo:
    """`save_with_code` into a temporary folder, then upload it to `repo_id` (created if needed) in one commit."""
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as folder:
        save_with_code(model, processor, folder)
        api.create_repo(repo_id, private=private, exist_ok=True)
        return api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message)


def _add_auto_map(path: Path, auto_map: dict[str, str]) -> None:
    # Written as `transformers` writes these files (2-space indent, sorted keys), so that a diff shows only the map.
    content = json.loads(path.read_text(encoding="utf-8"))
    content["auto_map"] = auto_map
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
