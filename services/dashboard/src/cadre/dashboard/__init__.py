"""The dashboard: the web page organisation departments and leaders use.

It serves a single page (every script, style and chart library bundled, nothing fetched
from elsewhere) and a thin backend-for-frontend that logs in through the directory, keeps
the token in an HttpOnly session cookie and reads the public APIs of scoring, notify,
directory, attendance and journal with it, so every answer respects the token's scope."""
