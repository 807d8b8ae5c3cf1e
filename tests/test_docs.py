"""The documentation holds together: every relative link of the README and docs/ leads to a file (and heading) that
exists, and docs/layout.md maps every module of the package, and only those.

The README's and docs/' runnable blocks are run in tests/test_examples.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "training" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", FENCE.sub("", markdown), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def relative_links(document: Path) -> list[str]:
    links = LINK.findall(FENCE.sub("", document.read_text(encoding="utf-8")))
    return [link for link in links if not re.match(r"[a-z]+:", link)]  # not https:, mailto:, ...


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_lead_to_existing_files_and_headings(document):
    broken = []
    for link in relative_links(document):
        target, _, anchor = link.partition("#")
        path = (document.parent / target).resolve() if target else document
        if not path.exists():
            broken.append(f"{link} (no {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path})")
        elif anchor and path.suffix == ".md" and anchor not in heading_anchors(path.read_text(encoding="utf-8")):
            broken.append(f"{link} (no heading #{anchor} in {path.relative_to(ROOT)})")
    assert not broken, f"{document.relative_to(ROOT)} has broken links: {broken}"


def test_the_link_check_finds_a_broken_link_and_a_missing_heading(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n[ok](#title) [gone](missing.md) [bad](a.md#nowhere)\n")
    links = relative_links(tmp_path / "a.md")
    assert links == ["#title", "missing.md", "a.md#nowhere"]
    assert heading_anchors("## `h36m` — Human3.6M, 17 joints\n## Deployment (ONNX)") == {
        "h36m--human36m-17-joints",
        "deployment-onnx",
    }


def test_the_layout_map_names_every_module_of_the_package_and_only_those():
    """docs/layout.md has one table row per module: `` | `data/npz.py` | ... | ``, paths relative to mamp_hub/."""
    package = ROOT / "mamp_hub"
    modules = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if path.name != "__init__.py" or path.parent == package  # a subpackage's __init__ only gathers names
    }
    mapped = re.findall(
        r"^\| `([\w/]+\.py)` \|", (ROOT / "docs" / "layout.md").read_text(encoding="utf-8"), re.MULTILINE
    )
    assert len(mapped) == len(set(mapped)), "docs/layout.md maps a module twice"
    assert not modules - set(mapped), f"docs/layout.md does not map {sorted(modules - set(mapped))}"
    assert not set(mapped) - modules, f"docs/layout.md maps modules that do not exist: {sorted(set(mapped) - modules)}"
