"""What every part of a node shares: its context (settings, secret, clock, store,
metrics), the HTTP boundary (JSON errors, bounded bodies, Bearer tokens, write
limits), kept background tasks and per-key locks. Imports no route, service or hub.
"""
