"""An anyio worker pool: many workers, many resources, one app (asyncio or trio).

Each job needs a token for one API; the workers share the app, so each token is fetched once
(concurrent workers wanting the same token share one request) and then served from memory.

Run:  python examples/worker_pool.py [--backend trio] [--workers 20] [--jobs 200]
Configuration: AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_CLIENT_SECRET, API_SCOPES (a
space-separated list, default https://graph.microsoft.com/.default), and
AZURE_AUTHORITY_HOST / MSAL_ASYNC_CA_FILE for a local authority.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter

import anyio
from anyio.abc import ObjectReceiveStream

from msal_async import ConfidentialClientApplication


def msal_app_from_env() -> ConfidentialClientApplication:
    """The app, configured from the environment (no I/O here)."""
    host = os.environ.get("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com")
    return ConfidentialClientApplication(
        os.environ["AZURE_CLIENT_ID"],
        client_credential=os.environ["AZURE_CLIENT_SECRET"],
        authority=f"{host}/{os.environ['AZURE_TENANT_ID']}",
        # another authority host (a national cloud, a local emulator) is trusted as given
        instance_discovery=False if "AZURE_AUTHORITY_HOST" in os.environ else None,
        verify=os.environ.get("MSAL_ASYNC_CA_FILE") or True,  # a CA bundle for a local authority
    )


async def worker(
    app: ConfidentialClientApplication, jobs: ObjectReceiveStream[str], sources: Counter[str]
) -> None:
    async with jobs:
        async for scope in jobs:
            result = await app.acquire_token_for_client([scope])
            if "access_token" not in result:
                msg = f"{scope}: {result.get('error')}"
                raise RuntimeError(msg)
            sources[result["token_source"]] += 1
            # ... call the API with result["access_token"] ...


async def run(workers: int, jobs: int) -> Counter[str]:
    scopes = os.environ.get("API_SCOPES", "https://graph.microsoft.com/.default").split()
    sources: Counter[str] = Counter()
    send, receive = anyio.create_memory_object_stream[str](max_buffer_size=workers)
    async with msal_app_from_env() as app, anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(worker, app, receive.clone(), sources)
        receive.close()
        async with send:
            for i in range(jobs):
                await send.send(scopes[i % len(scopes)])
    return sources


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args(argv)
    sources = anyio.run(run, args.workers, args.jobs, backend=args.backend)
    print(f"{args.jobs} jobs: {dict(sources)}")


if __name__ == "__main__":
    main()
