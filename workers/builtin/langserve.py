"""LangStream's ``langserve-invoke`` agent: call a LangServe endpoint for each record.

The request is ``{"input": {<name>: <expression value>, ...}}`` from ``fields`` (expressions of
:mod:`sluice.expressions`), posted with the templated ``headers`` and
``Content-Type: application/json``. The URL says how the answer comes back:

- ``.../invoke``: one JSON answer; its ``output`` is the answer when it is text, and its
  ``content-field`` (default ``content``) when it is an object (a chat message). An answer that
  is a JSON string is its text; any other body is taken as it is.
- ``.../stream``: server-sent events. Each ``data`` event carries a piece (an object's
  ``content-field``, or a JSON string), ``end`` closes the answer, an ``error`` event fails the
  record. The answer is the pieces joined. With ``stream-to-topic``, the pieces also go to that
  topic as they arrive, grouped 1, 2, 4, ... up to ``min-chunks-per-message`` pieces per record
  (:class:`workers.builtin.streaming.ChunkGrouper`): each chunk record is a copy of the input
  with the chunk written to ``stream-response-field`` (default: ``output-field``) and the
  headers ``stream-id`` (one random id per answer), ``stream-index`` (1, 2, ...) and
  ``stream-last-message`` (``true`` on the last). That is how a gateway streams an answer to a
  chat client.

The final answer is written to ``output-field`` (default ``value``) of the record that goes on.

Chunks are written with the worker's topic producer and awaited: chunk n is acknowledged by
Kafka before the agent reads on, so chunks arrive in order, and a chunk that cannot be written
fails the record (its ``errors`` policy applies) instead of leaving a silent hole in the stream a
client is showing. Where no producer is at hand (an agent run without the worker's context),
the chunk records are returned with the answer, routed to ``stream-to-topic``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import uuid
from typing import Any

import httpx

from sluice.application.builtin_config import read_configuration
from sluice.expressions import Expression, compile_expression
from sluice.record import Record
from sluice.sdk import AgentContext, TopicProducer
from workers.builtin.http import (
    HttpAgentError,
    HttpClientAgent,
    check_status,
    compile_templates,
    failure,
)
from workers.builtin.records import (
    WorkingRecord,
    context_of,
    parse_field_name,
    set_field,
    template_view,
    to_record,
    to_working,
)
from workers.builtin.streaming import ChunkGrouper

log = logging.getLogger("sluice.agent.langserve-invoke")


def invoke_answer(body: str, content_field: str) -> str:
    """The answer in an ``/invoke`` response body (see the module's documentation)."""
    text = body.lstrip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return body
        if isinstance(parsed, dict):
            output = parsed.get("output")
            if isinstance(output, str):
                return output
            if isinstance(output, dict) and isinstance(output.get(content_field), str):
                return str(output[content_field])
            raise HttpAgentError(
                f"the LangServe answer has no text in output or output.{content_field}: "
                f"{body[:200]}"
            )
    elif text.startswith('"'):
        try:
            parsed = json.loads(text)
        except ValueError:
            return body
        if isinstance(parsed, str):
            return parsed
    return body


def stream_piece(data: str, content_field: str) -> str:
    """The text of one ``data:`` line of ``/stream`` (an object's field, or a JSON string)."""
    try:
        if data.startswith("{"):
            parsed = json.loads(data)
            piece = parsed.get(content_field) if isinstance(parsed, dict) else None
            return "" if piece is None else str(piece)
        if data.startswith('"'):
            parsed = json.loads(data)
            return parsed if isinstance(parsed, str) else data
    except ValueError:
        pass
    return data


class LangServeInvoke(HttpClientAgent):
    """The ``langserve-invoke`` processor (see the module's documentation)."""

    agent_type = "langserve-invoke"
    producer: TopicProducer | None = None

    def use_context(self, context: AgentContext) -> None:
        self.producer = context.get_topic_producer()

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration("langserve-invoke", config)
        self.config = checked
        self.url: str = checked["url"]
        self.streaming = httpx.URL(self.url).path.endswith("/stream")
        self.method: str = checked["method"].upper()
        self.output_field: str = checked["output-field"]
        self.stream_field: str = checked["stream-response-field"] or self.output_field
        parse_field_name(self.output_field)
        parse_field_name(self.stream_field)
        self.stream_topic: str | None = checked["stream-to-topic"] or None
        self.chunk_limit: int = checked["min-chunks-per-message"]
        self.content_field: str = checked["content-field"]
        self.timeout = float(checked["timeout-seconds"])
        self.debug: bool = checked["debug"]
        self.headers = compile_templates(checked["headers"])
        self.fields: list[tuple[str, Expression]] = [
            (entry["name"], compile_expression(entry["expression"])) for entry in checked["fields"]
        ]

    async def process(self, record: Record) -> list[Record]:
        client = self.client
        working = to_working(record)
        context = context_of(working)
        inputs = {name: expression.evaluate(context) for name, expression in self.fields}
        body = json.dumps({"input": inputs}, ensure_ascii=False, default=str).encode("utf-8")
        view = template_view(working)
        headers = {"Content-Type": "application/json"}
        headers.update((name, template.render(view)) for name, template in self.headers.items())
        routed: list[Record] = []
        try:
            if self.streaming:
                answer = await self._stream(client, body, headers, working, record, routed)
            else:
                async with asyncio.timeout(self.timeout):
                    response = await client.request(
                        self.method, self.url, content=body, headers=headers
                    )
                check_status(self.method, self.url, response, response.text)
                answer = invoke_answer(response.text, self.content_field)
        except (httpx.HTTPError, TimeoutError) as error:
            raise failure(self.method, self.url, error) from error
        if self.debug:
            log.info("%s %s with %s answered %r", self.method, self.url, body.decode(), answer)
        set_field(working, answer, self.output_field)
        return [*routed, to_record(working, record)]

    async def _stream(
        self,
        client: httpx.AsyncClient,
        body: bytes,
        headers: dict[str, str],
        working: WorkingRecord,
        record: Record,
        routed: list[Record],
    ) -> str:
        grouper = ChunkGrouper(self.chunk_limit)
        stream_id = str(uuid.uuid4())
        async with client.stream(self.method, self.url, content=body, headers=headers) as response:
            if response.status_code >= 400:
                text = (await response.aread()).decode("utf-8", "replace")
                check_status(self.method, self.url, response, text)
            event, last = "data", False
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line[len("event:") :].strip()
                    if event != "end":
                        continue
                    piece, last = "", True
                elif line.startswith("data:") and event == "data":
                    piece = stream_piece(line[len("data:") :].strip(), self.content_field)
                elif line.startswith("data:") and event == "error":
                    raise HttpAgentError(f"{self.url} streamed an error: {line[5:].strip()}")
                else:
                    continue
                chunk = grouper.add(piece, last)
                if chunk is not None:
                    await self._chunk(chunk, stream_id, working, record, routed)
                if last:
                    return grouper.answer
        # A stream that ends without "event: end" still closes its answer.
        chunk = grouper.add("", last=True)
        if chunk is not None:
            await self._chunk(chunk, stream_id, working, record, routed)
        return grouper.answer

    async def _chunk(
        self,
        chunk: tuple[int, str, bool],
        stream_id: str,
        working: WorkingRecord,
        record: Record,
        routed: list[Record],
    ) -> None:
        if self.stream_topic is None:
            return
        index, text, last = chunk
        chunk_record = WorkingRecord(
            value=_copied(working.value),
            key=_copied(working.key),
            properties=dict(working.properties),
            topic=working.topic,
            event_time=working.event_time,
            value_form=working.value_form,
            key_form=working.key_form,
        )
        set_field(chunk_record, text, self.stream_field)
        chunk_record.properties.update(
            {
                "stream-id": stream_id,
                "stream-index": str(index),
                "stream-last-message": "true" if last else "false",
            }
        )
        out = to_record(chunk_record, record).to(self.stream_topic)
        if self.producer is None:
            routed.append(out)
        else:
            await self.producer.awrite(self.stream_topic, out.to(None))


def _copied(data: Any) -> Any:
    return copy.deepcopy(data) if isinstance(data, dict) else data
