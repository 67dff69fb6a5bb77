"""Python client SDK for livecore: ``from clients.python.room import RoomClient``."""
