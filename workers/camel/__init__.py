from workers.camel.settings import CAMEL_VERSION, CamelSettings
from workers.camel.source import CamelSource

__all__ = ["CAMEL_VERSION", "CamelSettings", "CamelSource"]
