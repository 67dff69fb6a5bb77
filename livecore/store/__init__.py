"""Store adapters: the embedded Valkey process and the Redis/Valkey repositories."""
