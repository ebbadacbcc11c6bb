"""HTTP emulators of the Kubernetes API server and the Contrail config API, for tests and demos.

Owns: wire-compatible servers that the official clients (`kubernetes`, kubectl, `vnc_api`)
accept unmodified, their fault knobs and admin endpoints.
Must not import: any ckm application package (config, contrail, tasks, watcher, workers).
Production code never imports this package; only `ckm emulate` / `ckm up` load it lazily.
"""
