"""User-facing errors: the CLI prints their message as one line and exits with status 2."""


class GanforgeError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""


class ConfigError(GanforgeError):
    """A bad configuration key or value."""


class DataError(GanforgeError):
    """Data that cannot be read or used."""
