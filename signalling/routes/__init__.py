"""The HTTP endpoints, one module per resource: rooms, communities, revocations,
guests, WHIP/WHEP, recorded media and clips, group progress, receipts and dead
letters, room sensors, the dashboards, the pages, and traceability (``trace/``).

Each takes a request, checks it at the boundary (:mod:`signalling.node.http_boundary`)
and calls one store or service; the table that mounts them is :mod:`signalling.app`.
"""
