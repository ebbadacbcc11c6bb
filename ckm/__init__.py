"""ckm: the Kubernetes -> OpenContrail network controller, as a Celery task-queue system.

This package holds only the `ckm` command line and the version. It wires the other packages
together (config, contrail, tasks, watcher, workers) and, lazily, the emulators for
`ckm emulate` / `ckm up`; none of those packages imports it.
"""

__version__ = "0.1.0"
