"""Layered loading of `Settings`, remembering where every value came from.

Precedence, lowest first: built-in defaults < config file (TOML, YAML, or the upstream
`contrail-kubernetes.conf` INI) < `CKM_*` environment variables < command-line flags.
Any bad value stops the program with one `ConfigError` naming the key and its source.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import EnvSettingsSource, TomlConfigSettingsSource, YamlConfigSettingsSource

from config.errors import ConfigError
from config.settings import SECRET_FIELDS, Settings
from config.upstream_ini import read_upstream_ini

CONFIG_ENV = "CKM_CONFIG"


@dataclass(frozen=True)
class Loaded:
    """The effective settings, per setting where its value came from, and what was ignored
    (every process that starts prints the warnings)."""

    settings: Settings
    origins: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def origin(self, name: str) -> str:
        return self.origins.get(name, "default")


# CKM_* variables that are not settings but are read by ckm (or its tests) all the same.
_OTHER_VARIABLES = {"CKM_CONFIG", "CKM_STATE_DIR", "CKM_TEST_REDIS_URL"}


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _file_layer(path: Path) -> tuple[dict[str, tuple[object, str]], list[str]]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".conf", ".ini"):
        return read_upstream_ini(path)
    try:
        if suffix == ".toml":
            data = TomlConfigSettingsSource(Settings, toml_file=path)()
        elif suffix in (".yaml", ".yml"):
            data = YamlConfigSettingsSource(Settings, yaml_file=path)()
        else:
            raise ConfigError(f"config file {path}: use .toml, .yaml/.yml, or an upstream .conf")
    except ConfigError:
        raise
    except Exception as exc:  # the parsers raise their own types; the message is what matters
        raise ConfigError(f"cannot parse config file {path}: {exc}") from exc
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in config file {path}"
                          f"{_did_you_mean(unknown[0], Settings.model_fields)} "
                          f"(`ckm config show` lists every key)")
    return {key: (value, f"file {path}") for key, value in data.items()}, []


# What Kubernetes sets in a pod for each Service of its namespace (a Service `ckm-redis`
# gives CKM_REDIS_SERVICE_HOST, CKM_REDIS_PORT_16379_TCP_ADDR, ...): not settings, not typos.
_SERVICE_LINK = re.compile(r"^CKM_[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|"
                           r"PORT(_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$")


def _unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A misspelt CKM_ variable would be ignored silently: name it."""
    known = {f"CKM_{name.upper()}" for name in Settings.model_fields} | _OTHER_VARIABLES
    return [f"environment variable {name} is not a ckm setting, ignored"
            f"{_did_you_mean(name, known)}"
            for name in sorted(environ) if name.upper().startswith("CKM_")
            and name.upper() not in known and not _SERVICE_LINK.match(name.upper())]


def _env_layer(environ: Mapping[str, str]) -> dict[str, tuple[object, str]]:
    source = EnvSettingsSource(Settings, env_prefix="CKM_", case_sensitive=False)
    source.env_vars = {k.lower(): v for k, v in environ.items()}
    data = source()
    return {key: (value, f"env CKM_{key.upper()}") for key, value in data.items()}


def _flag_layer(flags: Mapping[str, object], labels: Mapping[str, str]
                ) -> dict[str, tuple[object, str]]:
    out = {}
    for key, value in flags.items():
        label = labels.get(key, f"--{key.replace('_', '-')}")
        if key not in Settings.model_fields:
            raise ConfigError(f"unknown setting {key!r} given on the command line ({label})")
        if value is not None:
            out[key] = (value, f"flag {label}")
    return out


def _describe(error: dict, merged: dict[str, tuple[object, str]]) -> str:
    if not error["loc"]:  # a check across settings: name each one involved and its source
        involved = [name for name in Settings.model_fields if name in error["msg"]]
        where = ", ".join(f"{name} from {merged.get(name, (None, 'default'))[1]}"
                          for name in involved)
        return f"invalid settings ({where}): {error['msg'].removeprefix('Value error, ')}"
    key = str(error["loc"][0])
    value, origin = merged.get(key, (error.get("input"), "default"))
    shown = "***" if key in SECRET_FIELDS else repr(value)
    message = error["msg"].removeprefix("Value error, ")
    return f"invalid setting {key} = {shown} (from {origin}): {message}"


def load(*, config_file: str | Path | None = None, environ: Mapping[str, str] | None = None,
         flags: Mapping[str, object] | None = None,
         flag_labels: Mapping[str, str] | None = None,
         base: tuple[Mapping[str, str], str] | None = None) -> Loaded:
    """Build the effective settings; raise ConfigError with one clear message on bad input.

    `flag_labels` names the command-line spelling of a flag for messages (default --key).
    `base` is a lowest layer of CKM_* variables and the name of where they come from (the
    stack `ckm up` runs).
    """
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get(CONFIG_ENV)
    merged: dict[str, tuple[object, str]] = {}
    if base:
        variables, origin = base
        merged.update({k: (v, origin) for k, (v, _) in _env_layer(variables).items()})
    warnings: list[str] = []
    if config_file:
        layer, warnings = _file_layer(Path(config_file))
        merged.update(layer)
    merged.update(_env_layer(environ))
    warnings += _unknown_variables(environ)
    merged.update(_flag_layer(flags or {}, flag_labels or {}))
    try:
        settings = Settings(**{key: value for key, (value, _) in merged.items()})
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors()[0], merged)) from None
    return Loaded(settings, {key: origin for key, (_, origin) in merged.items()},
                  tuple(warnings))


def effective(loaded: Loaded) -> list[tuple[str, str, str]]:
    """(name, printable value, origin) rows for `ckm config show`; secrets are masked."""
    rows = []
    for name in Settings.model_fields:
        value = getattr(loaded.settings, name)
        if name in SECRET_FIELDS:
            shown = "(unset)" if value is None else "********"
        elif isinstance(value, list):
            shown = ", ".join(str(v) for v in value)
        else:
            shown = "(unset)" if value is None else str(value)
        rows.append((name, shown, loaded.origin(name)))
    return rows
