"""Python client SDK for livecore."""
