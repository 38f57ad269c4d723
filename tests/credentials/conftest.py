"""Fixtures of the credential tests: the generated certificate set."""

from __future__ import annotations

import pytest

from .certs import CertSet, generate_cert_set


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    """Generate the certificate set once per test session."""
    return generate_cert_set(tmp_path_factory.mktemp("certs"))
