"""``python -m workers.camel APP_DIR``: download an application's camel-source jars now.

For images that run camel-source executors (Knative): run it at build time with
``SLUICE_CAMEL_CACHE_DIR`` set, and set the same variable in the image, so the workers find the
jars without Maven or network. Prints the folder holding the jars.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sluice.application import load_application
from sluice.errors import SluiceError
from workers.camel.jars import camel_classpath
from workers.camel.settings import CamelSettings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workers.camel",
        description="Download the Camel jars of an application's camel-source agents (the "
        "core set plus configuration.yaml dependencies) into the cache, and print where.",
        epilog="environment: SLUICE_CAMEL_CACHE_DIR (the cache, else the user cache folder)",
    )
    parser.add_argument("app_dir", type=Path, metavar="APP_DIR")
    args = parser.parse_args(argv)
    cache = os.environ.get("SLUICE_CAMEL_CACHE_DIR")
    try:
        app = load_application(args.app_dir, environ=dict(os.environ))
        settings = CamelSettings(
            cache_dir=Path(cache) if cache else None, dependencies=app.dependencies
        )
        jars = asyncio.run(camel_classpath(settings, progress=lambda m: print(m, file=sys.stderr)))
    except SluiceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(jars[0].parent.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
