"""The portal's tests drive a real Chromium against the app served on loopback."""

from tests.fixtures.browser import browser, portal

__all__ = ["browser", "portal"]
