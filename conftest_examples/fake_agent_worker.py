"""A stand-in for your LiveKit worker (``python agent.py dev``), for trying --cekura-agent-cmd:

    pytest conftest_examples --cekura-emulator \
        --cekura-agent-cmd "python conftest_examples/fake_agent_worker.py"

It prints the line LiveKit Agents logs once registered, then idles until pytest stops it. Like
livekit-agents 1.6 and later, it registers under ``LIVEKIT_AGENT_NAME_OVERRIDE`` when that is
set: pytest-cekura sets it to a name of the session's own, so Cekura's calls reach only this
worker, and refuses a worker that registers under any other name.
"""

from __future__ import annotations

import json
import os
import time

agent_name = os.environ.get("LIVEKIT_AGENT_NAME_OVERRIDE", "pharmacy-agent")
print("starting worker", flush=True)
time.sleep(0.2)
registered = {"message": "registered worker", "id": "AW_example", "agent_name": agent_name}
print(json.dumps(registered), flush=True)
try:
    while True:
        time.sleep(0.1)
except KeyboardInterrupt:
    print("worker shutting down", flush=True)
