"""Store adapters: the Redis/Valkey repositories (Lua scripts, streams, pub/sub).

The embedded Valkey process lives with the composition root (:mod:`livecore.cli.embedded`).
"""
