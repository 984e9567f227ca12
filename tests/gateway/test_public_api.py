"""``gateway``'s public names: each re-exported from its home, imported only when first used."""

from __future__ import annotations

import subprocess
import sys

import gateway


def test_public_api() -> None:
    assert gateway.__all__ == [
        "GatewayCommand",
        "GatewayOptions",
        "GatewaySettings",
        "create_app",
        "gateway_settings",
    ]
    for name in gateway.__all__:
        assert getattr(gateway, name) is not None


def test_importing_the_package_imports_none_of_its_modules() -> None:
    prefixes = ("gateway.", "quart")
    code = f"import sys, gateway; print(sorted(m for m in sys.modules if m.startswith({prefixes})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
