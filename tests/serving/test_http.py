"""`BodySizeLimit`, the request body limit, as an ASGI middleware on its own."""

import asyncio
import json

import pytest

from mmin_tf.serving.http import BodySizeLimit


def _call(middleware, headers, chunks):
    """Runs one HTTP request through `middleware`; returns (status, body, what the app received)."""
    received, sent = [], []
    messages = [{"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
                for index, chunk in enumerate(chunks)]

    async def app(scope, receive, send):
        message = await receive()
        received.append(message["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    middleware.app = app
    asyncio.run(middleware({"type": "http", "headers": headers}, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), received


def test_declared_sizes_over_the_limit_get_413_unread():
    status, body, received = _call(BodySizeLimit(None, 10), [(b"content-length", b"11")], [b"x" * 11])
    assert status == 413 and received == []
    assert json.loads(body) == {
        "error": "The request body of 11 bytes exceeds the limit of 10 bytes (--max_request_bytes)"}
    assert _call(BodySizeLimit(None, 10), [(b"content-length", b"10")], [b"x" * 10])[:2] == (200, b"ok")


def test_chunked_bodies_are_counted_and_replayed_whole():
    status, body, received = _call(BodySizeLimit(None, 10), [], [b"x" * 6, b"x" * 6])
    assert status == 413 and b"chunked, over 12 bytes" in body and received == []
    status, _, received = _call(BodySizeLimit(None, 10), [], [b"abc", b"def", b""])
    assert status == 200 and received == [b"abcdef"]


def test_a_content_length_that_is_no_number_gets_400():
    status, body, _ = _call(BodySizeLimit(None, 10), [(b"content-length", b"12a")], [b""])
    assert status == 400 and b"Content-Length is not a number" in body


def test_the_limit_must_be_positive():
    with pytest.raises(ValueError, match=r"`max_bytes` must be >= 1. Received: max_bytes=0"):
        BodySizeLimit(None, 0)
