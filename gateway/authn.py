"""Who is calling: credentials from the request, checked by the gateway's provider.

Providers are built once, when the gateway app is created. A gateway whose provider cannot be
built (a google provider without ``clientId``...) answers every request but test-mode ones with
500 naming the gateway and the setting, and is logged at start; the application's other gateways
serve. LangStream builds the provider per request and fails that gateway alone too, but answers
400, which blames the client for the server's configuration. Test credentials go to the
server's own test provider (``GatewaySettings.test_provider``), never the application's, and give
the synthetic principal of :func:`auth.testmode.test_identity`.

Gateways without ``authentication`` are open: credentials sent to them are not checked (as in
LangStream), and a header that needs a principal field answers 401.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from auth.clock import SYSTEM_CLOCK, Clock
from auth.provider import AuthenticationFailed, AuthProvider, Identity, ProviderUnavailable
from auth.provider_config import InvalidProviderConfiguration
from auth.providers import build_provider
from auth.testmode import test_identity
from gateway.errors import GatewayError, Unauthorized, Unavailable
from gateway.query import Credentials
from sluice.application.model import Application, AuthenticationSpec, GatewaySpec

__all__ = ["NO_TEST_PROVIDER", "Authenticator"]

NO_TEST_PROVIDER = "No test auth provider specified"

logger = logging.getLogger(__name__)

_Key = tuple[str, str, str]


class Authenticator:
    """The providers of every authenticated gateway of ``apps``, and the server's test provider.

    Building contacts nobody; a gateway whose provider configuration is wrong is logged and
    answers 500 naming it (:meth:`identify`); a wrong test provider raises
    :class:`~auth.provider_config.InvalidProviderConfiguration` on first use.
    """

    def __init__(
        self,
        apps: Mapping[tuple[str, str], Application],
        test_provider: AuthenticationSpec | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._clock = clock
        self._providers: dict[_Key, AuthProvider] = {}
        self._broken: dict[_Key, str] = {}
        self._test_spec = test_provider
        self._test: dict[str, AuthProvider] = {}
        for (tenant, application), app in apps.items():
            for spec in app.gateways:
                auth = spec.authentication
                if auth is None:
                    continue
                key = (tenant, application, spec.id)
                where = f"gateway {spec.id} of application {application}"
                try:
                    self._providers[key] = _build(auth, tenant, where, clock)
                except InvalidProviderConfiguration as error:
                    self._broken[key] = str(error)
                    logger.error("%s; its requests answer 500 until it is fixed", error)

    def _test_provider(self, tenant: str) -> AuthProvider | None:
        if self._test_spec is None:
            return None
        provider = self._test.get(tenant)
        if provider is None:
            provider = _build(self._test_spec, tenant, "the gateway's test provider", self._clock)
            self._test[tenant] = provider
        return provider

    async def identify(
        self,
        tenant: str,
        application: str,
        spec: GatewaySpec,
        credentials: Credentials | None,
    ) -> Identity | None:
        """The identity behind ``credentials`` for gateway ``spec``; None for an open gateway.

        :class:`~gateway.errors.Unauthorized` when credentials are missing or rejected,
        :class:`~gateway.errors.Unavailable` when the identity provider cannot answer, a
        :class:`~gateway.errors.GatewayError` (500) when the gateway's provider is misconfigured
        (test credentials still go to the test provider, as in LangStream).
        """
        auth = spec.authentication
        if auth is None:
            return None
        broken = self._broken.get((tenant, application, spec.id))
        if broken is not None and not (credentials is not None and credentials.test):
            raise GatewayError(f"the gateway is misconfigured: {broken}")
        if credentials is None:
            raise Unauthorized(
                f"gateway {spec.id} needs credentials: an Authorization: Bearer header or the "
                "credentials query parameter",
                invalid_token=False,
            )
        if credentials.test:
            if not auth.allow_test_mode:
                raise Unauthorized(
                    f"Gateway {spec.id} of tenant {tenant} does not allow test mode."
                )
            provider = self._test_provider(tenant)
            if provider is None:
                raise Unauthorized(NO_TEST_PROVIDER)
            checked = await _checked(provider, credentials.token)
            return test_identity(credentials.token, checked)
        return await _checked(self._providers[(tenant, application, spec.id)], credentials.token)

    async def aclose(self) -> None:
        providers = [*self._providers.values(), *self._test.values()]
        self._providers, self._test = {}, {}
        for provider in providers:
            await provider.aclose()


def _build(spec: AuthenticationSpec, tenant: str, where: str, clock: Clock) -> AuthProvider:
    try:
        return build_provider(spec.provider, spec.configuration, tenant=tenant, clock=clock)
    except InvalidProviderConfiguration as error:
        raise InvalidProviderConfiguration(f"{where}: {error}") from error


async def _checked(provider: AuthProvider, token: str) -> Identity:
    try:
        return await provider.authenticate(token)
    except AuthenticationFailed as error:
        raise Unauthorized(f"invalid credentials: {error.reason}") from None
    except ProviderUnavailable as error:
        raise Unavailable(
            f"the identity provider cannot be reached: {error.reason}",
            retry_after=error.retry_after,
        ) from None
