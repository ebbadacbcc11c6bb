"""How the client rides out failures: injected 503s, outages, a dead server, Keystone tokens."""

from __future__ import annotations

import httpx
import pytest

from contrail.client import ContrailClient
from contrail.errors import PermissionDenied, Unavailable
from contrail.transport import KeystoneAuth, Transport
from emulators.server import free_port

pytestmark = pytest.mark.integration


def project_body(name: str) -> dict:
    return {"fq_name": ["default-domain", name], "parent_type": "domain"}


def test_retries_injected_503s_until_success(contrail_emulator_factory):
    url = contrail_emulator_factory(error_rate=0.5, seed=7)
    client = ContrailClient(Transport([url], retry_seconds=30))
    for i in range(20):
        client.create("project", project_body(f"p{i}"))
    httpx.put(f"{url}/_emulator/faults", json={"error_rate": 0}).raise_for_status()
    assert client.count("project") >= 20


def test_gives_up_after_bounded_time_on_outage(contrail_emulator_factory):
    url = contrail_emulator_factory()
    httpx.put(f"{url}/_emulator/faults", json={"outage_seconds": 30}).raise_for_status()
    client = ContrailClient(Transport([url], retry_seconds=0.5))
    with pytest.raises(Unavailable) as caught:
        client.create("project", project_body("p"))
    assert caught.value.status == 503


def test_connection_refused_is_unavailable():
    client = ContrailClient(Transport([f"http://127.0.0.1:{free_port()}"], retry_seconds=0.3))
    with pytest.raises(Unavailable, match="Connect"):
        client.count("project")


def test_fails_over_to_the_next_server(contrail_emulator_factory):
    down = contrail_emulator_factory()
    up = contrail_emulator_factory()
    httpx.put(f"{down}/_emulator/faults", json={"outage_seconds": 60}).raise_for_status()
    client = ContrailClient(Transport([down, up], retry_seconds=10))
    for i in range(3):
        client.create("project", project_body(f"p{i}"))
    assert client.transport.base_url == up
    assert httpx.get(f"{up}/_emulator/counters").json()["total"] >= 3


def test_dead_first_server_fails_over(contrail_emulator_factory):
    up = contrail_emulator_factory()
    client = ContrailClient(Transport([f"http://127.0.0.1:{free_port()}", up], retry_seconds=10))
    client.create("project", project_body("p"))
    assert client.transport.base_url == up


def test_keystone_token_is_fetched_and_refreshed_on_401(contrail_emulator_factory):
    url = contrail_emulator_factory(keystone=True, users={"ckm": "pw"})
    assert httpx.get(f"{url}/projects").status_code == 401
    auth = KeystoneAuth(url, "ckm", "pw", "admin")
    client = ContrailClient(Transport([url], auth=auth, retry_seconds=2))
    client.create("project", project_body("p1"))
    first = auth.token()
    httpx.post(f"{url}/_emulator/keystone/revoke").raise_for_status()
    client.create("project", project_body("p2"))  # 401 -> new token -> retried once
    assert auth.token() != first


def test_keystone_wrong_password_is_permission_denied(contrail_emulator_factory):
    url = contrail_emulator_factory(keystone=True, users={"ckm": "pw"})
    client = ContrailClient(Transport([url], auth=KeystoneAuth(url, "ckm", "bad", "admin")))
    with pytest.raises(PermissionDenied):
        client.count("project")
