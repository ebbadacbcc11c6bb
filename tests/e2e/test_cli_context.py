"""Which system a CLI command talks to (issue 14): the stack `ckm up` records as current, an
explicit --state-dir or --broker; never the default Redis it would merely fall back to; an
unreachable Redis is one line and a non-zero exit, not a traceback or a hang."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ckm.context import current_file, set_current
from ckm.stack import StackInfo

pytestmark = pytest.mark.integration


def ckm(*args, cwd: Path, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("CKM_")}  # only what the test names
    return subprocess.run([sys.executable, "-m", "ckm", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd, env={**environ, **env})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_stack(state_dir: Path, broker: str) -> None:
    """A stack.json as `ckm up` writes it, owned by a live process (this one)."""
    state_dir.mkdir(parents=True)
    StackInfo(kube_url="http://127.0.0.1:1", contrail_url=f"http://127.0.0.1:{free_port()}",
              broker_url=broker, kubeconfig=str(state_dir / "kubeconfig")).save(state_dir)


@pytest.mark.parametrize("command", [["status"], ["failed", "list"], ["retry", "port/a/b"],
                                     ["resync"], ["wait", "--timeout", "1"]])
def test_no_system_named_is_refused_before_touching_any_redis(tmp_path, command):
    done = ckm(*command, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no ckm system named" in done.stderr and "Traceback" not in done.stderr
    assert "redis://127.0.0.1:6379/0" in done.stderr  # says what it did not use


def test_an_unreachable_redis_is_one_line_and_exit_1(tmp_path):
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = ckm("status", "--broker", url, cwd=tmp_path)
    assert done.returncode == 1
    assert "cannot reach Redis" in done.stderr and url in done.stderr
    assert "Traceback" not in done.stderr


def test_the_current_context_is_found_from_anywhere_and_named(tmp_path, redis_url):
    state = tmp_path / "stack"
    fake_stack(state, redis_url)
    set_current(state)
    assert current_file().read_text().strip() == str(state.resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = ckm("status", "--json", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert f"broker {redis_url} (ckm up in {state.resolve()})" in status["system"]
    assert f"state dir {state.resolve()} (current context" in status["system"]
    assert status["contrail_healthy"] is False  # nothing listens there: answered at once
    # an explicit --broker beats the stack, and says so
    other = f"{redis_url.rsplit('/', 1)[0]}/{int(redis_url.rsplit('/', 1)[1]) - 1}"
    done = ckm("status", "--json", "--broker", other, cwd=elsewhere)
    assert json.loads(done.stdout)["system"].startswith(f"broker {other} (flag --broker)")
    # and --state-dir names a stack explicitly (here: none running there)
    done = ckm("--state-dir", str(tmp_path / "none"), "failed", "list", cwd=elsewhere)
    assert done.returncode == 2 and "no `ckm up` running in" in done.stderr


def test_retry_says_what_it_did_and_refuses_what_is_not_a_key(tmp_path, redis_url,
                                                               redis_client):
    done = ckm("retry", "bogus", "--broker", redis_url, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "'bogus' is not a key" in done.stderr
    done = ckm("retry", "nosuch/a/b", "--broker", redis_url, cwd=tmp_path)
    assert done.returncode == 2 and "no key kind 'nosuch'" in done.stderr
    done = ckm("retry", "--all-failed", "--broker", redis_url, cwd=tmp_path)
    assert done.returncode == 0 and "nothing to retry" in done.stdout
    done = ckm("retry", "port/nowhere/ghost", "--broker", redis_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no stored object for port/nowhere/ghost" in done.stdout
    assert "queued 1 key(s)" in done.stdout
    assert redis_client.zscore("ckm:q:queued", "port/nowhere/ghost") is not None


def test_failed_show_as_json(tmp_path, redis_url, context):
    context.failures.record("port/a/b", error="boom", traceback="tb", attempts=3,
                            permanent=False)
    done = ckm("failed", "show", "port/a/b", "--json", "--broker", redis_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["key"] == "port/a/b" and shown["error"] == "boom" and shown["attempts"] == 3


def test_flower_refuses_to_serve_beyond_loopback_without_auth(tmp_path, redis_url):
    done = ckm("flower", "--address", "0.0.0.0", "--port", str(free_port()), "--broker",
               redis_url, cwd=tmp_path)
    assert done.returncode == 2
    assert "without auth" in done.stderr and "no default" in done.stderr


def test_piped_output_keeps_whole_keys_and_json_stays_parseable(tmp_path, redis_url, context):
    key = "port/a-namespace-with-a-rather-long-name/web-frontend-7d9c8b6f5d-x2x9q-with-more"
    context.failures.record(key, error="ContrailError: " + "x" * 150, traceback="",
                            attempts=8, permanent=False)
    done = ckm("failed", "list", "--broker", redis_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert key in done.stdout and "x" * 150 in done.stdout  # not truncated, not wrapped
    done = ckm("wait", "--json", "--timeout", "5", "--broker", redis_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["failed"] == 1 and json.loads(done.stdout)["pending"] == 0


def test_wait_on_a_terminal_shows_keys_left_rate_and_eta(tmp_path, redis_url, context):
    """Under a pseudo-terminal a progress bar is drawn (on stderr); nothing runs the queued
    key here, so the wait times out with exit 1."""
    import pty

    context.queue.enqueue(["port/shop/web-1", "port/shop/web-2"])
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CKM_")}
    pid, fd = pty.fork()
    if pid == 0:  # the child: ckm on the terminal
        os.chdir(tmp_path)
        os.execve(sys.executable, [sys.executable, "-m", "ckm", "wait", "--timeout", "3",
                                   "--broker", redis_url], {**environ, "COLUMNS": "120"})
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 1, text
    assert "keys left" in text and "0/2" in text and "keys/s" in text and "ETA" in text
    assert "still pending after 3s: 2" in text


def test_status_rates_count_the_last_minute_across_pages(context):
    import time

    from ckm.status_cli import RATE_PAGE, rates
    from workers.engine import RUNS

    now = time.time()
    old = [json.dumps({"key": "k", "outcome": "done", "end": now - 120})] * 10
    recent = [json.dumps({"key": "k", "outcome": "done" if i % 4 else "error", "end": now - 1})
              for i in range(RATE_PAGE * 2 + 7)]
    context.redis.rpush(RUNS, *recent, *old)  # newest first, as the engine logs them
    counted = rates(context)
    assert (counted["runs"], counted["errors"]) == (len(recent), (len(recent) + 3) // 4)
    assert counted["done"] == len(recent) - counted["errors"] and not counted["at_least"]
