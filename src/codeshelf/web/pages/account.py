"""The portal's sign-in, sign-out and invitation pages (shared with the console's)."""

from codeshelf.web.http import PORTAL
from codeshelf.web.pages import signin

router = signin.routes(PORTAL)
