from tests.support.gateway import backend_profile, gateway, gateway_config  # noqa: F401 - fixtures
