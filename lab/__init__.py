"""The failsafe lab: real servers on loopback, grouped as two regions (see docs/lab.md)."""

from lab.core import Component, Lab, LabConfig, LabError, Registry
from lab.topology import REGISTRY, make_lab

__all__ = ["Component", "Lab", "LabConfig", "LabError", "REGISTRY", "Registry", "make_lab"]
