"""The Celery side: keyed work queue, per-key locks, retries, failed syncs, resync and GC.

Owns: the Celery app and task shells, workqueue semantics across processes through Redis,
backoff, the global Contrail concurrency cap and rate limit.
Must not import: emulators; from watcher only the desired-state store.
"""
