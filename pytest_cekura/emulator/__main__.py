"""Run the Cekura emulator standalone: ``python -m pytest_cekura.emulator --port 8765``.

Prints one line, ``Cekura emulator listening on http://HOST:PORT``, then serves until Ctrl-C
(or SIGTERM) and exits 0. The API key is never printed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

from pytest_cekura.emulator.catalogue import Catalogue, CatalogueError, load_catalogue
from pytest_cekura.emulator.server import Emulator

DEFAULT_PORT = 8765
DEFAULT_KEY = "emulator-key"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_cekura.emulator",
        description=(
            "Serve a local emulator of the Cekura REST API: state in memory, no real calls, "
            "nothing leaves this machine."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port, 0 = any free port (default %(default)s)",
    )
    parser.add_argument(
        "--catalogue",
        metavar="FILE",
        help="TOML catalogue of scenario outcomes, agents and test profiles",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.01,
        metavar="X",
        help="real seconds per emulated second (default %(default)s: a 120 s call lasts 1.2 s)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help=(
            "key clients must send in X-CEKURA-API-KEY "
            f"(default: $CEKURA_EMULATOR_API_KEY, else {DEFAULT_KEY!r}; never your real "
            "$CEKURA_API_KEY)"
        ),
    )
    parser.add_argument(
        "--success-rate-format",
        choices=("percent", "fraction"),
        default="percent",
        help="serve success_rate as 0-100 or 0-1 (default %(default)s)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help=(
            "reject what the live Cekura service rejects: bare scenario ids on object-list "
            "runners (LiveKit/Pipecat v2, websockets), agent_id where the spec says agent, "
            "JSON arrays for run_ids; rerun ignores its body (default: lenient, so the "
            "official cekura CLI works)"
        ),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.time_scale < 0:
        parser.error(f"--time-scale must be >= 0, got {args.time_scale}")
    try:
        catalogue = load_catalogue(args.catalogue) if args.catalogue else Catalogue()
    except CatalogueError as exc:
        parser.error(str(exc))
    # A dedicated variable: a real Cekura key has no business in a local test server.
    api_key = args.api_key or os.environ.get("CEKURA_EMULATOR_API_KEY") or DEFAULT_KEY
    emulator = Emulator(
        catalogue,
        api_key=api_key,
        time_scale=args.time_scale,
        host=args.host,
        port=args.port,
        success_rate_format=args.success_rate_format,
        strict=args.strict,
    )
    try:
        emulator.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"Cekura emulator listening on {emulator.url}", flush=True)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        while True:
            time.sleep(3600)  # the server runs in its own thread; sleep is interruptible
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        emulator.stop()
    return 0


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
