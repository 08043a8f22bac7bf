"""The protectnet.epns network-namespace lab (stdlib only)."""
from .core import Lab
from .proc import LabError
from .topology import STATE_DIR

__all__ = ["STATE_DIR", "Lab", "LabError"]
