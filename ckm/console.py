"""The consoles every command prints through.

On a terminal rich lays out for its width. In a pipe or a file nothing is cut: lines are not
wrapped and table cells (keys, fq_names) are not truncated, so output stays greppable.
"""

from __future__ import annotations

import sys

from rich.console import Console

PIPE_WIDTH = 400  # wide enough for any key; tables only take the width they need


def console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    # force_terminal=False: FORCE_COLOR and the like must not put escapes into a pipe
    return Console(stderr=stderr, width=PIPE_WIDTH, soft_wrap=True, force_terminal=False)
