"""Which ckm system a command talks to, found the way kubectl finds its context.

In order: the state dir named by `--state-dir` / `CKM_STATE_DIR`; the one `ckm up` last
recorded as current (`$XDG_CONFIG_HOME/ckm/current`, default `~/.config/ckm/current`); `.ckm`
here. Only a stack whose `ckm up` is still running counts. Its URLs are the lowest layer of
the settings: a config file, `CKM_*` variables and flags all beat them.

A command that reads or writes Redis refuses to run on the built-in default broker URL (a Redis
it merely fell back to may be somebody else's) and gives up on an unreachable one at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ckm.stack import StackInfo, running_stack

STATE_DIR_ENV = "CKM_STATE_DIR"
CONNECT_SECONDS = 2.0


def current_file() -> Path:
    home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(home) / "ckm" / "current"


def set_current(state_dir: Path) -> None:
    """Record the stack `ckm up` runs in `state_dir` as the current one."""
    path = current_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(state_dir.resolve()) + "\n")


def clear_current(state_dir: Path) -> None:
    """Forget the current stack if it is still this one (another `ckm up` may have taken
    over)."""
    path = current_file()
    try:
        if Path(path.read_text().strip()) == state_dir.resolve():
            path.unlink()
    except OSError:
        pass


@dataclass(frozen=True)
class Found:
    stack: StackInfo | None
    state_dir: Path | None
    how: str  # how it was chosen, for messages


def find(explicit: str | None = None) -> Found:
    named = explicit or os.environ.get(STATE_DIR_ENV)
    if named:
        how = "--state-dir" if explicit else STATE_DIR_ENV
        return Found(running_stack(Path(named)), Path(named), how)
    try:
        current = Path(current_file().read_text().strip())
    except OSError:
        current = None
    if current is not None:
        stack = running_stack(current)
        if stack is not None:
            return Found(stack, current, f"current context, from {current_file()}")
    local = Path(".ckm")
    stack = running_stack(local)
    return Found(stack, local if stack else None, "./.ckm")
