"""A lab of network namespaces for tests and benchmarks (see lab.py, plan.py, node.py)."""

from loadtests.netlab.lab import Host, Lab, LabUnavailable, PhoneSpec, Router, unavailable

__all__ = ["Host", "Lab", "LabUnavailable", "PhoneSpec", "Router", "unavailable"]
