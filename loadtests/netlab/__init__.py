"""A lab of network namespaces for tests and benchmarks (docs/netlab.md).

plan.py: addresses and names (pure); system.py: commands, processes,
namespaces; boxes.py: the routers' rules; lab.py: building and tearing down;
node.py: a livecore node and a Valkey inside the lab; publisher.py, crowd.py and
chromium.py: a WHIP clip publisher, lean WHEP viewers and Chromium in a phone;
bench.py, scenarios.py, outages.py: ``python -m loadtests netlab``.
"""

from loadtests.netlab.boxes import Router
from loadtests.netlab.lab import Host, Lab, PhoneSpec
from loadtests.netlab.system import LabUnavailable, unavailable

__all__ = ["Host", "Lab", "LabUnavailable", "PhoneSpec", "Router", "unavailable"]
