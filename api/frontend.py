"""The built browser chart at ``/``, or a page saying how to build it.

The chart's files carry a Content-Security-Policy that allows only the page's own origin (its
scripts, styles, the API and the WebSocket) and no framing.
"""

from __future__ import annotations

from pathlib import Path

from litestar import MediaType, Response, Router, get, head
from litestar.handlers import HTTPRouteHandler
from litestar.response import File
from litestar.static_files import create_static_files_router

BUILD_COMMAND = "cd frontend && npm ci && npm run build"
PAGE_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",  # the icon is a data: URL
        "style-src 'self' 'unsafe-inline'",  # the chart library sets style attributes
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

NOT_BUILT = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cryptochart</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 4em auto">
<h1>cryptochart</h1>
<p>The frontend is not built. Build it with</p>
<pre>{BUILD_COMMAND}</pre>
<p>(or <code>make run</code>) and reload. The API is up: see <a href="/schema">/schema</a>.</p>
</body></html>
"""


@get("/", media_type=MediaType.HTML, include_in_schema=False, name="frontend-missing")
async def frontend_missing() -> str:
    return NOT_BUILT


def frontend_router(dist: Path) -> Router:
    """``dist`` served at ``/`` (index.html for ``/``), if it has been built."""
    if not (dist / "index.html").is_file():
        return Router(path="/", route_handlers=[frontend_missing])
    router = create_static_files_router(
        path="/",
        directories=[dist],
        html_mode=True,
        name="frontend",
        include_in_schema=False,
        after_request=_with_page_policy,
    )
    router.register(_index_head(dist / "index.html"))  # the static router answers GET / only
    return router


def _index_head(index: Path) -> HTTPRouteHandler:
    """``HEAD /``: the page's headers without its body (uptime checks, ``curl -I``)."""

    @head("/", name="frontend/index-head", include_in_schema=False)
    async def index_head() -> File:
        return File(index, filename=index.name, media_type=MediaType.HTML)

    return index_head


async def _with_page_policy(response: Response[object]) -> Response[object]:
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response
