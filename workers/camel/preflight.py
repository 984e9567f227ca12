"""What ``sluice validate`` and ``sluice run`` check for camel-source agents before any start.

Java 17+ must be there (a missing Java is an error for a local run, a warning when the
application deploys to Knative, whose image brings its own JRE), and every
``configuration.yaml`` dependency must be Maven coordinates or a Maven repository URL (a Camel
artifact of another release is a warning: it is used at Sluice's Camel version).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sluice.application import Application
from sluice.errors import SluiceError
from sluice.jvm import find_java
from workers.camel.jars import coordinates, managed
from workers.camel.settings import CamelSettings

__all__ = ["Findings", "check_camel"]


@dataclass(frozen=True)
class Findings:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


async def check_camel(app: Application, settings: CamelSettings) -> Findings:
    """Problems that would stop the application's camel-source agents from starting."""
    findings = Findings()
    agents = [agent.id for agent in app.agents if agent.type == "camel-source"]
    if not agents:
        return findings
    for dependency in app.dependencies:
        name = f" ({dependency.name})" if dependency.name else ""
        try:
            wanted = coordinates(dependency)
        except ValueError as error:
            findings.errors.append(f"configuration.yaml dependency{name}: {error}")
            continue
        if managed(wanted, settings.camel_version) != wanted:
            findings.warnings.append(
                f"configuration.yaml dependency{name}: {wanted} is used at version "
                f"{settings.camel_version}, the Camel release Sluice runs"
            )
    try:
        await find_java(settings.java, settings.java_home)
    except SluiceError as error:
        who = ", ".join(agents)
        message = f"camel-source agent{'s' if len(agents) > 1 else ''} {who}: {error}"
        if app.instance.compute_cluster.type == "knative":
            findings.warnings.append(f"{message} (needed to run it here, not in the image)")
        else:
            findings.errors.append(message)
    return findings
