"""An engine context on the test Redis and a fresh Contrail emulator."""

from __future__ import annotations

import pytest

from config.settings import Settings
from workers.context import Context


@pytest.fixture
def make_context(redis_client, redis_url):
    def make(contrail_url: str, **overrides) -> Context:
        settings = Settings(broker_url=redis_url, contrail_urls=[contrail_url],
                            contrail_retry_seconds=0.2, backoff_base=0.01, backoff_cap=0.05,
                            **overrides)
        return Context(settings)
    return make


@pytest.fixture
def context(make_context, contrail_url):
    return make_context(contrail_url)
