"""livecore: domain rules, wire format and store adapters of the livecore server.

The pure modules here (tokens, errors, rooms, config) import no server, no
redis client and no aiortc; the adapters live in :mod:`livecore.store`.
"""

__version__ = "0.1.0"
