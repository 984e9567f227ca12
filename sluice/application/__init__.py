"""The application model: load, validate, resolve placeholders, plan."""

from sluice.application.loader import load_application
from sluice.application.model import (
    AgentSpec,
    Application,
    GatewaySpec,
    HeaderSpec,
    InstanceSpec,
    TopicSpec,
)
from sluice.application.plan import Executor, Plan, PlannedAgent, plan_application

__all__ = [
    "AgentSpec",
    "Application",
    "Executor",
    "GatewaySpec",
    "HeaderSpec",
    "InstanceSpec",
    "Plan",
    "PlannedAgent",
    "TopicSpec",
    "load_application",
    "plan_application",
]
