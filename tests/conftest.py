"""Shared test fixtures: each concern lives in its own module under tests/fixtures/."""

import os
import tempfile

# `ckm up` records the current context under XDG_CONFIG_HOME: never the developer's own
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="ckm-test-config-")

pytest_plugins = [
    "tests.fixtures.redis",
    "tests.fixtures.contrail",
    "tests.fixtures.kube",
    "tests.fixtures.engine",
]
