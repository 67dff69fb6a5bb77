"""A lab of network namespaces for tests and benchmarks (docs/netlab.md).

plan.py: addresses and names (pure); system.py: commands, processes,
namespaces; boxes.py: the routers' rules; lab.py: building and tearing down;
node.py: a livecore node and a Valkey inside the lab.
"""

from loadtests.netlab.boxes import Router
from loadtests.netlab.lab import Host, Lab, PhoneSpec
from loadtests.netlab.system import LabUnavailable, unavailable

__all__ = ["Host", "Lab", "LabUnavailable", "PhoneSpec", "Router", "unavailable"]
