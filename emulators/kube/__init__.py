"""The kube emulator: a kube-apiserver stand-in for the `kubernetes` client and kubectl, plus
an optional simulated node layer (see emulators/__init__.py for the rules every emulator
follows, and README.md here for what is and is not emulated).

Entry points: `emulators.kube.app.create_app(**options)` and `emulators.kube.cli.run`.
"""
