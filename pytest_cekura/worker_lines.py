"""What an agent worker's output lines say: the default readiness pattern, the agent name in
livekit-agents' ``registered worker`` line, and lines cleaned of terminal escapes."""

from __future__ import annotations

import json
import re

#: What livekit-agents logs once the LiveKit server has accepted the worker. Its JSON format
#: gives ``{"message": "registered worker", "id": "AW_…", …}``, its dev format
#: ``… INFO livekit.agents - registered worker {"id": "AW_…"}``. ``\b`` keeps a future
#: "unregistered worker" from counting as ready.
DEFAULT_READY_PATTERN = r"(?i)\bregistered\s+worker\b"

#: The name livekit-agents puts in its registration line: ``"agent_name": "…"`` in the JSON
#: record, or in the JSON of extras after the message in its dev format
#: (``Worker._handle_register``: ``logger.info("registered worker", extra={"agent_name": …})``).
_REGISTERED_NAME = re.compile(r'"agent_name"\s*:\s*("(?:[^"\\]|\\.)*")')

#: Colour and cursor escapes (dev-mode loggers emit them even into a pipe) would split words
#: and defeat patterns, so lines are matched and kept without them.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def registered_name(line: str) -> str | None:
    """The ``agent_name`` livekit-agents wrote in its ``registered worker`` line (``""`` for
    none), or None when the line carries no such field."""
    match = _REGISTERED_NAME.search(line)
    if match is None:
        return None
    try:
        name = json.loads(match.group(1))
    except ValueError:
        return None
    return name if isinstance(name, str) else None


def clean_line(raw: str) -> str:
    """``raw`` without colour/cursor escapes and line endings, as it is matched and kept."""
    return _ANSI_ESCAPE.sub("", raw).rstrip("\r\n").replace("\r", "")
