"""The failsafe lab: real servers on loopback, grouped as two regions (see docs/lab.md)."""

from lab.core import Lab, LabConfig, LabError

__all__ = ["Lab", "LabConfig", "LabError"]
