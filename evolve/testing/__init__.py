"""Test doubles that speak real wire protocols, for tests, benchmarks and demos without a network."""

from evolve.testing.wire_server import (
    Drop,
    Fail,
    FailureMix,
    Hang,
    Malformed,
    Reply,
    SeenRequest,
    WireServer,
    serve_in_thread,
)

__all__ = [
    "Drop",
    "Fail",
    "FailureMix",
    "Hang",
    "Malformed",
    "Reply",
    "SeenRequest",
    "WireServer",
    "serve_in_thread",
]
