"""The gateway's command-line options, shared by ``sluice run`` and ``python -m gateway``."""

from __future__ import annotations

import argparse
import asyncio

from gateway.settings import GatewaySettings
from sluice.application.model import AuthenticationSpec
from sluice.errors import SluiceError

__all__ = ["add_gateway_arguments", "gateway_settings", "test_provider"]


def add_gateway_arguments(parser: argparse.ArgumentParser) -> None:
    """Browser origins, the failed-authentication limit, the produce and drain timeouts and the
    test provider."""
    parser.add_argument(
        "--allowed-origin",
        action="append",
        default=None,
        metavar="ORIGIN",
        help="browser origin (scheme://host[:port]) allowed to open WebSockets; repeat for "
        "more (default: any origin; set it when a browser app is served)",
    )
    parser.add_argument(
        "--auth-failure-limit",
        type=int,
        default=100,
        metavar="N",
        help="failed authentications a client (IP address) may have in a row before it gets "
        "429 (then one more per second); 0: no limit (default: 100)",
    )
    parser.add_argument(
        "--client-ip-header",
        metavar="HEADER",
        help="header a trusted proxy sets to the client's address (its right-most public "
        "address counts), e.g. X-Forwarded-For behind Knative (default: the peer address)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=35.0,
        metavar="SECONDS",
        help="when the gateway stops (SIGTERM, Ctrl-C): how long in-flight requests get to "
        "finish; a service call still waiting for its reply then answers 503 (default: 35, "
        "longer than the default service timeout of 30)",
    )
    parser.add_argument(
        "--produce-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a produce waits for Kafka's acknowledgement before it answers 503; "
        "also the gateway producer's request timeout (default: 30)",
    )
    parser.add_argument(
        "--test-auth",
        metavar="PROVIDER",
        help="provider (google, github, jwt, http) that checks test-credentials on gateways "
        "with allow-test-mode: true (default: none, test credentials are refused)",
    )
    parser.add_argument(
        "--test-auth-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="configuration of the --test-auth provider (e.g. clientId=...); repeat for more",
    )


def test_provider(args: argparse.Namespace) -> AuthenticationSpec | None:
    """The test provider of ``--test-auth`` / ``--test-auth-config``, built once to check it;
    SluiceError naming the flag when they are wrong."""
    if args.test_auth is None:
        if args.test_auth_config:
            raise SluiceError("--test-auth-config needs --test-auth PROVIDER")
        return None
    configuration: dict[str, str] = {}
    for item in args.test_auth_config:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SluiceError(f"--test-auth-config {item!r}: expected KEY=VALUE")
        configuration[key.strip()] = value
    spec = AuthenticationSpec(args.test_auth, configuration=configuration)
    from auth.config import InvalidProviderConfiguration
    from auth.providers import build_provider

    try:
        provider = build_provider(spec.provider, spec.configuration, tenant=args.tenant)
    except InvalidProviderConfiguration as error:
        raise SluiceError(f"--test-auth: {error}") from None
    asyncio.run(provider.aclose())
    return spec


def gateway_settings(args: argparse.Namespace) -> GatewaySettings:
    """The settings the options give; SluiceError naming the option that is wrong."""
    if args.auth_failure_limit < 0:
        raise SluiceError("--auth-failure-limit must be 0 (no limit) or more")
    if not args.produce_timeout > 0:
        raise SluiceError("--produce-timeout must be greater than 0")
    if not args.drain_timeout > 0:
        raise SluiceError("--drain-timeout must be greater than 0")
    return GatewaySettings(
        allowed_origins=tuple(args.allowed_origin) if args.allowed_origin else None,
        test_provider=test_provider(args),
        auth_failure_burst=args.auth_failure_limit or None,
        client_ip_header=args.client_ip_header or None,
        produce_timeout=args.produce_timeout,
        shutdown_grace=args.drain_timeout,
    )
