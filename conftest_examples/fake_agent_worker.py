"""A stand-in for your LiveKit worker (``python agent.py dev``), for trying --cekura-agent-cmd:

    pytest conftest_examples --cekura-emulator \
        --cekura-agent-cmd "python conftest_examples/fake_agent_worker.py"

It prints the line LiveKit Agents logs once registered, then idles until pytest stops it.
"""

from __future__ import annotations

import json
import time

print("starting worker", flush=True)
time.sleep(0.2)
print(json.dumps({"message": "registered worker", "id": "AW_example"}), flush=True)
try:
    while True:
        time.sleep(0.1)
except KeyboardInterrupt:
    print("worker shutting down", flush=True)
