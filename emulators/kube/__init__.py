"""The kube emulator (see emulators/__init__.py for the rules every emulator follows)."""
