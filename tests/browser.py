"""Headless Chromium for the browser tests and the docs' screenshots (Debian's chromium).

``apt-get install chromium chromium-driver`` provides both binaries; selenium drives them through
the given chromedriver, so Selenium Manager never downloads anything.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import webbrowser
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

#: Flags that work in this container and keep Chromium off the network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_binaries() -> tuple[str, str] | None:
    """The paths of chromium and chromedriver, or None when either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        return None
    return browser, driver


def spki_hash(certfile: Path) -> str:
    """base64(sha256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium pins it."""
    cert = x509.load_pem_x509_certificate(certfile.read_bytes())
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def launch_chromium(user_data_dir: Path, *, trust_certfile: Path | None = None) -> Any:
    """Start headless Chromium under selenium with a fresh profile.

    Args:
        user_data_dir: an empty folder for the profile.
        trust_certfile: a server certificate Chromium accepts (pinned by its key) although
            its throwaway CA is not in the system store.

    Returns:
        A ``selenium.webdriver.Chrome``; call ``quit()`` when done.

    Raises:
        RuntimeError: chromium or chromedriver is not installed.
    """
    from selenium import webdriver

    binaries = chromium_binaries()
    if binaries is None:
        msg = "chromium and chromedriver are needed: apt-get install chromium chromium-driver"
        raise RuntimeError(msg)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look online
    options = webdriver.ChromeOptions()
    options.binary_location = binaries[0]
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.add_argument("--window-size=800,720")
    if trust_certfile is not None:
        options.add_argument(f"--ignore-certificate-errors-spki-list={spki_hash(trust_certfile)}")
    service = webdriver.ChromeService(executable_path=binaries[1])
    return webdriver.Chrome(options=options, service=service)


class SeleniumBrowser(webbrowser.BaseBrowser):
    """A ``webbrowser`` browser that opens URIs in the Chromium a test drives.

    Register it with ``webbrowser.register(name, None, instance, preferred=True)``: the app
    opens its sign-in URI through ``webbrowser`` as in production. ``driver`` is None between
    tests; ``open`` then answers False (no browser), as on a headless server.
    """

    def __init__(self) -> None:
        super().__init__("msal-async-chromium")
        self.driver: Any = None
        self.on_open: Any = None

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        driver = self.driver
        if driver is None:
            return False
        driver.get(url)  # returns when the page has loaded
        if self.on_open is not None:
            self.on_open(url)
        return True
