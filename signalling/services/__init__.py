"""The long-running parts of a node, started and stopped by the app's lifespan:
the media plane (WHIP/WHEP sessions, cascade pulls), recording (HLS, replay,
highlight clips), the orders forwarder (webhook, at least once) and the room
lifecycle (what ends a room, and when its keys leave).
"""
