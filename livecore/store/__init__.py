"""Store adapters: the Redis/Valkey repositories (Lua scripts, streams, pub/sub).

The embedded Valkey process a node starts without ``--redis`` is supervised by
:mod:`livecore.valkey.embedded`, not here: these adapters take any client.
"""
