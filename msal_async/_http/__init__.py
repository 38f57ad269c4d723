"""The HTTP/1.1 client under the ``httpx.AsyncClient`` an app builds for itself.

``connection`` speaks HTTP/1.1 (h11) over one anyio byte stream; ``pool`` keeps a few
connections per origin and is an ``httpx.AsyncBaseTransport``; ``config`` turns ``verify``,
``proxies`` and ``timeout`` into a client; ``loops`` keeps one value per event loop and closes
it when that loop shuts down. Why this and not httpcore: see docs/transport.md.
"""
