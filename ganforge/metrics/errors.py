"""Errors of the evaluation layer; the CLI prints them as one line (see ganforge.errors)."""
from ..errors import GanforgeError


class MetricError(GanforgeError, ValueError):
    """Inputs a metric cannot be computed on (wrong shapes, too few samples)."""


class WeightsError(GanforgeError):
    """Feature-network weights that are missing, damaged or of the wrong network."""
