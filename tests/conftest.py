"""Shared test fixtures: each concern lives in its own module under tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.redis",
    "tests.fixtures.contrail",
    "tests.fixtures.kube",
    "tests.fixtures.engine",
]
