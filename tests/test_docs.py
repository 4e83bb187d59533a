"""The docs hold to the project: the README stays a short page with the two commands, CONTRIBUTING's layout map
names every module of django_papay/ (and nothing that is not there), mkdocs.yml's nav lists every page, and no
page points at tracker numbers. (Broken links, anchors and images between the pages fail `mkdocs build --strict`,
which scripts/test.sh runs.)"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "django_papay"
README_MAX_LINES = 300
# The two commands the README promises, and CI runs.
DEMO_COMMAND = "bash scripts/demo.sh"
TEST_COMMAND = "bash scripts/test.sh"
ENTRY = re.compile(r"^(?P<indent> *)(?P<name>[\w.]+(?:/[\w.]+)*(?:/|\.py))(?:\s|$)")


def _read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def test_readme_stays_short():
    lines = _read("README.md").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move the detail to a page in docs/"


def test_readme_names_the_two_commands():
    readme = _read("README.md")
    assert DEMO_COMMAND in readme
    assert TEST_COMMAND in readme


def test_ci_runs_the_readme_commands():
    ci = ROOT / ".ci" / "run"
    if not ci.exists():  # the sdist has no CI script
        pytest.skip(".ci/run is not in this tree")
    script = ci.read_text(encoding="utf-8")
    assert TEST_COMMAND in script
    assert DEMO_COMMAND in script


def test_readme_links_to_files_that_exist():
    readme = _read("README.md")
    targets = re.findall(r"\]\((?!https?://|#|mailto:)([^)#\s]+)", readme)
    assert any(target.startswith("docs/") for target in targets), "the README links to the guide's pages"
    missing = [target for target in targets if not (ROOT / target).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def _layout_map() -> list[str]:
    """The paths CONTRIBUTING's layout map names: the first code block under '## Layout', one entry a line,
    nested by indentation (a line whose first word is not a folder/ or a module.py continues the one above)."""
    contributing = _read("CONTRIBUTING.md")
    section = contributing.split("\n## Layout\n", 1)[1]
    block = section.split("```", 2)[1]
    stack: list[tuple[int, str]] = []
    paths = []
    for line in block.splitlines():
        match = ENTRY.match(line)
        if not match:
            continue
        indent, name = len(match["indent"]), match["name"]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (stack[-1][1] if stack else "") + name
        paths.append(path)
        if name.endswith("/"):
            stack.append((indent, path))
    return paths


def _modules() -> list[str]:
    """Every .py file of the package that the map must name: migrations are named as a group, and an empty
    __init__.py only marks its folder."""
    modules = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if "__pycache__" in relative or relative.startswith("django_papay/migrations/"):
            continue
        if path.name == "__init__.py" and not path.read_text(encoding="utf-8").strip():
            continue
        modules.append(relative)
    return modules


def test_layout_map_names_every_module():
    named = set(_layout_map())
    missing = [module for module in _modules() if module not in named]
    assert not missing, f"CONTRIBUTING.md's layout map does not name: {missing}"


def test_layout_map_names_only_what_exists():
    stale = [path for path in _layout_map() if path.startswith("django_papay/") and not (ROOT / path).exists()]
    assert not stale, f"CONTRIBUTING.md's layout map names what is not there: {stale}"


def test_mkdocs_nav_lists_every_page():
    nav = set(re.findall(r"^\s*- (?:[^\n]*: )?([\w/-]+\.md)\s*$", _read("mkdocs.yml"), flags=re.M))
    pages = {path.relative_to(ROOT / "docs").as_posix() for path in (ROOT / "docs").rglob("*.md")}
    assert pages, "docs/ has the guide's pages"
    assert nav == pages, f"in docs/ but not in the nav: {sorted(pages - nav)}; in the nav only: {sorted(nav - pages)}"


TRACKER_NUMBER = re.compile(r"\b(?:issues?|findings?)\s+#?\d|(?<![\w&/])#\d+\b", re.IGNORECASE)


def test_docs_say_what_not_which_tracker_number():
    files = ["README.md", "CONTRIBUTING.md", "CHANGELOG.md", "SECURITY.md", "benchmarks/README.md"]
    files += [path.relative_to(ROOT).as_posix() for path in sorted((ROOT / "docs").rglob("*.md"))]
    found = [
        f"{name}:{number}: {line.strip()}"
        for name in files
        if (ROOT / name).exists()
        for number, line in enumerate(_read(name).splitlines(), 1)
        if TRACKER_NUMBER.search(line)
    ]
    assert not found, "name what changed, not a tracker number:\n" + "\n".join(found)
