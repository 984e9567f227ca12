"""``workers``'s public names: each re-exported from its home, imported only when first used."""

from __future__ import annotations

import subprocess
import sys

import workers


def test_public_api() -> None:
    assert workers.__all__ == [
        "PYTHON_AGENT_TYPES",
        "AgentLoadError",
        "Chain",
        "ChildSpec",
        "ExecutorFailed",
        "LoadedAgent",
        "Supervisor",
        "adapt",
        "after_failure",
        "instantiate",
    ]
    for name in workers.__all__:
        assert getattr(workers, name) is not None


def test_importing_the_package_imports_none_of_its_modules() -> None:
    prefixes = ("workers.", "hypercorn", "aiokafka")
    code = f"import sys, workers; print(sorted(m for m in sys.modules if m.startswith({prefixes})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
