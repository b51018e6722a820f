"""Response headers for every HTML page the app serves (docs, run report, telemetry): what a browser may load and
run there, so that text which slips into a page cannot run as script or be framed by another site."""

from __future__ import annotations

# A page of our own markup only: inline styles and pictures, no script of any kind.
STATIC_PAGE_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
                      "form-action 'none'; frame-ancestors 'none'")


def page_headers(policy: str = STATIC_PAGE_POLICY) -> dict[str, str]:
    return {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
