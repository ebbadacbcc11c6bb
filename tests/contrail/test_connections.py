"""The transport's kept-alive connections: a server that restarts, hangs, or serves threads."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import REGISTRY

from contrail.client import ContrailClient
from contrail.errors import Unavailable
from contrail.transport import Transport
from emulators.contrail.app import create_app
from emulators.server import free_port, serve_in_thread

pytestmark = pytest.mark.integration


def failed_calls(kind: str) -> float:
    return REGISTRY.get_sample_value("ckm_contrail_calls_total",
                                     {"method": "GET", "type": kind, "status": "error"}) or 0.0


def test_a_restarted_server_is_reached_on_a_new_connection_without_an_error(tmp_path):
    port, state = free_port(), str(tmp_path / "contrail.json")
    client = ContrailClient(Transport([f"http://127.0.0.1:{port}"], retry_seconds=0))
    with serve_in_thread(create_app(state_file=state), port=port):
        client.create("project", {"fq_name": ["default-domain", "p"], "parent_type": "domain"})
        assert client.count("project") >= 1
    before = failed_calls("project")
    # the server went away and came back; the thread's kept-alive socket is now dead
    with serve_in_thread(create_app(state_file=state), port=port):
        assert client.count("project") >= 1
    assert failed_calls("project") == before  # the stale socket was replaced, not failed over


def test_a_server_that_never_answers_times_out_as_unavailable():
    with socket.create_server(("127.0.0.1", 0)) as listening:  # accepts, never answers
        port = listening.getsockname()[1]
        client = ContrailClient(Transport([f"http://127.0.0.1:{port}"], timeout=0.2,
                                          retry_seconds=0))
        with pytest.raises(Unavailable, match="timed out"):
            client.count("project")


def test_threads_share_a_transport_and_each_gets_its_own_answers(contrail_url):
    client = ContrailClient(Transport([contrail_url], retry_seconds=5))
    body = {"fq_name": ["default-domain", "t"], "parent_type": "domain"}
    uuid = client.create("project", body)["uuid"]

    def read(i: int) -> tuple[int, str]:
        return i, client.read("project", uuid)["uuid"]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(read, range(400)))
    assert answers == [(i, uuid) for i in range(400)]
    client.close()
    assert client.read("project", uuid)["fq_name"] == body["fq_name"]  # reopens after close
