"""Attempt counts and the failed-sync registry an operator reads (`ckm failed ...`).

A key becomes a failed sync after `max_attempts` failed runs, or at once for bad input. It
stays listed, with its last error and traceback, until a run succeeds (or `ckm retry`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import redis

FAILED = "ckm:failed"
ATTEMPTS = "ckm:attempts"


@dataclass(frozen=True)
class FailedSync:
    key: str
    error: str
    traceback: str
    attempts: int
    first_failed: float
    last_failed: float
    permanent: bool  # bad input: not retried until the object changes

    def to_json(self) -> str:
        return json.dumps(asdict(self))


class Failures:
    def __init__(self, client: redis.Redis):
        self.redis = client

    def attempt(self, key: str) -> int:
        """Count one more failed attempt of `key`; returns the count."""
        return int(self.redis.hincrby(ATTEMPTS, key, 1))

    def attempts(self, key: str) -> int:
        return int(self.redis.hget(ATTEMPTS, key) or 0)

    def record(self, key: str, *, error: str, traceback: str, attempts: int,
               permanent: bool) -> FailedSync:
        previous = self.get(key)
        now = time.time()
        failed = FailedSync(key, error, traceback, attempts,
                            previous.first_failed if previous else now, now, permanent)
        self.redis.hset(FAILED, key, failed.to_json())
        return failed

    def clear(self, key: str) -> bool:
        """Forget attempts and failure of `key` (it succeeded, or an operator retries it)."""
        pipe = self.redis.pipeline()
        self.clear_in(pipe, key)
        return bool(pipe.execute()[1])

    @staticmethod
    def clear_in(pipe, key: str):
        """Queue the clear on a pipeline; its second result says whether a failure went."""
        return pipe.hdel(ATTEMPTS, key).hdel(FAILED, key)

    def get(self, key: str) -> FailedSync | None:
        raw = self.redis.hget(FAILED, key)
        return FailedSync(**json.loads(raw)) if raw else None

    def all(self) -> list[FailedSync]:
        return sorted((FailedSync(**json.loads(raw)) for raw in self.redis.hvals(FAILED)),
                      key=lambda f: f.key)

    def count(self) -> int:
        return int(self.redis.hlen(FAILED))
