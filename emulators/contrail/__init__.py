"""The Contrail config API (VNC REST) emulator (see emulators/__init__.py for the rules every
emulator follows).

Layers, one module each: `schema` (the type table) -> `store` (objects and indexes) ->
`backend` + `hooks/` + `addressing`/`ipam` + `listing` + `actions` (server behaviour, no HTTP)
-> `render` (wire dicts) -> `app` (routes, `create_app`), with `errors` (every status and
text), `homepage`, `defaults` (startup objects), `faults` and `admin` (knobs, counters,
`/_emulator/`), `keystone`, `persistence` (SQLite state file), `cli` and `bench`.
"""
