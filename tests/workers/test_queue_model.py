"""The keyed queue's state machine against a model, on a real Redis (hypothesis stateful).

Celery is modelled as a multiset of messages in flight, each of which may be delivered (begin),
duplicated or lost; workers as runs holding a key under a token; a worker that dies or stalls
as a run whose lease is forced to 0 (what a dead worker leaves once its lease runs out); the
sweeper as due() followed, a step later, by schedule() of every expired key (other rules may run
in between, as other workers do), or by its death. Nothing waits for the clock:
every real timeout (lease, resend, settle, retry) is an hour and is ended by setting its score
to 0, so each example is deterministic.

Checked after every step: Redis' `processing` hash is exactly the model's holders (never two
live runs of a key), leases and dirty marks belong to held keys, a key is never queued and
held at once, and a key that needs work (enqueued after the start of its last good run) is
somewhere it will be run from. At the end every example is drained (timeouts forced, sweeps,
all messages delivered, all runs finished) and then every key enqueued has had a good run
that started after its last enqueue, and the queue is empty.

The last test is the shortest case of the sweep that dies between due() and schedule() (a
dead worker's key once lived only in the sweeper's memory there).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.fixtures.redis import CLAIM_KEY, TOKEN
from watcher.store import COMPLETE
from workers.queue import (
    BUSY,
    DELAYED,
    DIRTY,
    DUPLICATE,
    LANES,
    LEASES,
    NORMAL,
    PROCESSING,
    QUEUED,
    RESENDS,
    RESYNC,
    RESYNCING,
    RUN,
    SETTLING,
    STORE_INCOMPLETE,
    URGENT,
    KeyQueue,
)

pytestmark = pytest.mark.integration

KEYS = ["namespace/a", "port/a/p"]
HOUR_MS = 3_600_000
SCHEDULE_SECONDS = 3600  # the sweeper's backoff for a dead worker's key; forced to 0 here
key_lists = st.lists(st.sampled_from(KEYS), min_size=1, max_size=3)
lanes = st.sampled_from([URGENT, NORMAL, RESYNC])
retries = st.sampled_from([None, 0, SCHEDULE_SECONDS])  # None: the run succeeded


class QueueMachine(RuleBasedStateMachine):
    def __init__(self, client):
        super().__init__()
        self.r = client
        client.flushdb()
        client.set(CLAIM_KEY, TOKEN, ex=86400)
        client.set(COMPLETE, "1")
        self.queue: KeyQueue | None = None
        self.store_complete = True
        self.messages: list[str] = []       # Celery messages in flight (a multiset of keys)
        self.live: dict[str, str] = {}      # key -> token of a worker running it right now
        self.zombies: dict[str, str] = {}   # token -> key: runs whose lease was forced to 0
        self.holder: dict[str, str] = {}    # what `processing` must hold: key -> token
        self.rescuing: list[str] = []       # expired keys the sweeper has yet to schedule
        self.started: dict[str, int] = {}   # token -> clock when its run began
        self.enqueued: dict[str, int] = {}  # key -> clock of its latest enqueue / requeue
        self.done: dict[str, int] = {}      # key -> start clock of its latest good run
        self.clock = 0
        self.tokens = 0

    # -- helpers --------------------------------------------------------------------------

    def _tick(self) -> int:
        self.clock += 1
        return self.clock

    def _token(self) -> str:
        self.tokens += 1
        return f"t{self.tokens}"

    def _zset(self, name: str) -> set[str]:
        return set(self.r.zrange(name, 0, -1))

    def _snapshot(self) -> dict:
        r = self.r
        snap: dict = {name: sorted(r.zrange(name, 0, -1, withscores=True))
                      for name in (QUEUED, LEASES, DELAYED, SETTLING)}
        snap.update({name: r.hgetall(name) for name in (PROCESSING, LANES, RESENDS)})
        snap[DIRTY] = r.smembers(DIRTY)
        return snap

    def _needs_work(self, key: str) -> bool:
        return key in self.enqueued and self.done.get(key, -1) < self.enqueued[key]

    def _begin(self, key: str) -> None:
        was_queued = self.r.zscore(QUEUED, key) is not None
        token = self._token()
        outcome = self.queue.begin(key, token)
        if not was_queued:
            assert outcome == DUPLICATE, (key, outcome)
        elif not self.store_complete:
            assert outcome == STORE_INCOMPLETE, (key, outcome)
        elif outcome == RUN:
            assert key not in self.live, f"{key} runs twice: {self.live[key]} and {token}"
            self.live[key] = self.holder[key] = token
            self.started[token] = self._tick()
        else:
            assert outcome == BUSY and key in self.live, (key, outcome)

    def _finish(self, key: str, token: str, retry: float | None) -> None:
        owned = self.holder.get(key) == token
        was_dirty = self.r.sismember(DIRTY, key)
        before = self._snapshot()
        result = self.queue.finish(key, token, retry_in=retry)
        if not owned:
            assert result == -1, (key, token, result)
            assert self._snapshot() == before, "a stale finish changed the queue"
            return
        del self.holder[key]
        assert result == (1 if was_dirty and not self.queue.settle_ms else 0), (key, result)
        if result == 1:
            self.messages.append(key)
        if retry is None:
            self.done[key] = max(self.done.get(key, -1), self.started[token])

    # -- rules ----------------------------------------------------------------------------

    @initialize(settle_ms=st.sampled_from([0, HOUR_MS]))
    def make_queue(self, settle_ms):
        self.queue = KeyQueue(self.r, lease_ms=HOUR_MS, settle_ms=settle_ms, resend_ms=HOUR_MS)

    @rule(keys=key_lists, lane=lanes)
    def enqueue(self, keys, lane):
        expected = set()
        for key in set(keys):
            queued = self.r.zscore(QUEUED, key) is not None
            lane_was = int(self.r.hget(LANES, key) or 9)
            held = self.r.hexists(PROCESSING, key)
            settling = self.r.zscore(SETTLING, key) is not None
            if not held and not settling and (not queued or lane < lane_was):
                expected.add(key)
        sent = self.queue.enqueue(keys, lane)
        assert sorted(sent) == sorted(expected), (keys, sent, expected)
        assert not set(keys) & self._zset(DELAYED), "a change must cut a backoff short"
        now = self._tick()
        for key in keys:
            self.enqueued[key] = now
        self.messages += sent

    @rule(keys=st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True))
    def requeue(self, keys):
        expected = [k for k in keys if not self.r.hexists(PROCESSING, k)]
        sent = self.queue.requeue(keys)
        assert sent == expected, (keys, sent)
        assert not set(keys) & (self._zset(DELAYED) | self._zset(SETTLING))
        now = self._tick()
        for key in keys:
            self.enqueued[key] = now
        self.messages += sent

    @precondition(lambda self: self.messages)
    @rule(data=st.data())
    def deliver(self, data):
        key = data.draw(st.sampled_from(sorted(set(self.messages))), label="message")
        self.messages.remove(key)
        self._begin(key)

    @precondition(lambda self: self.messages)
    @rule(data=st.data(), lost=st.booleans())
    def broker_fault(self, data, lost):
        """The broker loses a message or delivers it twice."""
        key = data.draw(st.sampled_from(sorted(set(self.messages))), label="message")
        if lost:
            self.messages.remove(key)
        else:
            self.messages.append(key)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), retry=retries)
    def finish(self, data, retry):
        key = data.draw(st.sampled_from(sorted(self.live)), label="run")
        self._finish(key, self.live.pop(key), retry)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def renew(self, data):
        key = data.draw(st.sampled_from(sorted(self.live)), label="run")
        assert self.queue.renew(key, self.live[key])

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def expire_lease(self, data):
        """The worker dies (or stalls) and its lease runs out."""
        key = data.draw(st.sampled_from(sorted(self.live)), label="run")
        self.r.zadd(LEASES, {key: 0}, xx=True)
        self.zombies[self.live.pop(key)] = key

    @precondition(lambda self: self.zombies)
    @rule(data=st.data(), retry=retries)
    def zombie_finishes(self, data, retry):
        """A stalled run ends late: it must change nothing if its key was handed out."""
        token = data.draw(st.sampled_from(sorted(self.zombies)), label="zombie")
        self._finish(self.zombies.pop(token), token, retry)

    @precondition(lambda self: self.zombies)
    @rule(data=st.data())
    def zombie_renews(self, data):
        """A stalled run's renewer wakes: it keeps the key only if nobody took it over."""
        token = data.draw(st.sampled_from(sorted(self.zombies)), label="zombie")
        key = self.zombies[token]
        before = self._snapshot()
        renewed = self.queue.renew(key, token)
        assert renewed == (self.holder.get(key) == token)
        if renewed:
            assert key not in self.live
            del self.zombies[token]
            self.live[key] = token
        else:
            assert self._snapshot() == before

    @rule()
    def sweep(self):
        due = self.queue.due(rescue_ms=HOUR_MS)  # the sweeper's is a second; forced here
        dead = {k for k, t in self.holder.items() if t in self.zombies}
        assert set(due.expired) == dead, (due.expired, dead)
        for key in due.expired:
            del self.holder[key]
        self.rescuing += due.expired
        self.messages += due.send + [key for key, _ in due.resend]
        assert not due.outbox and not due.urgent_outbox

    @precondition(lambda self: self.rescuing)
    @rule(dies=st.booleans())
    def sweeper_schedules(self, dies):
        """The same sweep, a moment after due(): it sets the dead workers' keys' backoff
        (other workers may have enqueued or run them meanwhile), or it fails first (a Redis
        blip, its process killed) and the keys must be retried anyway."""
        if not dies:
            for key in self.rescuing:
                self.queue.schedule(key, SCHEDULE_SECONDS)
        self.rescuing = []

    @rule(data=st.data(), zset=st.sampled_from([QUEUED, DELAYED, SETTLING]))
    def force_timeout(self, data, zset):
        """A resend timeout, a retry's delay or a settle period runs out."""
        members = sorted(self._zset(zset))
        if members:
            key = data.draw(st.sampled_from(members), label="key")
            self.r.zadd(zset, {key: 0}, xx=True)

    @rule()
    def store_lost_or_listed(self):
        """Redis loses the desired-state store (the watcher lists again), or it is back."""
        if self.store_complete:
            self.r.delete(COMPLETE)
        else:
            self.r.set(COMPLETE, "1")
        self.store_complete = not self.store_complete

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def redis_matches_the_model(self):
        if self.queue is None:
            return
        processing = self.r.hgetall(PROCESSING)
        assert processing == self.holder, (processing, self.holder)
        for key, token in self.live.items():
            assert processing.get(key) == token, f"live run {token} of {key} lost its key"
        assert self._zset(LEASES) == set(processing)
        dirty = self.r.smembers(DIRTY)
        assert dirty <= set(processing), dirty
        queued = self._zset(QUEUED)
        assert not queued & set(processing), "a key both queued and running"
        assert set(self.r.hkeys(LANES)) <= queued
        assert set(self.r.hkeys(RESENDS)) <= queued
        # the resync lane's fill level counts exactly the queued keys waiting on that lane
        on_resync_lane = {k for k, lane in self.r.hgetall(LANES).items() if lane == str(RESYNC)}
        assert self.r.smembers(RESYNCING) == on_resync_lane, "resync lane miscounted"

    @invariant()
    def a_key_that_needs_work_is_pending(self):
        if self.queue is None:
            return
        waiting = self._zset(QUEUED) | self._zset(DELAYED) | self._zset(SETTLING)
        dirty = self.r.smembers(DIRTY)
        for key in KEYS:
            if not self._needs_work(key) or key in waiting:
                continue
            token = self.holder.get(key)
            assert token is not None and (
                key in dirty or self.started[token] > self.enqueued[key]), \
                f"{key} needs work but is nowhere in the queue"

    # -- the end: drain, then liveness ----------------------------------------------------

    def _idle(self) -> bool:
        return not any(self.r.exists(name) for name in (
            QUEUED, PROCESSING, LEASES, DIRTY, DELAYED, SETTLING, LANES, RESENDS))

    def _force_all(self) -> None:
        for zset in (QUEUED, DELAYED, SETTLING):
            for key in self._zset(zset):
                self.r.zadd(zset, {key: 0}, xx=True)

    def teardown(self):
        if self.queue is None:
            return
        if not self.store_complete:
            self.store_lost_or_listed()
        for _ in range(20):
            for key in sorted(self.live):
                self._finish(key, self.live.pop(key), None)
            for _ in range(2):  # the second sweep sends the dead workers' keys it scheduled
                self._force_all()
                self.sweep()
                if self.rescuing:
                    self.sweeper_schedules(dies=False)
            while self.messages:
                self._begin(self.messages.pop(0))
            self.redis_matches_the_model()
            self.a_key_that_needs_work_is_pending()
            if not self.live and self._idle():
                break
        else:
            raise AssertionError(f"the queue does not drain: {self._snapshot()}")
        lost = {k: (self.enqueued[k], self.done.get(k)) for k in KEYS if self._needs_work(k)}
        assert not lost, f"keys enqueued after their last good run never ran again: {lost}"
        for token, key in sorted(self.zombies.items()):  # dead runs stay fenced
            self._finish(key, token, None)


def test_the_queue_keeps_its_promises_against_a_model(redis_client):
    run_state_machine_as_test(
        lambda: QueueMachine(redis_client),
        settings=settings(max_examples=150, stateful_step_count=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow]))


def test_a_sweep_that_fails_between_due_and_schedule_keeps_the_dead_workers_key(redis_client):
    redis_client.set(COMPLETE, "1")
    queue = KeyQueue(redis_client)
    assert queue.enqueue(["namespace/a"]) == ["namespace/a"]
    assert queue.begin("namespace/a", "w1") == RUN      # ... and worker w1 dies
    assert queue.enqueue(["namespace/a"]) == []         # a change meanwhile: dirty
    redis_client.zadd(LEASES, {"namespace/a": 0})       # w1's lease runs out
    assert queue.due().expired == ["namespace/a"]
    # the sweep fails here (failures.attempt or schedule hit a Redis blip, or the reply of
    # due() was lost, or the worker process is killed): the key must still be somewhere
    assert not queue.depths().idle
