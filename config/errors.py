"""The one error configuration raises: its message names the key, the value's source and the fix."""


class ConfigError(Exception):
    """Bad configuration; the program must stop at start with this message."""
