"""The gateway's routes, one module per family.

Each module exposes ``register(app, runtime)``, which adds its routes to a Quart app made by
:func:`gateway.app.create_app` and serves them with the app's
:class:`~gateway.runtime.GatewayRuntime`.
"""
