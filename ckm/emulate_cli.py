"""`ckm emulate contrail|kube`: the bundled emulators, for tests, demos and benchmarks.

The emulators' CLI modules import only typer at the top; the servers load when a command runs.
"""

from __future__ import annotations

import typer

from ckm.cli import app
from emulators.contrail.cli import run as contrail
from emulators.kube.cli import run as kube

emulate_app = typer.Typer(no_args_is_help=True,
                          help="Run the Kubernetes or Contrail API emulator (tests, demos).")
app.add_typer(emulate_app, name="emulate")
emulate_app.command("contrail")(contrail)
emulate_app.command("kube")(kube)
