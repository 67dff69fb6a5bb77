"""Local Valkey processes: the embedded server a node starts without ``--redis``
(``embedded``) and a loopback Valkey Cluster for tests and benchmarks (``cluster``).

Process supervisors, not store adapters: the adapters (:mod:`livecore.store`)
take any Redis client and work the same on an operator's Valkey.
"""
