"""Configuration: one typed settings model and the layered loader that fills it.

Owns: `Settings` (every knob ckm has, with the contract's defaults), the precedence
defaults < upstream INI < config file < CKM_* environment < command-line flags, provenance
of every value, and the Celery options derived from settings.
Must not import: any other ckm package (it is the leaf everyone else imports).
"""
