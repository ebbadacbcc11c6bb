"""Watches through kubernetes.watch.Watch (and raw HTTP where the wire format matters)."""

import json
import socket
import threading
import time

import httpx
import kubernetes.client as k8s
import pytest
from kubernetes import watch
from kubernetes.client.rest import ApiException

from tests.emulators.kube.helpers import pod


def events(func, *args, count: int | None = None, **kwargs) -> list[tuple[str, str, str]]:
    """(type, name, resourceVersion) of the first `count` events, or of all until the watch
    times out when `count` is None."""
    kwargs.setdefault("timeout_seconds", 1 if count is None else 5)
    seen, w = [], watch.Watch()
    for e in w.stream(func, *args, **kwargs):
        meta = e["raw_object"].get("metadata", {})
        seen.append((e["type"], meta.get("name"), meta.get("resourceVersion")))
        if count is not None and len(seen) >= count:
            w.stop()
    return seen


def test_watch_without_resource_version_starts_with_current_objects(core):
    core.create_namespaced_pod("default", pod("a"))
    core.create_namespaced_pod("default", pod("b"))
    seen = events(core.list_namespaced_pod, "default", count=2)
    assert [(t, n) for t, n, _ in seen] == [("ADDED", "a"), ("ADDED", "b")]


def test_watch_resumes_from_a_resource_version(core):
    core.create_namespaced_pod("default", pod("before"))
    rv = core.list_namespaced_pod("default").metadata.resource_version
    core.create_namespaced_pod("default", pod("a"))
    core.patch_namespaced_pod("a", "default", {"metadata": {"labels": {"x": "1"}}})
    core.delete_namespaced_pod("a", "default")
    seen = events(core.list_namespaced_pod, "default", resource_version=rv, count=3)
    assert [(t, n) for t, n, _ in seen] == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    versions = [int(v) for _, _, v in seen]
    assert versions == sorted(versions) and versions[0] > int(rv)


def test_live_events_arrive_while_watching(core, kube_emulator):
    rv = core.list_namespaced_pod("default").metadata.resource_version

    def writer():
        time.sleep(0.3)
        for n in range(3):
            core.create_namespaced_pod("default", pod(f"live-{n}"))

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_pod, "default", resource_version=rv,
                          timeout_seconds=5):
        seen.append(event["object"].metadata.name)
        if len(seen) == 3:
            w.stop()
    thread.join()
    assert seen == ["live-0", "live-1", "live-2"]


def test_bookmarks_carry_only_the_resource_version(kube_emulator_factory):
    emulator = kube_emulator_factory(bookmark_interval=0.1)
    core = k8s.CoreV1Api(emulator.api_client())
    rv = core.list_namespaced_pod("default").metadata.resource_version
    seen = events(core.list_namespaced_pod, "default", resource_version=rv,
                  allow_watch_bookmarks=True, count=2)
    assert [t for t, _, _ in seen] == ["BOOKMARK", "BOOKMARK"]
    stream = watch.Watch().stream(core.list_namespaced_pod, "default", resource_version=rv,
                                  allow_watch_bookmarks=True, timeout_seconds=1)
    bookmarks = [e["raw_object"] for e in stream if e["type"] == "BOOKMARK"]
    assert bookmarks[0] == {"kind": "Pod", "apiVersion": "v1",
                            "metadata": {"resourceVersion": rv}}
    # Without allowWatchBookmarks there are none.
    assert not [e for e in watch.Watch().stream(core.list_namespaced_pod, "default",
                                                resource_version=rv, timeout_seconds=1)]


def test_compaction_makes_old_resource_versions_410(core, kube_emulator):
    old_rv = core.list_namespaced_pod("default").metadata.resource_version
    core.create_namespaced_pod("default", pod("a"))
    kube_emulator.admin("POST", "compact")
    with pytest.raises(ApiException) as caught:
        # The client retries once on 410, then raises.
        list(watch.Watch().stream(core.list_namespaced_pod, "default", resource_version=old_rv))
    assert caught.value.status == 410
    assert "too old resource version" in caught.value.reason
    # The wire format is the real server's: HTTP 200 and one ERROR event.
    url = f"{kube_emulator.url}/api/v1/namespaces/default/pods"
    with httpx.stream("GET", url, params={"watch": "true", "resourceVersion": old_rv}) as r:
        assert r.status_code == 200
        lines = list(r.iter_lines())
    current = int(core.list_namespaced_pod("default").metadata.resource_version)
    assert [json.loads(line) for line in lines] == [{"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"too old resource version: {old_rv} ({current + 1})",
        "reason": "Expired", "code": 410}}]
    # Resuming from the current resourceVersion still works.
    assert events(core.list_namespaced_pod, "default", resource_version=str(current)) == []


def test_bounded_history_expires_old_resource_versions(kube_emulator_factory):
    emulator = kube_emulator_factory(history_size=5)
    core = k8s.CoreV1Api(emulator.api_client())
    rv = core.list_namespaced_pod("default").metadata.resource_version
    for n in range(10):
        core.create_namespaced_pod("default", pod(f"p{n}"))
    with pytest.raises(ApiException) as caught:
        events(core.list_namespaced_pod, "default", resource_version=rv)
    assert caught.value.status == 410
    recent = core.read_namespaced_pod("p5", "default").metadata.resource_version
    assert [n for _, n, _ in events(core.list_namespaced_pod, "default",
                                    resource_version=recent, count=4)] == ["p6", "p7", "p8", "p9"]


def test_selector_transitions_become_added_and_deleted(core):
    core.create_namespaced_pod("default", pod("p", {"app": "web"}))
    rv = core.list_namespaced_pod("default").metadata.resource_version
    core.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"app": "db"}}})
    core.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"app": "web"}}})
    core.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"v": "2"}}})
    seen = events(core.list_namespaced_pod, "default", resource_version=rv,
                  label_selector="app=web", count=3)
    assert [t for t, _, _ in seen] == ["DELETED", "ADDED", "MODIFIED"]
    by_field = events(core.list_pod_for_all_namespaces, field_selector="metadata.name=p",
                      count=1)
    assert [(t, n) for t, n, _ in by_field] == [("ADDED", "p")]


def test_timeout_seconds_ends_the_stream(core):
    rv = core.list_namespace().metadata.resource_version
    started = time.monotonic()
    assert events(core.list_namespace, resource_version=rv, timeout_seconds=1) == []
    assert 0.9 < time.monotonic() - started < 3


def test_dropping_watches_ends_open_streams(core, kube_emulator):
    url = f"{kube_emulator.url}/api/v1/pods"
    ended = threading.Event()

    def reader():
        with httpx.stream("GET", url, params={"watch": "1"},
                          timeout=10) as response:
            for _ in response.iter_lines():
                pass
        ended.set()

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.3)
    assert kube_emulator.admin("POST", "watches/drop")["dropped"] == 1
    assert ended.wait(3)
    thread.join()


def test_initial_events_end_bookmark(kube_emulator):
    url = f"{kube_emulator.url}/api/v1/namespaces"
    params = {"watch": "true", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
              "resourceVersionMatch": "NotOlderThan", "timeoutSeconds": "1"}
    with httpx.stream("GET", url, params=params) as response:
        lines = [json.loads(line) for line in response.iter_lines()]
    assert [e["type"] for e in lines[:4]] == ["ADDED"] * 4
    assert lines[4]["type"] == "BOOKMARK"
    assert lines[4]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_a_bookmark_never_passes_events_the_watch_has_not_sent(kube_emulator_factory):
    """A bookmark promises every event up to its resourceVersion was sent: a client resumes
    from it and treats older events as replays. One sent while events were still queued
    behind a slow reader once made ckm's watcher drop 5,395 of 10,000 new pods."""
    emulator = kube_emulator_factory(bookmark_interval=0.05)
    core = k8s.CoreV1Api(emulator.api_client())
    rv = core.list_namespaced_pod("default").metadata.resource_version
    total = 400
    # a small receive window, and a reader that pauses: the server's writes block and its
    # events queue up, as behind a watcher that lags
    slow = httpx.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
    url = f"{emulator.url}/api/v1/namespaces/default/pods"
    params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true",
              "timeoutSeconds": "60"}
    added, bookmark, replays = set(), 0, []
    with httpx.Client(transport=slow, timeout=90) as client, \
            client.stream("GET", url, params=params) as response:
        writer = threading.Thread(target=lambda: [
            core.create_namespaced_pod("default", pod(f"p{n}")) for n in range(total)])
        writer.start()
        lines = response.iter_lines()
        time.sleep(1.5)  # not reading
        for line in lines:
            event = json.loads(line)
            version = int(event["object"]["metadata"]["resourceVersion"])
            if event["type"] == "BOOKMARK":
                bookmark = max(bookmark, version)
                continue
            if version <= bookmark:
                replays.append((event["object"]["metadata"]["name"], version, bookmark))
            added.add(event["object"]["metadata"]["name"])
            if len(added) == total:
                break
        writer.join()
    assert replays == []
    assert len(added) == total
