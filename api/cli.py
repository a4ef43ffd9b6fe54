"""``cryptochart serve``: the API and the frontend under uvicorn."""

from __future__ import annotations

import argparse

from cryptochart.core.settings import Settings


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from cryptochart.api.app import create_app
    from cryptochart.api.config import ApiConfig

    config = ApiConfig.from_env()
    uvicorn.run(
        create_app(settings, config),
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        ws="websockets-sansio",
        ws_ping_interval=config.ws_ping_interval,
        ws_ping_timeout=config.ws_ping_timeout,
        ws_max_size=max(65_536, 16 * config.ws_max_frame_bytes),
        # Frames are ~250 bytes: compressing them costs more CPU and memory than it saves.
        ws_per_message_deflate=False,
        log_level=args.log_level,
        proxy_headers=args.proxy_headers,
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the HTTP/WebSocket API and the chart",
        description="Serve the REST API (/api/v1, OpenAPI at /schema), the live WebSocket (/ws), "
        "/health, /ready, /metrics and the built frontend at /. Reads PostgreSQL as the "
        "read-only cryptochart_api role and follows the klines topic from its end.",
    )
    serve.add_argument(
        "--host", default=None, help="address to listen on (default: CRYPTOCHART_API_HOST)"
    )
    serve.add_argument(
        "--port", type=int, default=None, help="port to listen on (default: CRYPTOCHART_API_PORT)"
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (default: info)",
    )
    serve.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-For from a reverse proxy (rate limits then apply per client)",
    )
    serve.set_defaults(run=_serve)
