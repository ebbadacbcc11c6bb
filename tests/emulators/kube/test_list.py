"""Lists: pagination, label and field selectors."""

import pytest
from kubernetes.client.rest import ApiException

from tests.emulators.kube.helpers import pod


def make_pods(core, count: int, namespace: str = "default", **labels) -> None:
    for n in range(count):
        core.create_namespaced_pod(namespace, pod(f"p-{n:03d}", {"n": str(n), **labels}))


def test_paginated_list_walks_a_consistent_snapshot(core):
    make_pods(core, 25)
    first = core.list_namespaced_pod("default", limit=10)
    assert len(first.items) == 10
    assert first.metadata._continue and first.metadata.remaining_item_count == 15
    core.create_namespaced_pod("default", pod("p-000a"))  # after the snapshot: not listed
    names = [p.metadata.name for p in first.items]
    token = first.metadata._continue
    while token:
        page = core.list_namespaced_pod("default", limit=10, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        names += [p.metadata.name for p in page.items]
        token = page.metadata._continue
    assert names == [f"p-{n:03d}" for n in range(25)]


def test_list_resource_version_is_the_global_counter(core):
    make_pods(core, 2)
    core.create_namespace({"metadata": {"name": "later"}})
    listed = core.list_namespaced_pod("default")
    newest = max(int(n.metadata.resource_version) for n in core.list_namespace().items)
    assert int(listed.metadata.resource_version) >= newest


def test_bad_continue_token(core):
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_pod("default", limit=1, _continue="bm9wZQ")
    assert caught.value.status == 400


@pytest.mark.parametrize(("selector", "expected"), [
    ("tier=web", {"p-000", "p-001"}),
    ("tier==web", {"p-000", "p-001"}),
    ("tier!=web", {"p-002", "p-003"}),
    ("tier in (web,db)", {"p-000", "p-001", "p-002"}),
    ("tier notin (web)", {"p-002", "p-003"}),
    ("tier", {"p-000", "p-001", "p-002"}),
    ("!tier", {"p-003"}),
    ("tier=web,n=1", {"p-001"}),
    ("tier in (web, db),n notin (0,2)", {"p-001"}),
])
def test_label_selectors(core, selector, expected):
    for n, tier in enumerate(["web", "web", "db", None]):
        labels = {"n": str(n)} | ({"tier": tier} if tier else {})
        core.create_namespaced_pod("default", pod(f"p-{n:03d}", labels))
    listed = core.list_namespaced_pod("default", label_selector=selector)
    assert {p.metadata.name for p in listed.items} == expected


def test_field_selectors(core):
    core.create_namespace({"metadata": {"name": "other"}})
    make_pods(core, 3)
    make_pods(core, 1, namespace="other")
    core.patch_namespaced_pod_status("p-001", "default", {"status": {"phase": "Running"}})
    by_name = core.list_pod_for_all_namespaces(field_selector="metadata.name=p-000")
    assert {(p.metadata.namespace, p.metadata.name) for p in by_name.items} == {
        ("default", "p-000"), ("other", "p-000")}
    by_ns = core.list_pod_for_all_namespaces(field_selector="metadata.namespace=other")
    assert [p.metadata.name for p in by_ns.items] == ["p-000"]
    running = core.list_namespaced_pod("default", field_selector="status.phase=Running")
    assert [p.metadata.name for p in running.items] == ["p-001"]
    unscheduled = core.list_namespaced_pod("default", field_selector="spec.nodeName=")
    assert len(unscheduled.items) == 3
    not_p0 = core.list_namespaced_pod("default",
                                      field_selector="metadata.name!=p-000,status.phase!=Running")
    assert [p.metadata.name for p in not_p0.items] == ["p-002"]


def test_bad_label_selector_is_400(core):
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_pod("default", label_selector="a in b")
    assert caught.value.status == 400
