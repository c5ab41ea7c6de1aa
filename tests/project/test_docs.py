"""The README and the docs keep their promises."""

from __future__ import annotations

import re

from app.core.config import Settings
from tests.dbutil import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_names_its_two_commands() -> None:
    assert "make run" in README
    assert "make test" in README


def test_readme_settings_table_lists_every_setting() -> None:
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.MULTILINE))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_readme_links_resolve() -> None:
    for target in re.findall(r"\]\((docs/[^)]+)\)", README):
        assert (PROJECT_ROOT / target).is_file(), target


def test_dispatch_doc_has_the_state_machine_of_the_code() -> None:
    from app.calls.state import TRANSITIONS

    doc = (PROJECT_ROOT / "docs" / "dispatch.md").read_text(encoding="utf-8")
    assert "stateDiagram-v2" in doc
    for source, targets in TRANSITIONS.items():
        for target in targets:
            arrow = f"{source.value} --> {target.value}"
            assert re.search(rf"\b{arrow}\b", doc), arrow


def test_the_architecture_page_names_every_domain_package() -> None:
    doc = (PROJECT_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    packages = sorted(path.parent.name for path in (PROJECT_ROOT / "app").glob("*/__init__.py"))
    missing = [name for name in packages if f"  {name}/" not in doc]
    assert missing == []


def test_code_paths_named_in_the_docs_exist() -> None:
    """A file the docs point a reader to (`app/…`, `tests/…`) must be there."""
    stale = []
    for page in [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for path in re.findall(r"`((?:app|tests|bench|migrations)/[\w./]+\.py)", text):
            if not (PROJECT_ROOT / path).is_file():
                stale.append(f"{page.name}: {path}")
    assert stale == []
