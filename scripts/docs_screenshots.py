"""Regenerate the screenshots of the emulator's pages in docs/images/ with headless Chromium.

    python scripts/docs_screenshots.py

Needs Debian's chromium and chromium-driver and selenium (the test extra). The test suite never
runs this: the PNGs are committed, and regenerated when the pages change.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.browser, shared with the browser tests

from selenium.webdriver.common.by import By

from msal_async.testing import (
    DEMO_TENANT_ID,
    AuthorityEmulator,
    generate_tls_files,
    serve_in_thread,
)
from tests.browser import launch_chromium

OUT = ROOT / "docs" / "images"
CLIENT_ID = "5c7a1e4e-1b5c-4a8e-9d11-2f3c4b5a6d7e"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    emulator = AuthorityEmulator()
    emulator.register_client(CLIENT_ID)
    emulator.add_user("alice@contoso.onmicrosoft.com", password="wonderland", sign_in=False)
    emulator.add_user("bob@contoso.onmicrosoft.com", password="builder", sign_in=False)
    emulator.user_tokens.require_consent = True
    with tempfile.TemporaryDirectory() as folder:
        tls = generate_tls_files(Path(folder) / "tls")
        driver = launch_chromium(Path(folder) / "profile", trust_certfile=tls.certfile)
        try:
            with serve_in_thread(emulator, tls=tls) as base_url:
                query = {
                    "client_id": CLIENT_ID,
                    "response_type": "code",
                    "redirect_uri": "http://localhost:8400/",
                    "scope": "User.Read Calendars.Read openid profile offline_access",
                    "state": "screenshot",
                }
                driver.get(f"{base_url}/{DEMO_TENANT_ID}/oauth2/v2.0/authorize?{urlencode(query)}")
                driver.find_element(By.ID, "f-login").send_keys("alice@contoso.onmicrosoft.com")
                driver.find_element(By.TAG_NAME, "summary").click()  # show the test users
                driver.save_screenshot(str(OUT / "emulator-sign-in.png"))
                driver.find_element(By.ID, "f-passwd").send_keys("wonderland")
                driver.find_element(By.CSS_SELECTOR, "button[value=signin]").click()
                driver.find_element(By.CSS_SELECTOR, "button[value=accept]")  # the consent page
                driver.save_screenshot(str(OUT / "emulator-consent.png"))
                driver.get(f"{base_url}/devicelogin")
                driver.save_screenshot(str(OUT / "emulator-device-code.png"))
        finally:
            driver.quit()
    for name in ("emulator-sign-in", "emulator-consent", "emulator-device-code"):
        print(OUT / f"{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
