"""The HTTP/1.1 client under the ``httpx.AsyncClient`` an app builds for itself.

``streams`` opens byte streams (asyncio's own transports on asyncio, anyio's elsewhere);
``codec`` writes HTTP/1.1 requests and parses responses (pure, no I/O); ``connection`` speaks
it over one stream; ``pool`` keeps a few connections per origin and is an
``httpx.AsyncBaseTransport``; ``config`` turns ``verify``, ``proxies`` and ``timeout``
into an ``httpx.AsyncClient`` over the pool; ``loops`` keeps one value per event loop and closes
it when that loop shuts down; ``client`` is how the transport builds and sends requests, with
the caller's client or its own, and ``reply`` what it reads of an answer (status, headers, the
body under the 4 MiB cap), from an ``httpx.Response`` or straight from the pool. Why this and
not httpcore: see docs/transport.md.
"""
