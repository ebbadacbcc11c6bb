"""`python -m emulators.contrail --port 8082 [--state FILE] ...` (same options as the CLI)."""

from emulators.contrail.cli import main

main()
