"""The documentation a newcomer walks: the README and the site in docs/ (mkdocs.yml).

Every repository path a page names (mien/..., benchmarks/..., tests/..., docs/..., proto/...,
in code spans, code blocks or links) exists; every dotted `mien.x.y` module a page names
exists; every relative link resolves; and `mkdocs build --strict` succeeds, which also fails on
a missing anchor or a page left out of the nav. A module renamed without its docs fails here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]

# a path into the repository: starts at a top-level folder, not inside another path or URL
REPO_PATH = re.compile(r"(?<![\w./:-])((?:mien|benchmarks|tests|docs|proto)/[\w.*/-]*[\w*/])")
# a dotted module name in a code span: `mien.server.errors.rpc`
MODULE = re.compile(r"`(mien(?:\.\w+)+)")
# [text](target) and ![alt](target); an optional "title" after the target
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _exists(path: str) -> bool:
    path = path.rstrip("/")
    if any(c in path for c in "*?["):
        return bool(list(ROOT.glob(path)))
    return (ROOT / path).exists()


def _module_file(parts: list[str]) -> Path | None:
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _names_defined(source: str, name: str) -> bool:
    """Whether a module's text defines or imports `name` (a class, function, constant)."""
    return re.search(rf"^\s*(?:def|class|async def)\s+{name}\b|^{name}\s*[:=]|^\s*from\s+\S+\s+import\s.*\b{name}\b"
                     rf"|^\s*import\s.*\b{name}\b|^\s+self\.{name}\s*[:=]|^\s+{name}\s*[:=]",
                     source, re.M) is not None


def _module_ok(dotted: str) -> bool:
    """mien.a.b.Name: the longest prefix that is a module of this repository, then at most one
    name it defines (a class, function or constant; attributes after that are not checked).
    Names of the gRPC API (mien.v1.Mien, mien.v1.Analytics: proto packages) are not modules."""
    parts = dotted.split(".")
    if len(parts) > 2 and parts[1] == "v1" and parts[2][:1].isupper():
        return True
    i = len(parts)
    while i > 1 and _module_file(parts[:i]) is None:
        i -= 1
    module = _module_file(parts[:i])
    if module is None:
        return False
    if i == len(parts):
        return True
    return _names_defined(module.read_text(), parts[i])


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_repository_path_a_page_names_exists(page):
    text = page.read_text()
    missing = sorted({p.rstrip(".") for p in REPO_PATH.findall(text) if not _exists(p.rstrip("."))})
    assert not missing, f"{_page_id(page)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_module_a_page_names_exists(page):
    text = page.read_text()
    missing = sorted({m.rstrip(".") for m in MODULE.findall(text) if not _module_ok(m.rstrip("."))})
    assert not missing, f"{_page_id(page)} names modules or names that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (http:, mailto:) or an anchor on the same page (mkdocs checks those)
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{_page_id(page)} links to missing files: {broken}"


def test_the_life_of_a_search_diagram_names_files_that_exist():
    """The figure's text is drawn as paths in the SVG; its source names the files."""
    script = (DOCS / "img" / "life-of-a-search.py").read_text()
    named = REPO_PATH.findall(script)
    assert len(named) >= 10
    assert [p for p in named if not _exists(p)] == []


def test_every_docs_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")]
    assert [p for p in pages if p not in nav] == []


def test_the_readme_fits_on_about_two_screens():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 120, len(lines)
    text = "\n".join(lines[:30])
    assert "make demo" in text and "make test" in text  # the two commands come first


def _mkdocs() -> list[str] | None:
    local = Path(sys.executable).with_name("mkdocs")
    if local.exists():
        return [str(local)]
    found = shutil.which("mkdocs")
    return [found] if found else None


def test_the_site_builds_strictly_and_loads_nothing_from_the_network(tmp_path):
    mkdocs = _mkdocs()
    if mkdocs is None:
        pytest.skip("mkdocs is not installed: `make setup` installs it (pyproject's dev extra, mkdocs-material)")
    site = tmp_path / "site"
    done = subprocess.run([*mkdocs, "build", "--strict", "--quiet", "--site-dir", str(site)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    pages = list(site.rglob("*.html"))
    assert len(pages) >= len(list(DOCS.rglob("*.md")))
    remote = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=\"(?:https?:)?//[^\"]+\"", re.I)
    for html in pages:
        found = remote.findall(html.read_text())
        assert not found, f"{html.name} loads from the network: {found}"
    for css in site.rglob("*.css"):
        assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", css.read_text()), f"{css.name} loads a remote url()"
    assert (site / "img" / "life-of-a-search.svg").is_file()
