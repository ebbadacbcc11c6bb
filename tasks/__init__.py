"""Pure reconcile logic: Kubernetes projections in, desired Contrail objects out.

Owns: deterministic names and uuids, per-kind `desired()` functions, the NetworkPolicy
compiler, the diff into a plan of Contrail operations.
Must not import: celery, redis, httpx, kubernetes, watcher, workers, emulators. (This is not
Celery's "tasks" module: the Celery tasks live in `workers/`.)
"""
