"""The watcher: list+watch of Kubernetes kinds into the desired-state store, enqueueing keys.

Owns: reflectors per kind, projections and their hashes, fan-out of a change to the keys it
affects, leader election (Lease), health and metrics of the watch side.
Must not import: emulators; from workers only the dispatch (enqueue) API.
"""
