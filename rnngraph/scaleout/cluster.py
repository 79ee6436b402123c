"""What every scale-out entry point needs from Dask: the client, and a clear error without Dask."""

from __future__ import annotations

from typing import Any

from rnngraph.errors import RnnGraphError


def require_dask() -> None:
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        raise RnnGraphError(f"rnngraph.scaleout needs Dask ({exc.name} is not installed); "
                            "install it with `pip install rnngraph[dask]`.") from exc


def client_or_default(client: Any) -> Any:
    """`client`, or the current `distributed.Client`; a clear error when there is none."""
    require_dask()
    if client is not None:
        return client
    import distributed

    try:
        return distributed.default_client()
    except ValueError as exc:
        raise RnnGraphError("no Dask client: start one, e.g. `client = distributed.Client(distributed."
                            "LocalCluster(n_workers=2, threads_per_worker=1))`, or pass `client=`.") from exc


__all__ = ["client_or_default", "require_dask"]
