"""The media types Sluice reads and writes, named once.

``application/json`` is a record's JSON value (a CloudEvent's ``datacontenttype``) and the body
of the gateway's JSON answers; ``application/cloudevents+json`` a structured CloudEvent (HTTP
binding, structured mode); ``application/problem+json`` an RFC 9457 error answer.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CLOUDEVENTS_CONTENT_TYPE", "JSON_CONTENT_TYPE", "PROBLEM_CONTENT_TYPE"]

JSON_CONTENT_TYPE: Final = "application/json"
CLOUDEVENTS_CONTENT_TYPE: Final = "application/cloudevents+json"
PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
