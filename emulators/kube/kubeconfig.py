"""Write a kubeconfig that points kubectl and the Python client at an emulator URL.

Plain HTTP, no credentials (the emulator does not authenticate), one context named
`ckm-emulator` with namespace `default`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import yaml

NAME = "ckm-emulator"


def kubeconfig_dict(url: str, namespace: str = "default") -> dict:
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": NAME, "cluster": {"server": url}}],
        "users": [{"name": NAME, "user": {}}],
        "contexts": [{"name": NAME, "context": {"cluster": NAME, "user": NAME,
                                                 "namespace": namespace}}],
        "current-context": NAME,
    }


def default_path(url: str) -> Path:
    port = urlsplit(url).port or 80
    return Path(tempfile.gettempdir()) / f"ckm-kube-emulator-{port}.kubeconfig"


def write_kubeconfig(url: str, path: str | os.PathLike | None = None) -> Path:
    """Write the kubeconfig for `url` to `path` (default: in the temp dir, by port); return it."""
    target = Path(path) if path else default_path(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(kubeconfig_dict(url), sort_keys=False))
    return target
