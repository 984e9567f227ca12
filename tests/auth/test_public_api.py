"""``auth``'s public names: each re-exported from its home, imported only when first used."""

from __future__ import annotations

import subprocess
import sys

import auth


def test_public_api() -> None:
    assert auth.__all__ == [
        "SYSTEM_CLOCK",
        "AuthProvider",
        "AuthenticationFailed",
        "Clock",
        "Identity",
        "InvalidProviderConfiguration",
        "ProviderUnavailable",
        "build_provider",
        "test_identity",
    ]
    for name in auth.__all__:
        assert getattr(auth, name) is not None


def test_importing_the_package_imports_none_of_its_modules() -> None:
    prefixes = ("auth.", "httpx")
    code = f"import sys, auth; print(sorted(m for m in sys.modules if m.startswith({prefixes})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
