"""A stand-in for a LiveKit Agents worker (``python agent.py dev``), for tests/test_worker.py.

It prints startup lines, then the line livekit-agents logs once the server has accepted the
worker, then idles until signalled. Options make it misbehave in the ways a real worker can.
Standard library only: it must start fast and run anywhere the tests run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

WORKER_ID = "AW_stand_in"


def log_line(fmt: str, message: str, **extra: object) -> str:
    """A line laid out as livekit-agents' JSON, dev (text) or coloured dev formatter does it."""
    if fmt == "json":
        record = {"message": message, "level": "INFO", "name": "livekit.agents", **extra}
        record["timestamp"] = "2026-01-01T12:00:00.000000+00:00"
        return json.dumps(record)
    suffix = f" {json.dumps(extra)}" if extra else ""
    if fmt == "colored":
        return (
            f"2026-01-01 12:00:00,000 - \x1b[32mINFO\x1b[0m livekit.agents - {message}"
            f"\x1b[90m{suffix}\x1b[0m"
        )
    return f"2026-01-01 12:00:00,000 - INFO livekit.agents - {message}{suffix}"


def agent_name(args: argparse.Namespace) -> str:
    """The name livekit-agents (1.8, ``AgentServer.rtc_session``) registers under: the
    override variable first, then the name in code, then LIVEKIT_AGENT_NAME, else none."""
    if args.no_name_from_env:
        return str(args.code_name)
    if not args.before_1_6 and os.environ.get("LIVEKIT_AGENT_NAME_OVERRIDE"):
        return os.environ["LIVEKIT_AGENT_NAME_OVERRIDE"]
    return str(args.code_name or os.environ.get("LIVEKIT_AGENT_NAME", ""))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ready-after", type=float, default=0.2, metavar="SECONDS")
    parser.add_argument("--format", choices=["json", "text", "colored"], default="json")
    parser.add_argument(
        "--ready-line",
        help="print this instead of the LiveKit-style line ({name}: the agent name it took)",
    )
    parser.add_argument(
        "--code-name",
        default="",
        metavar="NAME",
        help="the agent name given in code, as WorkerOptions(agent_name=NAME)",
    )
    parser.add_argument(
        "--before-1-6",
        action="store_true",
        help="ignore LIVEKIT_AGENT_NAME_OVERRIDE, as livekit-agents before 1.6 does",
    )
    parser.add_argument(
        "--no-name-from-env",
        action="store_true",
        help="read no agent name from the environment at all (only --code-name)",
    )
    parser.add_argument(
        "--no-name-field",
        action="store_true",
        help="leave agent_name out of the registration line, as very old livekit-agents does",
    )
    parser.add_argument("--never-ready", action="store_true")
    parser.add_argument("--exit-after", type=float, metavar="SECONDS")
    parser.add_argument("--exit-code", type=int, default=1)
    parser.add_argument("--ignore-sigint", action="store_true")
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--print-on-sigint", default="worker shutting down", metavar="TEXT")
    parser.add_argument("--pid-file", type=Path)
    parser.add_argument("--echo-env", action="append", default=[], metavar="NAME")
    parser.add_argument("--echo-cwd", action="store_true")
    parser.add_argument(
        "--child-pid-file",
        type=Path,
        help="start a sleeping child process (like a job process) and write its pid here",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # SIGINT is left to Python's default handler, as most workers do: it raises
    # KeyboardInterrupt only if the process did not start with SIGINT ignored.
    try:
        return run(args)
    except KeyboardInterrupt:
        print(args.print_on_sigint, flush=True)
        return 0


def run(args: argparse.Namespace) -> int:
    if args.ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.pid_file:
        args.pid_file.write_text(str(os.getpid()))

    child: subprocess.Popen[bytes] | None = None
    if args.child_pid_file:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        args.child_pid_file.write_text(str(child.pid))

    print(log_line(args.format, "starting worker", version="stand-in"), flush=True)
    print("stand-in worker: this line goes to stderr", file=sys.stderr, flush=True)
    for name in args.echo_env:
        print(f"{name}={os.environ.get(name, '<unset>')}", flush=True)
    if args.echo_cwd:
        print(f"cwd={Path.cwd()}", flush=True)
    print(log_line(args.format, "see tracing information at http://localhost:8081/debug"))
    sys.stdout.flush()

    started = time.monotonic()
    announced = args.never_ready
    while True:
        elapsed = time.monotonic() - started
        if args.exit_after is not None and elapsed >= args.exit_after:
            print(f"fatal: stand-in worker giving up with code {args.exit_code}", file=sys.stderr)
            sys.stderr.flush()
            return int(args.exit_code)
        if not announced and elapsed >= args.ready_after:
            name = agent_name(args)
            # The extras livekit-agents' Worker._handle_register logs, in its order.
            extra: dict[str, object] = {
                "agent_name": name,
                "deployment": "",
                "id": WORKER_ID,
                "url": "ws://localhost:7880",
                "region": "local",
                "protocol": 16,
            }
            if args.no_name_field:
                del extra["agent_name"]
            if args.ready_line:
                line = args.ready_line.replace("{name}", name)
            else:
                line = log_line(args.format, "registered worker", **extra)
            print(line, flush=True)
            announced = True
        time.sleep(0.02)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
