"""The Contrail (OpenContrail / Tungsten Fabric) config API client; only it speaks VNC REST.

Owns: HTTP transport (kept-alive http.client connections; httpx for Keystone), failover across
API servers, Keystone auth, retries, the error tree, idempotent helpers (`ensure`,
`delete_if_exists`, ref set/unset) and per-call metrics.
Must not import: tasks, watcher, workers, emulators.
"""
