"""`python -m emulators.kube --port 6443`: the kube emulator without the ckm command line."""

import typer

from emulators.kube.cli import run

typer.run(run)
