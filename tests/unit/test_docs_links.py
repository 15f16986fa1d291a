"""The project carries its own contract: every `docs/<file>.md#<section>` that the code, the
tests or the README cite names a heading that exists, and nothing points outside the
repository."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CITATION = re.compile(r"docs/([a-z_]+\.md)(?:#([a-z0-9-]+))?")


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    lines = doc.read_text().splitlines()
    return {slug(line.lstrip("#")) for line in lines if re.match(r"#{1,6} ", line)}


def tracked_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / n for n in names if n.endswith((".py", ".md", ".toml", ".cfg", ".sh", ".html"))
            or n.startswith("bin/")]


def test_every_cited_section_exists():
    missing = []
    cited = 0
    for path in tracked_files():
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for doc_name, anchor in CITATION.findall(line):
                doc = ROOT / "docs" / doc_name
                cited += 1
                if not doc.is_file():
                    missing.append(f"{path.relative_to(ROOT)}:{number}: docs/{doc_name} does not exist")
                elif anchor and anchor not in anchors(doc):
                    missing.append(f"{path.relative_to(ROOT)}:{number}: no section #{anchor} in docs/{doc_name}")
    assert cited > 20, "the code cites its contract in docs/"
    assert not missing, "\n".join(missing)


def test_nothing_points_outside_the_repository():
    outside = re.compile(r"\.\./shared|shared/spec|shared/notes|\b(?:API|REALTIME)\.md §")
    found = []
    for path in tracked_files():
        if path.is_file() and path != Path(__file__).resolve():
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if outside.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_links_inside_the_docs_resolve():
    """`[text](#section)` and `[text](other.md#section)` in docs/ and the README."""
    link = re.compile(r"\]\(([a-z_]*\.md|docs/[a-z_]+\.md)?(?:#([a-z0-9-]+))?\)")
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            for target, anchor in link.findall(line):
                if not target and not anchor:
                    continue
                path = doc if not target else (doc.parent / target)
                if not path.is_file():
                    broken.append(f"{doc.relative_to(ROOT)}:{number}: {target} does not exist")
                elif anchor and anchor not in anchors(path):
                    broken.append(f"{doc.relative_to(ROOT)}:{number}: no section #{anchor} in {target or doc.name}")
    assert not broken, "\n".join(broken)
