"""The demo's command line as a newcomer meets it: plain help, a busy admin port refused before anything runs, and
the whole flow, refund included, as it prints it."""

from __future__ import annotations

import os
import re
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


def test_the_demo_shares_the_platforms_commission_and_prints_both_balances(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        sandbox_port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(PAPAY_DEMO_DIR=str(tmp_path), PAPAY_SANDBOX_PORT=str(sandbox_port))
    manage = [sys.executable, "manage.py"]
    where = {"cwd": ROOT / "example_project", "env": env, "capture_output": True, "text": True, "timeout": 120}
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], check=True, **where)
    ran = subprocess.run([*manage, "papay_demo"], **where)
    assert ran.returncode == 0, ran.stderr
    out = ran.stdout
    assert "is frozen (charged with profit_sharing)" in out
    assert "shared ¥1.50 commission to the platform 1900000109 and finished" in out and "receiver SUCCESS" in out
    assert re.search(r"platform 1900000109: frozen ¥0\.00 → ¥0\.00, available ¥(\d+\.\d\d) → ¥", out)
    platform = re.search(r"platform 1900000109: .*available ¥([\d.]+) → ¥([\d.]+)", out)
    shop = re.search(r"sub-merchant 1900000201: frozen ¥([\d.]+) → ¥([\d.]+), available ¥([\d.]+) → ¥([\d.]+)", out)
    assert platform and shop
    # The demo's sandbox keeps its state between runs: the balances moved by exactly this charge, to the fen.
    assert round(float(platform[2]) - float(platform[1]), 2) == 1.50
    assert round(float(shop[1]) - float(shop[2]), 2) == 15.00
    assert round(float(shop[4]) - float(shop[3]), 2) == 13.50


def _free_port() -> int:
    with socket.socket() as probe:  # a free port for this run's sandbox (another run may hold 8765)
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_demo_shares_refunds_three_yuan_and_ends_with_its_day_reconciled_balanced(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}  # the example's own
    environment.update(PAPAY_SANDBOX_PORT=str(_free_port()), PAPAY_DEMO_DIR=str(tmp_path))  # a database of its own
    for command in (["migrate", "--noinput", "--verbosity", "0"], ["papay_demo"]):
        ran = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT / "example_project",
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    charged = next(index for index, line in enumerate(lines) if "charged ¥18.00" in line)
    refunded = next(index for index, line in enumerate(lines) if line.split("] ", 1)[-1].startswith("refund ¥3.00"))
    assert charged < refunded and "processing" in lines[refunded]
    assert "REFUND.SUCCESS" in lines[refunded + 1] and "HTTP 204" in lines[refunded + 1]
    assert "succeeded: ¥3.00 refunded, ¥0.00 of ¥3.00 left to refund" in lines[refunded + 2]
    last = lines[-1]
    assert "reconciled" in last and "against the sandbox's trade bill: balanced" in last
    assert "2 payments ¥18.00 in the bill, 2 here ¥18.00; 1 refund ¥3.00 in the bill, 1 here ¥3.00" in last


def _example_environment(folder, **extra: str) -> dict[str, str]:
    """The example's own settings, on a database of its own in ``folder`` (migrated here)."""
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    environment = {**environment, "PAPAY_DEMO_DIR": str(folder), **extra}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT / "example_project",
        env=environment,
        check=True,
        timeout=120,
    )
    return environment


def test_demo_prints_only_numbered_steps(tmp_path):
    ran = subprocess.run(
        [sys.executable, "manage.py", "papay_demo"],
        cwd=ROOT / "example_project",
        env=_example_environment(tmp_path, PAPAY_SANDBOX_PORT=str(_free_port())),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert [line.split("]")[0] for line in lines] == [f"[{n}" for n in range(1, len(lines) + 1)]
    assert sum("CONTRACT_NOT_EXIST" in line for line in lines) == 1 and ran.stderr == ""  # said once, as a step


def test_demo_serve_leaves_a_signed_contract_to_charge(tmp_path):
    demo = subprocess.Popen(
        [sys.executable, "manage.py", "papay_demo", "--serve", "--port", str(_free_port())],
        cwd=ROOT / "example_project",
        env=_example_environment(tmp_path, PAPAY_SANDBOX_PORT=str(_free_port())),
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
