"""mamp-release: the authors' released checkpoints as one Hub repository each, with a filled model card.

    mamp-release SOURCE --output-dir released/ --org ORG            # convert, verify, write the folders
    mamp-release SOURCE --output-dir released/ --org ORG --push     # ... and upload them

SOURCE is a folder holding the authors' `.pth` files (https://github.com/maoyunyao/MAMP): the pre-trained,
linear-probe and fine-tuned models of NTU-60 X-sub / X-view and NTU-120 X-sub / X-set, in any sub-folders. Each
file is identified by its path (the authors' output folders are named like `ntu60_xsub_joint/linear_mamp_...`) and
by its contents (the head's weights tell the stage, its class count the data set, and the `args` stored with the
weights the data file they were trained on); where both say something they must agree. Each is converted with
`mamp_hub.tools.convert`, verified, and written to `OUTPUT_DIR/mamp-{dataset}-{protocol}-{stage}` with its processor and
model card. Without `--push` nothing touches the network.

`--push` uploads each folder to `ORG/mamp-...` in one commit, pre-trained encoders first. A repository whose files
already equal the folder's is skipped, so after a failure the same command resumes where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import EvalResult, HfApi
from huggingface_hub.errors import RepositoryNotFoundError
from huggingface_hub.hf_api import RepoFile
from transformers.utils import logging as transformers_logging

from ..processing_mamp import MampSkeletonProcessor
from ..skeletons import get_id2label
from .cli import console_script
from .convert import checkpoint_kind, convert_checkpoint, infer_config, load_official_checkpoint
from .model_card import render_model_card
from .remote_code import save_with_code

AUTHORS_REPOSITORY = "https://github.com/maoyunyao/MAMP"
DEFAULT_TERMS = (
    "These are the authors' weights (Mao et al., ICCV 2023), converted; their repository "
    f"({AUTHORS_REPOSITORY}) states no license for them, so ask the authors before any use beyond non-commercial "
    "research. They were trained on NTU RGB+D, which its owners (ROSE Lab, NTU Singapore) release for "
    "non-commercial academic research only."
)

DATASETS = {"ntu60": "NTU RGB+D 60", "ntu120": "NTU RGB+D 120"}
DATASET_IDS = {"ntu60": "ntu_rgbd_60", "ntu120": "ntu_rgbd_120"}
PROTOCOLS = {"xsub": "cross-subject (X-sub)", "xview": "cross-view (X-view)", "xset": "cross-setup (X-set)"}
STAGES = ("pretrain", "linear", "finetune")
# `mamp_hub.tools.convert.checkpoint_kind` -> the stage's name in repository names.
STAGE_OF_KIND = {"pretrain": "pretrain", "linear_probe": "linear", "finetune": "finetune"}

# Top-1 accuracy (%) the authors' README reports for the checkpoints it links (not the paper's numbers, which
# MODEL_CARD.md lists separately).
REPORTED_TOP1 = {
    ("ntu60", "xsub", "linear"): 85.0,
    ("ntu60", "xview", "linear"): 89.0,
    ("ntu120", "xsub", "linear"): 78.1,
    ("ntu120", "xset", "linear"): 79.5,
    ("ntu60", "xsub", "finetune"): 93.0,
    ("ntu60", "xview", "finetune"): 97.5,
    ("ntu120", "xsub", "finetune"): 89.8,
    ("ntu120", "xset", "finetune"): 91.5,
}

# What a file's path says: one pattern per value, matched case-insensitively anywhere in the path relative to SOURCE.
_PATH_PATTERNS = {
    "dataset": {"ntu60": r"ntu[-_]?60(?!\d)", "ntu120": r"ntu[-_]?120(?!\d)"},
    "protocol": {"xsub": r"x[-_]?sub", "xview": r"x[-_]?view", "xset": r"x[-_]?set"},
    "stage": {"pretrain": r"pre[-_]?train", "linear": r"lin(ear|probe)", "finetune": r"fine[-_]?tun"},
}
# The authors' SkeletonMAE baseline folders (`pretrain_mae_...`, `finetune_mae_...`): not MAMP, not released.
_BASELINE_PATTERN = r"(?<![a-z])mae(?![a-z])"


class ReleaseError(ValueError):
    """The source folder, a checkpoint in it, or a push is not what a release needs."""


@dataclass(frozen=True)
class Release:
    """One Hub repository: a data set, an evaluation protocol and a training stage."""

    dataset: str
    protocol: str
    stage: str

    @property
    def name(self) -> str:
        return f"mamp-{self.dataset}-{self.protocol}-{self.stage}"

    @property
    def pretrained(self) -> Release:
        """The repository of the pre-trained encoder this checkpoint was trained from (itself for `pretrain`)."""
        return Release(self.dataset, self.protocol, "pretrain")

    @property
    def title(self) -> str:
        return f"{DATASETS[self.dataset]}, {PROTOCOLS[self.protocol]}"


# Every release, in push order: a classifier's `base_model` (its pre-trained repository) is uploaded before it.
RELEASES = tuple(
    Release(dataset, protocol, stage)
    for stage in STAGES
    for dataset, protocol in (("ntu60", "xsub"), ("ntu60", "xview"), ("ntu120", "xsub"), ("ntu120", "xset"))
)


@dataclass(frozen=True)
class SourceCheckpoint:
    """A file of the authors, identified: where it is, its SHA-256, and the repository it becomes."""

    path: Path
    relative_path: str
    sha256: str
    release: Release
    # `convert_checkpoint` options the file does not answer itself (attention heads, action names).
    config_overrides: Mapping[str, object]


def find_checkpoints(source: str | Path) -> list[SourceCheckpoint]:
    """Identify every `.pth` file under `source` by its path and contents; one per release, in push order.

    Raises:
        ReleaseError: `source` holds no `.pth` file, a file cannot be identified, its path and contents disagree,
            it is a SkeletonMAE baseline, or two files are the same release.
    """
    source = Path(source)
    if not source.is_dir():
        raise ReleaseError(f"{source} is not a folder; pass the folder holding the authors' .pth checkpoints.")
    paths = sorted(source.rglob("*.pth"))
    if not paths:
        raise ReleaseError(f"{source} holds no .pth file; pass the folder holding the authors' .pth checkpoints.")
    found: dict[Release, SourceCheckpoint] = {}
    for path in paths:
        relative_path = path.relative_to(source).as_posix()
        release, config_overrides = identify_checkpoint(path, relative_path)
        checkpoint = SourceCheckpoint(path, relative_path, _sha256(path), release, config_overrides)
        if checkpoint.release in found:
            raise ReleaseError(
                f"{found[checkpoint.release].relative_path} and {relative_path} are both {checkpoint.release.name}; "
                "keep only the released one in the source folder."
            )
        found[checkpoint.release] = checkpoint
    return [found[release] for release in RELEASES if release in found]


def identify_checkpoint(path: Path, name: str) -> tuple[Release, dict[str, object]]:
    """The release of the checkpoint at `path`, from `name` (its path in the source folder) and its contents, and
    the `convert_checkpoint` options it needs.
    """
    if re.search(_BASELINE_PATTERN, name, re.IGNORECASE):
        raise ReleaseError(
            f"{name} is named as a SkeletonMAE baseline checkpoint (mae), which is not released; move it out of the "
            "source folder."
        )
    state_dict, args = load_official_checkpoint(path)
    args = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
    if "model_mae" in str(args.get("model", "")):
        raise ReleaseError(
            f"{name} is a SkeletonMAE baseline checkpoint (args.model {args['model']!r}), which is not released; "
            "move it out of the source folder."
        )
    from_path = {field: _match_one(patterns, name) for field, patterns in _PATH_PATTERNS.items()}
    from_contents = _fields_from_contents(state_dict, args, name)
    fields = {}
    for field, patterns in _PATH_PATTERNS.items():
        said = {value for value in (from_path[field], from_contents.get(field)) if value is not None}
        if len(said) > 1:
            raise ReleaseError(
                f"{name}: its path says {field} {from_path[field]!r} but its contents say "
                f"{from_contents[field]!r}; rename the file or its folder to match what it holds."
            )
        if not said:
            raise ReleaseError(
                f"{name}: neither its path nor its contents tell its {field}; put it in a folder whose name says "
                f"it (one of {', '.join(patterns)}), as the authors' output folders do."
            )
        fields[field] = said.pop()
    release = Release(**fields)
    if release not in RELEASES:
        raise ReleaseError(
            f"{name} is {release.dataset} {release.protocol}, which has no released checkpoint (NTU-60 has xsub and "
            "xview, NTU-120 xsub and xset); move it out of the source folder."
        )
    config_overrides: dict[str, object] = {}
    model_args = args.get("model_args")
    if not isinstance(model_args, Mapping) or "num_heads" not in model_args:
        config_overrides["num_attention_heads"] = 8  # every configuration of the authors; the weights cannot tell
    if release.stage != "pretrain":
        config_overrides["id2label"] = get_id2label(release.dataset)
    try:  # what converting it would refuse, before anything is written
        infer_config(state_dict, args, **config_overrides)
    except ValueError as error:
        raise ReleaseError(
            f"{name} cannot be converted: {error} It is not one of the authors' released checkpoints as they are; "
            "move it out of the source folder."
        ) from None
    return release, config_overrides


def _match_one(patterns: Mapping[str, str], text: str) -> str | None:
    """The one value whose pattern occurs in `text`; None when none or several do (the text then says nothing)."""
    matches = [value for value, pattern in patterns.items() if re.search(pattern, text, re.IGNORECASE)]
    return matches[0] if len(matches) == 1 else None


def _fields_from_contents(
    state_dict: Mapping[str, torch.Tensor], args: Mapping[str, object], name: str
) -> dict[str, str]:
    """What the weights and their `args` say: the stage (from the head), the data set and protocol (from the data
    file the authors' configuration names, e.g. `data/ntu/NTU60_XSub.npz`) and the data set (from the class count).
    """
    kind = checkpoint_kind(state_dict)
    fields = {"stage": STAGE_OF_KIND[kind]}
    data_paths = " ".join(
        str(feeder.get("data_path", ""))
        for feeder in (args.get("train_feeder_args"), args.get("val_feeder_args"))
        if isinstance(feeder, Mapping)
    )
    for field in ("dataset", "protocol"):
        value = _match_one(_PATH_PATTERNS[field], data_paths)
        if value is not None:
            fields[field] = value
    head = {"linear_probe": "head.fc.1.weight", "finetune": "head.fc2.weight"}.get(kind)
    if head is not None:
        num_classes = state_dict[head].shape[0]
        dataset = {60: "ntu60", 120: "ntu120"}.get(num_classes)
        if dataset is None:
            raise ReleaseError(
                f"{name}: its head has {num_classes} classes, but the released checkpoints have 60 (NTU-60) or 120 "
                "(NTU-120), so it is not one of them; move it out of the source folder (mamp-convert --id2label "
                "converts other checkpoints)."
            )
        if fields.setdefault("dataset", dataset) != dataset:
            raise ReleaseError(
                f"{name}: its head has {num_classes} classes ({dataset}) but its args name the data file "
                f"{data_paths!r}; it is not one of the authors' released checkpoints."
            )
    return fields


def write_release(
    checkpoint: SourceCheckpoint,
    output_dir: str | Path,
    org: str,
    *,
    template: str | None = None,
    terms: str = DEFAULT_TERMS,
    with_code: bool = False,
) -> Path:
    """Convert and verify `checkpoint`, and write its repository folder (model, processor, card) under `output_dir`.

    The folder is written whole or not at all: it is built next to its place and moved there once it is complete,
    replacing what an earlier run wrote; a failure leaves the earlier folder (if any) as it was.

    Returns the folder, `output_dir / checkpoint.release.name`.
    """
    folder = Path(output_dir) / checkpoint.release.name
    written_before = _release_files(folder)
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by a run that was killed
    partial.mkdir(parents=True)
    try:
        model = convert_checkpoint(checkpoint.path, partial, verbose=False, **checkpoint.config_overrides)
        if with_code:
            save_with_code(model, MampSkeletonProcessor.from_pretrained(partial), partial)
        # What a user downloads is the folder: it must load back to exactly the converted weights.
        reloaded = type(model).from_pretrained(partial).state_dict()
        for key, tensor in model.state_dict().items():
            if not torch.equal(tensor, reloaded[key]):
                raise ReleaseError(
                    f"{checkpoint.relative_path}: its folder does not reload to the converted weights ({key} "
                    "differs); please report it."
                )
        card = render_release_card(checkpoint, org, template=template, terms=terms, with_code=with_code)
        (partial / "README.md").write_text(card, encoding="utf-8")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if written_before is not None:  # replaced whole: a run without `--with-code` leaves no earlier code behind
        for path in written_before:
            path.unlink()
        folder.rmdir()
    partial.rename(folder)
    return folder


def _release_files(folder: Path) -> list[Path] | None:
    """The files an earlier mamp-release wrote into `folder` (None when there is no folder); refuses a folder that
    holds anything else, which is not mamp-release's to replace."""
    if not folder.exists():
        return None
    paths = list(folder.iterdir())
    for path in paths:
        if not (path.is_file() and path.suffix in {".json", ".safetensors", ".md", ".py"}):
            raise ReleaseError(
                f"{folder} holds {path.name}, which mamp-release does not write; pass an --output-dir whose "
                "release folders hold only what an earlier mamp-release wrote."
            )
    return paths


def render_release_card(
    checkpoint: SourceCheckpoint,
    org: str,
    *,
    template: str | None = None,
    terms: str = DEFAULT_TERMS,
    with_code: bool = False,
) -> str:
    """The model card (README.md) of `checkpoint`'s repository under `org`, from the card template (default: the one
    shipped with the package).

    The text depends only on its arguments (no dates, no local paths), so that converting the same file twice writes
    the same card, which lets `push_release` see that a repository is up to date.
    """
    release = checkpoint.release
    repo_id = f"{org}/{release.name}"
    eval_results = []
    if release.stage != "pretrain":
        eval_results.append(
            EvalResult(
                task_type="video-classification",
                task_name="Skeleton-based action recognition",
                dataset_type=DATASET_IDS[release.dataset],
                dataset_name=f"{release.title}, test split",
                dataset_split="test",
                metric_type="accuracy",
                metric_name="Top-1 accuracy (%)",
                metric_value=_top1(release),
                source_name="Reported by the authors (README of maoyunyao/MAMP), not measured by mamp-hub",
                source_url=AUTHORS_REPOSITORY,
            )
        )
    return render_model_card(
        repo_id,
        checkpoint=_checkpoint_text(checkpoint, org, terms, with_code),
        results=NOTHING_MEASURED,
        pipeline_tag="feature-extraction" if release.stage == "pretrain" else "video-classification",
        datasets=[DATASET_IDS[release.dataset]],
        base_model=None if release.stage == "pretrain" else f"{org}/{release.pretrained.name}",
        eval_results=eval_results,
        template=template,
    )


_STAGE_DESCRIPTIONS = {
    "pretrain": "the authors' pre-trained encoder and motion decoder (`MampForMaskedMotionPrediction`; load the "
    "encoder alone with `MampModel`), pre-trained without labels",
    "linear": 'the authors\' linear probe (`MampForSkeletonClassification`, `classifier_head="linear_probe"`): '
    "a linear classifier trained on their frozen pre-trained encoder",
    "finetune": "the authors' fine-tuned classifier (`MampForSkeletonClassification`, "
    '`classifier_head="finetune"`): their pre-trained encoder and a new head trained together',
}


def _checkpoint_text(checkpoint: SourceCheckpoint, org: str, terms: str, with_code: bool) -> str:
    release = checkpoint.release
    rows = {
        "data set and protocol": release.title,
        "source file": f"`{checkpoint.relative_path}` from the authors' release ({AUTHORS_REPOSITORY})",
        "source SHA-256": f"`{checkpoint.sha256}`",
    }
    if release.stage != "pretrain":
        pretrained = f"{org}/{release.pretrained.name}"
        rows["pre-trained encoder"] = f"[`{pretrained}`](https://huggingface.co/{pretrained})"
    lines = [
        f"This repository holds {_STAGE_DESCRIPTIONS[release.stage]}, on **{release.title}**. The weights are the "
        "authors'; `mamp-convert`'s conversion only renamed them into this package's layout (reading the file with "
        "`torch.load(weights_only=True)`), checked the joint embedding against the authors' own computation, and "
        "checked that this folder reloads to the same tensors.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in rows.items()),
        "",
        _reported_text(release, org),
        "",
        "Produced by:",
        "",
        "```bash",
        f"mamp-release <folder of the authors' checkpoints> --output-dir <folder> --org {org}"
        + (" --with-code" if with_code else ""),
        "```",
    ]
    if with_code:
        lines += [
            "",
            "The repository also holds the model's code, so that `transformers` loads it without `mamp-hub` "
            "(`trust_remote_code=True`): that runs the repository's Python files on your machine; read them and "
            "pin `revision=` to the commit you read, or install `mamp-hub` and load without it.",
        ]
    lines += ["", f"Terms: {terms}"]
    return "\n".join(lines)


def _reported_text(release: Release, org: str) -> str:
    """The authors' numbers for this checkpoint (or, for an encoder, for the classifiers trained from it)."""
    source = f"reported by the authors in the README of {AUTHORS_REPOSITORY}, not measured by `mamp-hub`"
    if release.stage != "pretrain":
        return (
            f"Top-1 accuracy on the {release.title} test split: **{_top1(release)} %** ({source}). The card's "
            "`model-index` carries this number with its source."
        )
    linear, finetune = (Release(release.dataset, release.protocol, stage) for stage in ("linear", "finetune"))
    return (
        f"Top-1 accuracy of the classifiers trained from this encoder on the {release.title} test split: "
        f"{_top1(linear)} % with a linear probe (`{org}/{linear.name}`), {_top1(finetune)} % fine-tuned "
        f"(`{org}/{finetune.name}`) ({source})."
    )


def _top1(release: Release) -> float:
    return REPORTED_TOP1[release.dataset, release.protocol, release.stage]


NOTHING_MEASURED = (
    "Nothing was measured by `mamp-hub` for these weights: they are the authors' checkpoint, converted, and this "
    'package has not evaluated them on the test split yet. The authors\' own numbers are in "This checkpoint" above.'
)


def push_release(folders: Sequence[Path], org: str, *, private: bool | None = None, api: HfApi | None = None) -> None:
    """Upload each folder to `org/<folder name>`, one commit per repository, skipping those already up to date.

    `private=None` creates new repositories with the Hub's default visibility for `org`.

    Raises:
        ReleaseError: an upload failed; the message says how many repositories are done, and running the same
            push again resumes (the repositories that are up to date are skipped).
    """
    api = api or HfApi()
    for done, folder in enumerate(folders):
        repo_id = f"{org}/{folder.name}"
        if is_up_to_date(api, repo_id, folder):
            print(f"{repo_id}: up to date, skipped")
            continue
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            commit = api.upload_folder(
                repo_id=repo_id, folder_path=folder, commit_message=f"Release {folder.name} (converted with mamp-hub)"
            )
        except Exception as error:  # any failure (HTTP, network, auth) ends the release at this repository
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ReleaseError(
                f"Pushing {repo_id} failed ({reason}); {done} of {len(folders)} repositories are on the Hub, and "
                "running the same command again pushes the rest."
            ) from error
        print(f"{repo_id}: pushed, {commit.commit_url}")


def is_up_to_date(api: HfApi, repo_id: str, folder: Path) -> bool:
    """Whether `repo_id` exists and holds every file of `folder` with the same content (it may hold others)."""
    try:
        remote = {item.path: item for item in api.list_repo_tree(repo_id, recursive=True) if isinstance(item, RepoFile)}
    except RepositoryNotFoundError:
        return False
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        item = remote.get(path.relative_to(folder).as_posix())
        if item is None:
            return False
        # The Hub identifies an LFS file by its SHA-256 and a regular one by its git object id.
        if item.lfs is not None:
            if item.lfs.sha256 != _sha256(path):
                return False
        elif item.blob_id != _git_blob_id(path):
            return False
    return True


def _sha256(path: Path) -> str:
    return _file_digest(path, hashlib.sha256())


def _git_blob_id(path: Path) -> str:
    return _file_digest(path, hashlib.sha1(b"blob %d\0" % path.stat().st_size))


def _file_digest(path: Path, digest: hashlib._Hash) -> str:
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@console_script("mamp-release")
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="mamp-release",
        description="Convert the authors' released MAMP checkpoints into one save_pretrained folder per Hub "
        "repository, with model cards, and optionally upload them.",
    )
    parser.add_argument("source", type=Path, help="folder holding the authors' .pth checkpoints (any sub-folders)")
    parser.add_argument("--output-dir", type=Path, required=True, help="where to write one folder per repository")
    parser.add_argument("--org", required=True, help="Hub user or organisation the repositories belong to")
    parser.add_argument("--push", action="store_true", help="upload the folders (without it, no network access)")
    parser.add_argument("--private", action="store_true", help="create the repositories as private")
    parser.add_argument(
        "--with-code",
        action="store_true",
        help="also save the model's code, for trust_remote_code=True loading without mamp-hub (docs/remote_code.md)",
    )
    parser.add_argument(
        "--card-template", type=Path, help="model card template (default: the MODEL_CARD.md shipped with mamp-hub)"
    )
    parser.add_argument("--terms", default=DEFAULT_TERMS, help="the weights' terms of use, stated in each card")
    options = parser.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", options.org):
        raise ReleaseError(f"--org {options.org!r} is not a Hub user or organisation name; pass one like 'my-lab'.")
    template = None
    if options.card_template is not None:
        if not options.card_template.is_file():
            raise ReleaseError(
                f"No card template at {options.card_template}; pass the path of a card template in the format of "
                "mamp-hub's MODEL_CARD.md, or leave --card-template out to use the one shipped with mamp-hub."
            )
        template = options.card_template.read_text(encoding="utf-8")
    # Each checkpoint is saved and reloaded once: its line below says more than transformers' per-shard bars.
    transformers_logging.disable_progress_bar()

    checkpoints = find_checkpoints(options.source)
    folders = []
    for checkpoint in checkpoints:
        folder = write_release(
            checkpoint,
            options.output_dir,
            options.org,
            template=template,
            terms=options.terms,
            with_code=options.with_code,
        )
        print(f"{checkpoint.relative_path} (sha256 {checkpoint.sha256[:12]}) -> {folder}")
        folders.append(folder)
    missing = [release.name for release in RELEASES if release not in {c.release for c in checkpoints}]
    if missing:
        print(f"not in {options.source}: {', '.join(missing)}")
    if options.push:
        push_release(folders, options.org, private=options.private or None)


if __name__ == "__main__":
    main()
