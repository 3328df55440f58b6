"""The HTTP side of `python -m mmin_tf.serving`: KServe's REST server on one address, with a
request body limit.

Neither KServe nor FastAPI, Starlette or uvicorn bound the size of a request body (uvicorn limits
only the headers), so `BodySizeLimit`, a plain ASGI middleware, does: a request announcing a
larger `Content-Length` is answered 413 before its body is read; a chunked one (no
`Content-Length`) is read up to the limit and answered 413 as soon as it passes it.
"""

from __future__ import annotations

import json


class BodySizeLimit:
    """ASGI middleware answering HTTP 413 `{"error": ...}` to request bodies over `max_bytes`."""

    def __init__(self, app, max_bytes: int):
        if max_bytes < 1:
            raise ValueError(f"`max_bytes` must be >= 1. Received: max_bytes={max_bytes}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():  # uvicorn refuses these before they get here
                await _answer(send, 400, "Content-Length is not a number of bytes")
                return
            if int(declared) > self.max_bytes:
                await self._refuse(send, f"The request body of {int(declared)} bytes")
                return
            await self.app(scope, receive, send)
            return
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            total += len(chunks[-1])
            if total > self.max_bytes:
                await self._refuse(send, f"The request body (chunked, over {total} bytes so far)")
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send, what: str) -> None:
        await _answer(send, 413, f"{what} exceeds the limit of {self.max_bytes} bytes (--max_request_bytes)")


async def _answer(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def rest_server(predictor, host: str, port: int, max_request_bytes: int):
    """KServe's REST server for `predictor` on `host:port` (no gRPC), bodies limited to
    `max_request_bytes`. Import only after absl has parsed the flags: KServe parses `sys.argv`
    when imported. Call `.run()` on the result."""
    import kserve
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.model_server import app
    from kserve.protocol.rest.server import RESTServer

    server = kserve.ModelServer(http_port=port, enable_grpc=False, workers=1)
    server.register_model(predictor)
    app.add_middleware(BodySizeLimit, max_bytes=max_request_bytes)
    rest = RESTServer(FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, port, workers=1)
    rest.config.host = host  # KServe hard-codes 0.0.0.0
    return rest
