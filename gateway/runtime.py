"""The state one gateway app serves with, shared by every route.

:class:`GatewayRuntime` holds the applications served, the process-wide Kafka clients (one
producer, the shared topic fanouts, one reply router per service output topic), the
authenticator and its failure limiter, the HTTP client of the agent-id service gateways, the
metrics counters and the lifecycle: readiness, requests in flight, the drain, and the one
``closing`` flag that ends WebSockets and event streams when shutdown begins. Routes reach it
with :func:`runtime_of`; it knows nothing of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

import httpx
from quart import Quart, request
from werkzeug.datastructures import Headers

from auth.clock import SYSTEM_CLOCK, Clock
from gateway.authn import Authenticator
from gateway.call import GatewayCall
from gateway.errors import NotFound, TooManyRequests, Unauthorized, Unavailable
from gateway.fanout import FanoutClosed, FanoutRegistry, TopicFanout
from gateway.idempotency import IdempotencyKeys
from gateway.limits import FailureLimiter
from gateway.metrics import GatewayMetrics
from gateway.proxy import ServiceKey, ServiceRoutes
from gateway.query import find_credentials
from gateway.replies import ReplyRouter
from gateway.settings import GatewaySettings
from sluice.application.model import Application, TopicSpec
from sluice.errors import KafkaError
from sluice.kafka import KafkaSettings, Producer, SendResult
from sluice.kafka.admin import list_topics

__all__ = ["GatewayRuntime", "attach", "runtime_of"]

_EXTENSION: Final = "sluice.gateway"


class GatewayRuntime:
    """The applications served and the process-wide Kafka clients of one gateway app."""

    def __init__(
        self,
        apps: Mapping[tuple[str, str], Application],
        kafka: KafkaSettings,
        settings: GatewaySettings,
        service_urls: Mapping[ServiceKey, str] | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.apps = dict(apps)
        self.kafka = kafka
        self.settings = settings
        # ServiceRoutes given by `sluice run` stay shared: it updates them while this serves.
        self.service_urls = (
            service_urls if isinstance(service_urls, ServiceRoutes) else ServiceRoutes(service_urls)
        )
        self._http: httpx.AsyncClient | None = None
        # A record the client was answered 503 for should not linger in the producer and be
        # written long after: the producer gives up on a batch when the client's deadline ends.
        self.producer = Producer(kafka, request_timeout_ms=round(settings.produce_timeout * 1000))
        self.fanouts = FanoutRegistry(kafka)
        self.idempotency: IdempotencyKeys[list[SendResult]] = IdempotencyKeys()
        """Outcomes of produce requests with an idempotency key, so a retry writes nothing."""
        self.auth = Authenticator(self.apps, settings.test_provider, clock=clock)
        self.auth_failures = (
            None
            if settings.auth_failure_burst is None
            else FailureLimiter(settings.auth_failures_per_second, settings.auth_failure_burst)
        )
        self.metrics = GatewayMetrics()
        self.closing = asyncio.Event()
        """Set when shutdown begins: WebSockets close with 1001, event streams end."""
        self.in_flight = 0
        """HTTP requests being handled now (a streamed body counts until it starts)."""
        self.ready = False
        self._drain_scopes: set[asyncio.Timeout] = set()
        self._routers: dict[str, ReplyRouter] = {}
        self._router_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._topic_checks: dict[str, asyncio.Future[None]] = {}

    def spawn(self, job: Coroutine[Any, Any, None]) -> None:
        """Run ``job`` in the background; :meth:`stop` waits for it before closing Kafka."""
        task = asyncio.ensure_future(job)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @property
    def routers(self) -> Mapping[str, ReplyRouter]:
        """The started reply routers, by output topic."""
        return dict(self._routers)

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client of the agent-id service gateways, open while the app serves."""
        if self._http is None:
            raise Unavailable("the gateway is not serving", retry_after=self.settings.retry_after)
        return self._http

    async def start(self) -> None:
        await self.producer.start()
        # Redirects and cookies belong to the client of the proxy, not to the proxy.
        self._http = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        if self._background:
            await asyncio.wait(set(self._background), timeout=self.settings.produce_timeout)
        routers, self._routers = list(self._routers.values()), {}
        for router in routers:
            await router.close()
        await self.fanouts.close()
        await self.auth.aclose()
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
        await self.producer.stop()

    @contextlib.asynccontextmanager
    async def until_drained(self) -> AsyncIterator[None]:
        """Serve a request in this block: when the gateway stops and its drain period ends
        before the block does, the block is interrupted and the answer is a 503 problem (the
        request may still have been written, like any 503), rather than the connection being
        cut by the server with a bare 500 or no answer at all."""
        scope = asyncio.timeout(None)
        self._drain_scopes.add(scope)
        try:
            async with scope:
                yield
        except TimeoutError as error:
            if not scope.expired():
                raise
            raise Unavailable(
                "the gateway is shutting down and its drain period "
                f"({self.settings.shutdown_grace:g} s) ended before the answer; retry",
                retry_after=self.settings.retry_after,
            ) from error
        finally:
            self._drain_scopes.discard(scope)

    def end_drain(self) -> None:
        """The drain period is over: every request still in :meth:`until_drained` answers 503."""
        now = asyncio.get_running_loop().time()
        for scope in list(self._drain_scopes):
            scope.reschedule(now)

    @property
    def pending_count(self) -> int:
        """Service requests of this process waiting for a reply."""
        return sum(router.pending_count for router in self._routers.values())

    def check_pending(self) -> None:
        """:class:`Unavailable` when ``max_pending`` service requests already wait."""
        if self.pending_count >= self.settings.max_pending:
            raise Unavailable(
                f"{self.settings.max_pending} service requests already wait for a reply",
                retry_after=self.settings.retry_after,
            )

    async def authenticate(
        self,
        call: GatewayCall,
        *,
        client: str | None,
        authorization: str | None,
        subprotocols: Sequence[str] = (),
    ) -> GatewayCall:
        """``call`` with the caller's identity, after its query is validated.

        400 for a bad query or credentials given two ways, 401 when the gateway's provider
        rejects them, 429 when ``client`` (its address) failed too often lately, 503 when the
        provider cannot be reached.
        """
        query = call.query(self.settings)
        credentials = find_credentials(
            query, authorization=authorization, subprotocols=subprotocols
        )
        limiter = self.auth_failures if call.spec.authentication is not None else None
        if limiter is not None and client is not None and not limiter.allows(client):
            raise TooManyRequests(
                "too many failed authentications from this client; retry later",
                retry_after=limiter.retry_after,
            )
        try:
            identity = await self.auth.identify(
                call.tenant, call.application, call.spec, credentials
            )
        except Unauthorized:
            if limiter is not None and client is not None and credentials is not None:
                limiter.failed(client)
            raise
        return replace(call, identity=identity)

    def client_of(self, remote_addr: str | None, headers: Headers) -> str | None:
        """Who a request comes from, for per-client limits: with ``client_ip_header`` set, the
        right-most public address of that header (the one the cluster's edge proxy appended:
        addresses a client wrote itself stand to its left), else its left-most; without it,
        the peer address."""
        name = self.settings.client_ip_header
        if name is not None:
            addresses = [a.strip() for a in headers.get(name, "").split(",") if a.strip()]
            for address in reversed(addresses):
                if _public(address):
                    return address
            if addresses:
                return addresses[0]
        return remote_addr

    def call(
        self,
        kind: str,
        tenant: str,
        application: str,
        gateway: str,
        pairs: Sequence[tuple[str, str]] | None = None,
    ) -> GatewayCall:
        """The gateway of type ``kind`` a request addresses, or :class:`NotFound`.

        ``pairs`` is the query (default: the current HTTP request's)."""
        app = self.apps.get((tenant, application))
        if app is None:
            raise NotFound(f"application {application} of tenant {tenant} not found")
        spec = app.gateway(gateway, kind)
        if spec is None:
            raise NotFound(
                f"gateway {gateway} of type {kind} not found in application {application} "
                f"of tenant {tenant}"
            )
        if pairs is None:
            pairs = list(request.args.items(multi=True))
        return GatewayCall(tenant, application, spec, tuple(pairs))

    async def router(self, spec: TopicSpec) -> ReplyRouter:
        """The shared reply router of topic ``spec``, started on first use."""
        topic = spec.name
        router = self._routers.get(topic)
        if router is not None:
            return router
        async with self._router_lock:
            router = self._routers.get(topic)
            if router is None:
                router = ReplyRouter(self.kafka, spec, max_pending=self.settings.max_pending)
                try:
                    await self._check_topic(topic)
                    await router.start()
                except KafkaError as error:
                    raise Unavailable(
                        f"cannot read the replies on topic {topic}: {error}",
                        retry_after=self.settings.retry_after,
                    ) from error
                self._routers[topic] = router
            return router

    async def fanout(self, topic: TopicSpec) -> TopicFanout:
        """The shared consumer of ``topic`` (started on first use); 503 when it cannot be read."""
        try:
            if topic.name not in self.fanouts.fanouts:
                await self._check_topic(topic.name)
            return await self.fanouts.get(topic)
        except (FanoutClosed, KafkaError) as error:
            raise Unavailable(
                f"cannot read topic {topic.name}: {error}", retry_after=self.settings.retry_after
            ) from error

    async def _check_topic(self, name: str) -> None:
        """KafkaError when topic ``name`` does not exist. Without this a consumer waits for the
        metadata of a missing topic for its whole request timeout (about 40 s) before failing.
        One admin request per topic however many clients connect at once; a topic found once
        is not asked about again."""
        check = self._topic_checks.get(name)
        if check is None or (check.done() and check.exception() is not None):
            check = asyncio.ensure_future(self._topic_exists(name))
            self._topic_checks[name] = check
        await asyncio.shield(check)

    async def _topic_exists(self, name: str) -> None:
        if name not in await list_topics(self.kafka):
            raise KafkaError(f"topic {name} does not exist")


def _public(address: str) -> bool:
    """Whether ``address`` is a global IP address (not private, loopback or link-local)."""
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


def runtime_of(app: Quart) -> GatewayRuntime:
    """The :class:`GatewayRuntime` of an app made by :func:`create_app`."""
    runtime = app.extensions[_EXTENSION]
    assert isinstance(runtime, GatewayRuntime)
    return runtime


def attach(app: Quart, runtime: GatewayRuntime) -> None:
    """Make ``runtime`` the one :func:`runtime_of` ``app`` answers."""
    app.extensions[_EXTENSION] = runtime
