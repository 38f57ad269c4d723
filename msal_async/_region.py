"""Azure region for ESTS-R (spec 4): configuration, ``REGION_NAME`` and an IMDS probe.

``azure_region`` semantics, as msal's:

* ``False``: opt out; ``MSAL_FORCE_REGION`` is ignored.
* ``None``: use ``MSAL_FORCE_REGION`` when set (apps with a credential only), else no region;
  the constructor reads and checks it, once, as msal's does.
* ``"westus"``: that region, with **no** probe (msal probes IMDS anyway, in the constructor,
  only to log a mismatch: spec 15.3; we do not).
* ``True``: detect: ``REGION_NAME`` if set, else ask the VM's Instance Metadata Service.

Detection happens on the first ``acquire_token_for_client`` that needs it, never in a
constructor, once per process: concurrent callers share one probe, and its outcome (a
region or None) is memoised. The probe has a short timeout (2 s), because off Azure the
link-local address may not answer at all.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping

import anyio

from . import _json, _log
from ._errors import MsalTransportError
from ._singleflight import SingleFlight
from ._transport import Transport

__all__ = [
    "IMDS_REGION_URL",
    "IMDS_TIMEOUT",
    "RegionDetector",
    "check_region_name",
    "configured_region",
    "region_detector",
    "valid_region",
]

logger = logging.getLogger(_log.REGION)

#: The compute-metadata endpoint whose ``location`` is the VM's region.
IMDS_REGION_URL = "http://169.254.169.254/metadata/instance/compute"
_IMDS_PARAMS = {"api-version": "2021-02-01"}
#: Seconds to wait for IMDS before concluding we are not on an Azure VM.
IMDS_TIMEOUT = 2.0
#: msal's rule (``region._VALID_REGION_RE``): a lowercase DNS label that starts with a letter.
_VALID_REGION = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DETECT = True  # msal's ClientApplication.ATTEMPT_REGION_DISCOVERY


def check_region_name(value: str, *, name: str) -> str:
    """Return ``value`` if it is a valid Azure region name, else raise msal's ValueError.

    Args:
        value: a region name such as ``"westus"``.
        name: where it came from (``azure_region`` or ``MSAL_FORCE_REGION``), for the message.

    Returns:
        ``value``.

    Raises:
        ValueError: ``value`` is not a lowercase DNS label (msal's message, word for word).
    """
    if _VALID_REGION.fullmatch(value):
        return value
    msg = (
        f"Invalid {name}={value!r}. It must be a lowercase DNS label that starts with a "
        "letter, contains only letters, digits, and internal hyphens, and is at most 63 "
        "characters."
    )
    raise ValueError(msg)


def valid_region(value: object, *, source: str) -> str | None:
    """Return ``value`` if it looks like an Azure region, else log and return None.

    Args:
        value: a candidate region name.
        source: where it came from, for the log line.

    Returns:
        The region, or None.
    """
    if isinstance(value, str) and _VALID_REGION.fullmatch(value):
        return value
    if value:
        logger.warning("Region from %s was discarded because it is invalid: %r", source, value)
    return None


def configured_region(
    azure_region: str | bool | None,
    *,
    has_credential: bool,
    environ: Mapping[str, str] | None = None,
) -> str | bool | None:
    """Resolve ``azure_region`` against ``MSAL_FORCE_REGION`` without any I/O.

    Apps call it in their constructor, as msal does: an invalid ``MSAL_FORCE_REGION`` is
    reported there, and the environment is read once per app.

    Args:
        azure_region: the app's ``azure_region`` (already validated).
        has_credential: the app has a client credential (``MSAL_FORCE_REGION`` needs one).
        environ: the environment; ``os.environ`` when None.

    Returns:
        A region name, True (detect), or None (no region).

    Raises:
        ValueError: ``MSAL_FORCE_REGION`` is set to an invalid region name.
    """
    if azure_region is False:
        return None
    if azure_region is None:
        env = os.environ if environ is None else environ
        forced = env.get("MSAL_FORCE_REGION") if has_credential else None
        if forced is None:
            return None
        return check_region_name(forced, name="MSAL_FORCE_REGION")
    return azure_region


class RegionDetector:
    """Detect the region once and share the answer (one probe for concurrent callers).

    Args:
        timeout: seconds to wait for IMDS.
    """

    def __init__(self, *, timeout: float = IMDS_TIMEOUT) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._detected: dict[str, str | None] = {}
        self.probes = 0  # IMDS requests sent, for tests and diagnostics

    def forget(self) -> None:
        """Drop the memoised answer (the next detection probes again)."""
        with self._lock:
            self._detected.clear()
            self.probes = 0

    async def region(
        self,
        configured: str | bool | None,
        transport: Transport,
        *,
        flights: SingleFlight,
        environ: Mapping[str, str] | None = None,
    ) -> str | None:
        """The region ``acquire_token_for_client`` should use, detecting it when asked to.

        Args:
            configured: the app's region configuration, as :func:`configured_region`
                resolved it: a region name, True (detect) or None (central endpoint).
            transport: the app's transport, for the IMDS probe.
            flights: the app's single-flight registry (concurrent callers share one probe).
            environ: the environment (for ``REGION_NAME``); ``os.environ`` when None.

        Returns:
            A region name, or None for the central endpoint.
        """
        if configured is not _DETECT:
            return configured if isinstance(configured, str) else None
        env = os.environ if environ is None else environ
        from_env = env.get("REGION_NAME", "")
        if from_env:
            return valid_region(from_env, source="REGION_NAME env variable")
        with self._lock:
            if "imds" in self._detected:
                return self._detected["imds"]
        return await flights.run(("region", "imds"), lambda: self._probe_once(transport))

    async def _probe_once(self, transport: Transport) -> str | None:
        with self._lock:
            if "imds" in self._detected:
                return self._detected["imds"]
            self.probes += 1
        found = await self._probe(transport)
        with self._lock:
            self._detected["imds"] = found
        return found

    async def _probe(self, transport: Transport) -> str | None:
        logger.info("Asking IMDS %s for the region (timeout %s s)", IMDS_REGION_URL, self.timeout)
        response = None
        with anyio.move_on_after(self.timeout):
            try:
                response = await transport.get(
                    IMDS_REGION_URL, params=_IMDS_PARAMS, headers={"Metadata": "true"}, cache=False
                )
            except MsalTransportError:
                logger.info("IMDS unavailable; perhaps not running on an Azure VM")
                return None
        if response is None:
            logger.info("IMDS did not answer within %s s; no region", self.timeout)
            return None
        if response.status_code != 200:
            return None
        try:
            payload = _json.loads(response.text)
        except _json.JSONInputError:
            return None
        location = payload.get("location") if isinstance(payload, dict) else None
        return valid_region(location, source="IMDS endpoint")


#: The process-wide detector every app shares.
region_detector = RegionDetector()
