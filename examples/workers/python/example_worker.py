#!/usr/bin/env python3
"""An example remote worker: runs the declared job type ``research`` step by step, reporting progress.

Input (declare the type first, see README.md)::

    {"topic": "fencing tokens", "steps": ["search", "read", "summarize"], "step_ms": 500}

``steps`` (optional) is a list of step names or a number of steps (default: search, read, summarize);
``step_ms`` (optional, default 500) is how long each step takes. A blank topic fails the job at once
(PermanentError, not retried).

Configuration (environment):

    JOBS_URL          the service (default http://127.0.0.1:3000)
    WORKER_KEY        a key of the service's WORKER_KEYS (unset: an open service)
    WORKER_NAME       shown to operators (default research-py@<host>)
    WORKER_SLOTS      jobs at once (default 2)
    WORKER_HEARTBEAT_S  heartbeat more often than the service asks (optional)
    WORKER_WAIT_S     longest long-poll of a claim (optional; default the service's max_wait_s)
    WORKER_GRACE_S    on SIGTERM, how long running jobs may finish before they are released (default 25)

Run: ``python3 examples/workers/python/example_worker.py``; stop it with Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any, Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from jobworker import JobContext, PermanentError, Worker, env_float, env_int  # noqa: E402

DEFAULT_STEPS = ["search", "read", "summarize"]

WORKER_NAME = os.environ.get("WORKER_NAME") or f"research-py@{socket.gethostname()}"


def research(job: Dict[str, Any], ctx: JobContext) -> Dict[str, Any]:
    data = job.get("input") or {}
    topic = data.get("topic") if isinstance(data, dict) else None
    if not isinstance(topic, str) or not topic.strip():
        raise PermanentError("input.topic must be a non-empty string", code="bad-input")
    steps = data.get("steps", DEFAULT_STEPS)
    if isinstance(steps, int) and not isinstance(steps, bool):
        steps = [f"step-{i + 1}" for i in range(max(1, steps))]
    if not isinstance(steps, list) or not steps or not all(isinstance(step, str) for step in steps):
        raise PermanentError("input.steps must be a number or a list of step names", code="bad-input")
    step_s = float(data.get("step_ms", 500)) / 1000.0

    notes: List[str] = []
    for i, step in enumerate(steps):
        ctx.progress(100 * i / len(steps), step=step, message=f"{step}: {topic}")
        ctx.log("info", f"step {i + 1}/{len(steps)}: {step}")
        if ctx.sleep(step_s):  # woken early: canceled, or the lease was lost
            ctx.log("warn", f"stopped during step {step!r}: cancel requested")
            ctx.check_cancelled()  # raises Cancelled: the worker releases the job
        notes.append(f"{step}: done")
    ctx.progress(100, step="done", message=f"researched {topic}")
    return {
        "topic": topic,
        "summary": f"{len(steps)} step(s) on {topic!r}",
        "steps": steps,
        "notes": notes,
        "attempt": ctx.attempt,
        "worker": WORKER_NAME,
        "pid": os.getpid(),
    }


def main() -> None:
    worker = Worker(
        base_url=os.environ.get("JOBS_URL", "http://127.0.0.1:3000"),
        worker_key=os.environ.get("WORKER_KEY") or None,
        name=WORKER_NAME,
        types=["research"],
        slots=env_int("WORKER_SLOTS", 2),
        handlers={"research": research},
        heartbeat_s=env_float("WORKER_HEARTBEAT_S", None),
        wait_s=env_int("WORKER_WAIT_S", 0) if os.environ.get("WORKER_WAIT_S", "").strip() else None,
        grace_s=env_float("WORKER_GRACE_S", 25.0) or 0.0,
    )
    worker.run()


if __name__ == "__main__":
    main()
