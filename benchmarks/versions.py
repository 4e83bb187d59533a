"""A benchmark run again under other Pythons and Djangos: ``--on 3.11/5.2,3.13/6.1``.

Each pair gets a virtualenv of its own beside the clone (``.venv-bench-<python>-<django>``, made once), with
django-papay[bench] installed in editable mode and Django pinned to that feature release (its newest patch).
The interpreter is pyenv's newest ``3.N`` when there is one, else ``python3.N`` on PATH. The benchmark then runs
there with the same arguments, one pair after the other (never at once: they would share the two cores), its
output shown as it comes; the caller prints what it collected from each.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def parse(pairs: str) -> list[tuple[str, str]]:
    """``"3.11/5.2,3.13/6.1"`` → ``[("3.11", "5.2"), ("3.13", "6.1")]``."""
    parsed = []
    for pair in filter(None, (part.strip() for part in pairs.split(","))):
        python, slash, django = pair.partition("/")
        if not slash or not python or not django:
            raise SystemExit(f"--on: {pair!r} is not PYTHON/DJANGO (e.g. 3.13/6.1)")
        parsed.append((python, django))
    return parsed


def interpreter(python: str) -> str:
    found = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{python}.*/bin/python")))
    command = found[-1] if found else shutil.which(f"python{python}")
    if not command:
        raise SystemExit(f"no Python {python}: install it (pyenv install {python}) or put python{python} on PATH")
    return command


def virtualenv(python: str, django: str) -> Path:
    """The pair's virtualenv, made and installed once (a stamp names what was installed)."""
    venv = REPO / f".venv-bench-{python}-{django}"
    stamp = venv / f".installed-{django}"
    if not stamp.exists():
        print(f"==> making {venv.name} (Python {python}, Django {django})", flush=True)
        subprocess.run([interpreter(python), "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "--editable", f"{REPO}[bench]", f"django~={django}.0"], check=True)
        stamp.touch()
    return venv


def run_on(pairs: str, script: Path, arguments: list[str], *, marker: tuple[str, ...]) -> int:
    """Run ``script`` with ``arguments`` under each pair; print each run's lines that start with one of
    ``marker`` again at the end, under the pair's name. Returns the worst exit code."""
    collected: list[tuple[str, list[str]]] = []
    worst = 0
    for python, django in parse(pairs):
        python_path = virtualenv(python, django) / "bin" / "python"
        print(f"==> {script.name} on Python {python}, Django {django}", flush=True)
        process = subprocess.Popen(
            [str(python_path), str(script), *arguments], stdout=subprocess.PIPE, text=True, cwd=REPO
        )
        lines = []
        for line in process.stdout or ():
            sys.stdout.write(line)
            if line.startswith(marker):
                lines.append(line.rstrip())
        worst = max(worst, process.wait())
        collected.append((f"Python {python}, Django {django}", lines))
    print(f"summary of {len(collected)} runs:")
    for name, lines in collected:
        print(f"  {name}:")
        for line in lines:
            print(f"    {line}")
    return worst
