"""The processes the benchmarks start: the sandbox CLI in its own interpreter, and a clean stop for any of them."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence


def start_sandbox(
    keys_dir: str, *, latency_ms: float = 0.0, tls_dir: str | None = None, options: Sequence[str] = ()
) -> tuple[subprocess.Popen, str]:
    """``python -m django_papay.sandbox`` on a free loopback port; its process and base URL.

    Its own interpreter, so its crypto does not share the benchmark's GIL. ``latency_ms`` delays each answer as a
    distant WeChat Pay would; ``tls_dir`` serves https with a throwaway certificate written there; ``options``
    are more CLI arguments (``--notify-rewrite …``).
    """
    command = [sys.executable, "-m", "django_papay.sandbox", "--keys-dir", keys_dir, "--port", "0"]
    command += ["--response-delay", str(latency_ms / 1000)]
    if tls_dir is not None:
        command += ["--tls", tls_dir]
    command += list(options)
    sandbox = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = sandbox.stdout.readline() if sandbox.stdout else ""
    match = re.search(r"listening on (https?://\S+)", line)
    if not match:
        stop(sandbox)
        raise SystemExit(f"the sandbox did not start: {line!r}")
    return sandbox, match.group(1)


def start_redis(folder: str) -> tuple[subprocess.Popen, str]:
    """``redis-server`` of its own on a free loopback port, without persistence; its process and URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                if connection.recv(16).startswith(b"+PONG"):
                    return server, f"redis://127.0.0.1:{port}/0"
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            stop(server)
            raise SystemExit("redis-server did not start (apt-get install redis-server)")
        time.sleep(0.05)


def stop(process: subprocess.Popen, *, timeout: float = 20) -> None:
    """SIGTERM (the sandbox CLI and the workers stop cleanly on it), then SIGKILL after ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if process.stdout:
        process.stdout.close()
