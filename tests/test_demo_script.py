"""The demo's command line as a newcomer meets it: plain help, and a busy admin port refused before anything runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_help_is_plain_text_about_the_demo():
    shown = subprocess.run(
        ["bash", "scripts/demo.sh", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
    )
    assert shown.stdout.startswith("Usage: bash scripts/demo.sh")
    assert "--port PORT" in shown.stdout and "PAPAY_ADMIN_PORT" in shown.stdout and "/sandbox/faults" in shown.stdout
    assert "--pythonpath" not in shown.stdout and "\x1b[" not in shown.stdout  # no Django plumbing, no colours


def test_demo_serve_refuses_a_busy_admin_port_before_it_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = subprocess.run(
            [sys.executable, "manage.py", "papay_demo", "--serve", "--port", str(port)],
            cwd=ROOT / "example_project",
            env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},  # the example's own
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert ran.returncode != 0
    assert f"the admin cannot listen on 127.0.0.1:{port}" in ran.stderr and "PAPAY_ADMIN_PORT" in ran.stderr
    assert "[1]" not in ran.stdout  # nothing started


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _example_environment(**extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}  # the example's own
    return {**environment, **extra}


def test_demo_prints_only_numbered_steps():
    ran = subprocess.run(
        [sys.executable, "manage.py", "papay_demo"],
        cwd=ROOT / "example_project",
        env=_example_environment(PAPAY_SANDBOX_PORT=str(_free_port())),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert [line.split("]")[0] for line in lines] == [f"[{n}" for n in range(1, len(lines) + 1)]
    assert "CONTRACT_NOT_EXIST" in lines[-2] and ran.stderr == ""  # the refusal said once, as a step


def test_demo_serve_leaves_a_signed_contract_to_charge():
    demo = subprocess.Popen(
        [sys.executable, "manage.py", "papay_demo", "--serve", "--port", str(_free_port())],
        cwd=ROOT / "example_project",
        env=_example_environment(PAPAY_SANDBOX_PORT=str(_free_port())),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert demo.stdout is not None
        shown = []
        for line in demo.stdout:  # up to the serving instructions
            shown.append(line)
            if line.startswith("Admin:"):
                break
        ready = [line for line in shown if "ready to charge" in line]
        assert len(ready) == 1 and " is signed, " in ready[0], "".join(shown)
    finally:
        demo.terminate()
        demo.wait(timeout=30)
