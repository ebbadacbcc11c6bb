"""`GET /`: the discovery document the official client learns every URI from (vnc-rest.md 2.1).

One `collection` and one `resource-base` link per resource type the 2005 client knows (types
the emulator does not implement answer 404 later, instead of the client posting to `/`), plus
every action link under the exact name the client looks up. Hrefs are absolute and start with
the document's own `href`, because the client strips that prefix to get each URI.
"""

from __future__ import annotations

import functools
from typing import Any

from emulators.contrail.schema import ALL_RESOURCE_TYPES

# (uri, link name the client looks up, method)
ACTIONS = (
    ("/prop-collection-get", "prop-collection-get", "GET"),
    ("/prop-collection-update", "prop-collection-update", "POST"),
    ("/ref-update", "ref-update", "POST"),
    ("/ref-relax-for-delete", "ref-relax-for-delete", "POST"),
    ("/fqname-to-id", "name-to-id", "POST"),
    ("/id-to-fqname", "id-to-name", "POST"),
    ("/useragent-kv", "useragent-keyvalue", "POST"),
    ("/list-bulk-collection", "list-bulk-collection", "POST"),
    ("/obj-perms", "obj-perms", "GET"),
    ("/chown", "chown", "POST"),
    ("/chmod", "chmod", "POST"),
    ("/aaa-mode", "aaa-mode", "PUT"),
    ("/set-tag", "set-tag", "POST"),
    ("/security-policy-draft", "security-policy-draft", "POST"),
    ("/virtual-network/%s/ip-alloc", "virtual-network-ip-alloc", "POST"),
    ("/virtual-network/%s/ip-free", "virtual-network-ip-free", "POST"),
    ("/virtual-network/%s/subnet-ip-count", "virtual-network-subnet-ip-count", "POST"),
)


def _link(rel: str, href: str, name: str, method: str | None) -> dict[str, Any]:
    return {"link": {"rel": rel, "href": href, "name": name, "method": method}}


@functools.lru_cache(maxsize=16)
def homepage(base: str) -> dict[str, Any]:
    links = [_link("documentation", f"{base}/documentation/index.html", "documentation", "GET"),
             _link("root", f"{base}/config-root", "config-root", None)]
    for type_ in ALL_RESOURCE_TYPES:
        links.append(_link("collection", f"{base}/{type_}s", type_, None))
        links.append(_link("resource-base", f"{base}/{type_}", type_, None))
    links += [_link("action", base + uri, name, method) for uri, name, method in ACTIONS]
    return {"href": base, "links": links}
