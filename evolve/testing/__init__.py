"""Test doubles that speak real wire protocols, for tests, benchmarks and demos without a network.

Import from :mod:`evolve.testing.wire_server` (kept out of this package's namespace so that
``python -m evolve.testing.wire_server`` runs it cleanly).
"""
