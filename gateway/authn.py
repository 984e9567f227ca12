"""Who is calling: credentials from the request, checked by the gateway's provider.

Providers are built once, when the gateway app is created (spec/auth.md): a configuration error
stops the gateway from starting instead of failing every request. Test credentials go to the
server's own test provider (``GatewaySettings.test_provider``), never the application's, and give
the synthetic principal of :func:`auth.testmode.test_identity`.

Gateways without ``authentication`` are open: credentials sent to them are not checked (as in
LangStream), and a header that needs a principal field answers 401.
"""

from __future__ import annotations

from collections.abc import Mapping

from auth.clock import SYSTEM_CLOCK, Clock
from auth.config import InvalidProviderConfiguration
from auth.provider import AuthenticationFailed, AuthProvider, Identity, ProviderUnavailable
from auth.providers import build_provider
from auth.testmode import test_identity
from gateway.errors import Unauthorized, Unavailable
from gateway.query import Credentials
from sluice.application.model import Application, AuthenticationSpec, GatewaySpec

__all__ = ["NO_TEST_PROVIDER", "Authenticator"]

NO_TEST_PROVIDER = "No test auth provider specified"

_Key = tuple[str, str, str]


class Authenticator:
    """The providers of every authenticated gateway of ``apps``, and the server's test provider.

    Building contacts nobody; a wrong provider configuration raises
    :class:`~auth.config.InvalidProviderConfiguration` naming the gateway.
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
        self._test_spec = test_provider
        self._test: dict[str, AuthProvider] = {}
        for (tenant, application), app in apps.items():
            for spec in app.gateways:
                auth = spec.authentication
                if auth is None:
                    continue
                self._providers[(tenant, application, spec.id)] = _build(
                    auth, tenant, f"gateway {spec.id} of application {application}", clock
                )

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
        :class:`~gateway.errors.Unavailable` when the identity provider cannot answer.
        """
        auth = spec.authentication
        if auth is None:
            return None
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
