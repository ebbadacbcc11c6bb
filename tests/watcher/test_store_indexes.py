"""The store's index sets (fast layer: fakeredis runs the store's Lua): they follow every write,
so a Node added or a pod change finds its pods and policies without reading every object."""

from __future__ import annotations

import fakeredis
import pytest

from tasks.fanout import affected_keys
from tasks.indexes import NAMED_PORTS
from watcher.store import INDEXES, DesiredStore


@pytest.fixture
def store():
    return DesiredStore(fakeredis.FakeRedis(decode_responses=True))


def pod(node: str = "", **extra) -> dict:
    return {"uid": "u", "labels": {}, "node": node, "host_network": False,
            "finished": False, "ports": [], **extra}


def names(store, kind, index):
    return [f"{ns}/{name}" for ns, name, _ in store.indexed(kind, index)]


def test_a_pod_is_in_its_nodes_set_and_follows_it(store):
    store.put("Pod", "a", "p", pod())
    assert names(store, "Pod", "node:n1") == []                 # not scheduled yet
    store.put("Pod", "a", "p", pod("n1"))
    assert names(store, "Pod", "node:n1") == ["a/p"]
    store.put("Pod", "a", "p", pod("n2"))                        # recreated elsewhere
    assert names(store, "Pod", "node:n1") == [] and names(store, "Pod", "node:n2") == ["a/p"]
    store.delete("Pod", "a", "p")
    assert names(store, "Pod", "node:n2") == []


def test_a_refused_write_changes_no_set(store):
    """A stale event (older than the stored one) writes nothing, index sets included."""
    writer = store.writer("Pod")
    writer.put("a", "p", pod("n1"), object_rv="10", check=False)
    writer.put("a", "p", pod("n2"), object_rv="9", check=False)    # older: refused
    assert names(store, "Pod", "node:n1") == ["a/p"]
    assert names(store, "Pod", "node:n2") == []


def test_policies_with_named_ports_are_indexed(store):
    named = {"uid": "1", "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]}}
    plain = {"uid": "2", "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}}
    store.put("NetworkPolicy", "a", "named", named)
    store.put("NetworkPolicy", "a", "plain", plain)
    assert names(store, "NetworkPolicy", NAMED_PORTS) == ["a/named"]
    store.put("NetworkPolicy", "a", "named", plain)               # the name is gone
    assert names(store, "NetworkPolicy", NAMED_PORTS) == []


def test_a_node_added_links_exactly_its_pods(store):
    for i in range(50):
        store.put("Pod", "a", f"p{i}", pod(f"n{i % 5}"))
    keys = affected_keys("Node", "", "n3", None, {"uid": "n3"}, store)
    assert sorted(keys) == sorted(f"port/a/p{i}" for i in range(3, 50, 5))


def test_a_store_from_another_version_gets_its_sets_rebuilt(store):
    store.put("Pod", "a", "p", pod("n1"))
    store.redis.delete("ckm:by:Pod:node:n1")                     # as an older ckm left it
    store.redis.sadd("ckm:by:Pod:node:gone", "a/old")            # and a set it no longer has
    store.redis.delete(INDEXES)
    assert store.ensure_indexes()
    assert names(store, "Pod", "node:n1") == ["a/p"]
    assert not store.redis.exists("ckm:by:Pod:node:gone")
    assert not store.ensure_indexes()                            # once per version
