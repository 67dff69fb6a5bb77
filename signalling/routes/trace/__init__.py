"""The traceability routes, added to the app's table in one line."""

from __future__ import annotations

from starlette.routing import Route

from signalling.routes.trace import batches, page, readings


def routes() -> list[Route]:
    return [
        Route("/api/trace/key", batches.get_key, methods=["GET"]),
        Route("/api/batches", batches.register, methods=["POST"]),
        Route("/api/batches/{batch}", batches.get_batch, methods=["GET"]),
        Route("/api/batches/{batch}/chain", batches.get_chain, methods=["GET"]),
        Route("/api/batches/{batch}/events", batches.append, methods=["POST"]),
        Route("/api/batches/{batch}/reports", batches.upload_report, methods=["POST"]),
        Route("/api/batches/{batch}/reports/{sha256}", batches.get_report, methods=["GET"]),
        Route("/api/batches/{batch}/device-token", readings.device_token, methods=["POST"]),
        Route("/api/batches/{batch}/readings", readings.post_readings, methods=["POST"]),
        Route("/api/batches/{batch}/series", readings.get_series, methods=["GET"]),
        Route("/t/{batch}", page.trace_page, methods=["GET"]),
        Route("/t/{batch}/label", page.label_page, methods=["GET"]),
    ]
