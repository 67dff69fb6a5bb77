"""HTTP and websocket front of livecore: REST, WHIP/WHEP, pages, the fan-out hub.

Folders by job, each importing only those above it in this list:
``node/`` (what every part shares: context, HTTP boundary, metrics),
``services/`` (long-running: media plane, recording, highlights, orders,
room lifecycle), ``hub/`` (the websocket room channel), ``routes/`` (the HTTP
endpoints, ``trace/`` for traceability), then ``app.py`` (the routes table and
lifespan), ``server.py`` (uvicorn) and ``cli/`` (the ``livecore`` command).
"""
