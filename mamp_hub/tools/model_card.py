"""Model cards (a checkpoint's README.md on the Hub), rendered from the card template that ships with the package.

The template, `MODEL_CARD.md` in this folder (the repository's MODEL_CARD.md links to it), is both the project's model
card and the format of every checkpoint's card: YAML front matter (edited here through `huggingface_hub.ModelCard`),
regions between `<!-- mamp:begin NAME -->` and `<!-- mamp:end NAME -->` (`checkpoint`: what these weights are and
the command that made them; `results`: measured numbers) replaced by the checkpoint's text, and `<org>/<repo>`
replaced by its repository id. `mamp-release` (the authors' checkpoints) and `training/` (our runs) both render
their cards with `render_model_card`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib.resources import files

from huggingface_hub import EvalResult, ModelCard

TEMPLATE_NAME = "MODEL_CARD.md"
CARD_REGIONS = ("checkpoint", "results")


def card_template() -> str:
    """The text of the card template shipped in the package (found in a wheel as in a clone)."""
    return files(__package__).joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")


def replace_card_region(text: str, name: str, content: str) -> str:
    """`text` with the template region `name` (between `<!-- mamp:begin name -->` and its end marker) set to
    `content`; the markers stay, so that a card can be filled again."""
    begin, end = f"<!-- mamp:begin {name} -->", f"<!-- mamp:end {name} -->"
    if begin not in text or end not in text:
        raise ValueError(
            f"The card template has no {begin} ... {end} region; pass a template in the format of mamp_hub's "
            f"{TEMPLATE_NAME} (or none, for that one)."
        )
    head, rest = text.split(begin, 1)
    return f"{head}{begin}\n{content.strip()}\n{end}{rest.split(end, 1)[1]}"


def render_model_card(
    repo_id: str,
    *,
    checkpoint: str,
    results: str,
    pipeline_tag: str,
    datasets: Sequence[str] | None = None,
    base_model: str | None = None,
    eval_results: Sequence[EvalResult] = (),
    license: str | None = None,
    template: str | None = None,
) -> str:
    """A checkpoint's card: the template with its front matter and regions filled.

    Args:
        repo_id: the Hub id (or local folder) the card's code examples load from; replaces `<org>/<repo>`.
        checkpoint, results: Markdown of the `checkpoint` and `results` regions.
        pipeline_tag: `"feature-extraction"` (an encoder) or `"video-classification"` (a classifier).
        datasets: Hub ids of the data sets the weights saw (None: the template's list).
        base_model: the repository a classifier was trained from, if it is on the Hub.
        eval_results: measured (or attributed) results for the card's `model-index`; each carries its source.
        license: the weights' license id, if not the template's.
        template: card template text (default: `card_template()`).
    """
    card = ModelCard(template if template is not None else card_template())
    data = card.data
    data.pipeline_tag = pipeline_tag
    if datasets is not None:
        data.datasets = list(datasets) or None
    if base_model is not None:
        data.base_model = base_model
        data.base_model_relation = "finetune"
    if license is not None:
        data.license = license
    if eval_results:
        data.model_name = repo_id
        data.eval_results = list(eval_results)
    text = re.sub(r"<!--\n.*?-->\n\n", "", card.text, count=1, flags=re.DOTALL)  # the template's notes to editors
    for name, content in zip(CARD_REGIONS, (checkpoint, results), strict=True):
        text = replace_card_region(text, name, content)
    card.text = text.replace("<org>/<repo>", repo_id)
    return card.content
