"""A remote worker for async-job-service, standard library only (Python 3.8+; no pip install).

It speaks the service's pull-worker protocol (README: "Remote workers"):

* registers (``POST /v1/workers``) and learns how often to call (``heartbeat_s``) and its lease (``lease_s``);
* claims jobs with a long-poll (``POST /v1/workers/{id}/leases``, ``Prefer: wait=N``), never more than its free
  slots, and only while the service says ``active`` (on ``drain`` or ``stop`` it claims nothing until a heartbeat
  says ``active`` again);
* runs each job on one of ``slots`` threads, calling ``handlers[job["type"]](job, ctx)``;
* renews every lease it holds in one heartbeat call every ``heartbeat_s`` seconds, with each job's latest
  progress; ``cancel_requested`` sets the job's ``ctx.cancelled``; ``lost`` marks the job lost (its outcome is
  then dropped: every write would answer 409 ``lease-lost``);
* completes (the handler's return value is the result), fails (the handler raised: ``retryable`` unless it
  raised :class:`PermanentError`; the traceback goes along as ``detail``) or releases (the job was canceled,
  the handler raised :class:`Cancelled`, or the worker is stopping);
* stops gracefully on SIGTERM / SIGINT: claims nothing more, lets running jobs finish for up to ``grace_s``
  seconds, releases the rest and deregisters (``DELETE /v1/workers/{id}``). A second signal skips the grace.

Guarantees are the service's: at-least-once. A job may run again after this worker lost its lease (it crashed,
or stalled longer than ``lease_s``), so handlers with side effects should be idempotent per ``job["id"]``.

Usage::

    from jobworker import Worker

    def research(job, ctx):
        ctx.progress(10, step="search")
        ...
        return {"answer": 42}

    Worker("http://127.0.0.1:3000", "my-worker-key", "research-1", types=["research"], slots=4,
           handlers={"research": research}).run()

The worker logs one line per event to stderr, ``key=value`` pairs (``ts=… level=info event=claimed job_id=…``).
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import socket
import sys
import threading
import time
import traceback
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote, urlsplit

__all__ = ["Worker", "JobContext", "PermanentError", "RetryableError", "Cancelled", "ProtocolError", "log_line"]

VERSION = "0.1.0"

# The service keeps at most this many lines per log call, and cuts an error's message and detail.
_LOG_LINES_PER_CALL = 200
_LOG_BUFFER_MAX = 1000
_MESSAGE_MAX = 2000
_DETAIL_MAX = 16_000
_LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")
_CODE_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")


# ----------------------------------------------------------------------------------------------- errors


class PermanentError(Exception):
    """Raise from a handler to fail the job at once, whatever attempts are left (``retryable: false``)."""

    def __init__(self, message: str, code: str = "handler-error"):
        super().__init__(message)
        self.code = code


class RetryableError(Exception):
    """Raise from a handler to fail this attempt with your own ``code``, optionally retrying after ``retry_after_s``."""

    def __init__(self, message: str, code: str = "handler-error", retry_after_s: Optional[float] = None):
        super().__init__(message)
        self.code = code
        self.retry_after_s = retry_after_s


class Cancelled(Exception):
    """Raised by ``ctx.check_cancelled()`` (or by a handler itself): the job is released, not failed."""


class ProtocolError(Exception):
    """The service answered a problem (4xx/5xx); ``code`` is the problem's stable code (``lease-lost`` …)."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


# ----------------------------------------------------------------------------------------------- logging

_log_lock = threading.Lock()


def _fmt(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text == "" or any(ch in text for ch in ' "=\n\t'):
        return json.dumps(text)
    return text


def log_line(level: str, event: str, **fields: Any) -> None:
    """One ``key=value`` line on stderr: ``ts=… level=… event=… key=value …`` (None values left out)."""
    ts = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    parts = [f"ts={ts}", f"level={level}", f"event={event}"]
    parts += [f"{key}={_fmt(value)}" for key, value in fields.items() if value is not None]
    with _log_lock:
        sys.stderr.write(" ".join(parts) + "\n")
        sys.stderr.flush()


# ----------------------------------------------------------------------------------------------- HTTP


class _Connection:
    """One keep-alive connection to the service (http.client), used by one thread at a time."""

    def __init__(self, base_url: str, key: Optional[str]):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be http(s)://host[:port][/prefix], got {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._key = key
        self._conn: Optional[http.client.HTTPConnection] = None
        self._aborted = False

    def _open(self, timeout: float) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=timeout)
        else:
            self._conn.timeout = timeout
            if self._conn.sock is not None:
                self._conn.sock.settimeout(timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def abort(self) -> None:
        """From another thread: ends a request in flight on this connection (its caller sees an OSError)."""
        self._aborted = True
        conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def call(self, method: str, path: str, body: Any = None, headers: Optional[Mapping[str, str]] = None, timeout: float = 30.0) -> Tuple[int, Any]:
        """Sends one request; answers (status, parsed JSON or None); raises ProtocolError for a problem, OSError when unreachable."""
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode("utf-8")
        sent_headers = {"accept": "application/json", "user-agent": f"jobworker.py/{VERSION}"}
        if payload is not None:
            sent_headers["content-type"] = "application/json"
        if self._key:
            sent_headers["authorization"] = f"Bearer {self._key}"
        sent_headers.update(headers or {})
        for attempt in (1, 2):
            reused = self._conn is not None and self._conn.sock is not None
            conn = self._open(timeout)
            try:
                conn.request(method, self._prefix + path, body=payload, headers=sent_headers)
                if self._aborted:  # abort() ran before this request had a socket to shut down
                    raise ConnectionAbortedError("the request was aborted")
                response = conn.getresponse()
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, http.client.CannotSendRequest, http.client.BadStatusLine):
                self.close()
                # A kept-alive connection the server closed meanwhile: once more on a fresh one. Not after an abort.
                if attempt == 2 or not reused or self._aborted:
                    raise
            except BaseException:
                self.close()
                raise
        if response.getheader("connection", "").lower() == "close":
            self.close()
        text = raw.decode("utf-8") if raw else ""
        data = None
        if text and "json" in (response.getheader("content-type") or ""):
            data = json.loads(text)
        if response.status >= 400:
            problem = data if isinstance(data, dict) else {}
            raise ProtocolError(response.status, str(problem.get("code", "http-error")), str(problem.get("detail", text[:500])))
        return response.status, data


# ----------------------------------------------------------------------------------------------- the job's context


class JobContext:
    """What a handler gets besides the job: progress, log lines, cancellation."""

    def __init__(self, worker: "Worker", lease: Mapping[str, Any]):
        job = lease["job"]
        self.job: Dict[str, Any] = dict(job)
        self.job_id: str = job["id"]
        self.type: str = job["type"]
        self.input: Any = job.get("input")
        self.attempt: int = job.get("attempt", 1)
        self.max_attempts: int = job.get("max_attempts", 1)
        self.lease_id: str = lease["lease_id"]
        self.worker_name = worker.name
        #: Set when the job should stop: a client or operator canceled it, the lease was lost, or the worker is
        #: stopping and its grace ran out. Handlers check ``ctx.cancelled.is_set()`` or wait on it (``ctx.sleep``).
        self.cancelled = threading.Event()
        #: Set when the lease was lost (it lapsed, the attempt timed out, the job was deleted): the outcome is dropped.
        self.lost = threading.Event()
        self._lock = threading.Lock()
        self._progress: Optional[Dict[str, Any]] = None
        self._progress_version = 0
        self._progress_sent = 0
        self._logs: List[Dict[str, str]] = []
        self._logs_dropped = 0
        self._cancel_requested = False
        self._abandoned = False  # released by the worker on stop: drop the outcome
        self._settling_since: Optional[float] = None  # its outcome is on its way: the answer, not a heartbeat, decides

    # -- for handlers

    def progress(self, percent: Optional[float], step: Optional[str] = None, message: Optional[str] = None) -> None:
        """Records progress (0..100, or None when unknown); sent with the next heartbeat (only the latest counts)."""
        update: Dict[str, Any] = {"percent": None if percent is None else max(0.0, min(100.0, float(percent)))}
        if step is not None:
            update["step"] = str(step)[:256]
        if message is not None:
            update["message"] = str(message)[:2000]
        with self._lock:
            self._progress = update
            self._progress_version += 1

    def log(self, level: str, message: str) -> None:
        """A log line kept with the attempt (operators see it); sent in batches. Levels: trace … fatal."""
        if level not in _LOG_LEVELS:
            level = "info"
        with self._lock:
            if len(self._logs) >= _LOG_BUFFER_MAX:
                self._logs_dropped += 1
                return
            self._logs.append({"level": level, "message": str(message)})

    def is_cancelled(self) -> bool:
        return self.cancelled.is_set()

    def check_cancelled(self) -> None:
        """Raises Cancelled when the job should stop (the worker then releases it, or drops it when lost)."""
        if self.cancelled.is_set():
            raise Cancelled(f"job {self.job_id} was canceled")

    def sleep(self, seconds: float) -> bool:
        """Sleeps up to ``seconds``, waking early on cancel; answers True when the job should stop."""
        return self.cancelled.wait(max(0.0, seconds))

    # -- for the worker

    def _take_progress(self) -> Tuple[Optional[Dict[str, Any]], int]:
        with self._lock:
            if self._progress_version == self._progress_sent:
                return None, self._progress_version
            return dict(self._progress or {"percent": None}), self._progress_version

    def _progress_delivered(self, version: int) -> None:
        with self._lock:
            self._progress_sent = max(self._progress_sent, version)

    def _take_logs(self) -> List[Dict[str, str]]:
        with self._lock:
            lines, self._logs = self._logs, []
            if self._logs_dropped:
                lines.append({"level": "warn", "message": f"{self._logs_dropped} log line(s) dropped: the buffer was full"})
                self._logs_dropped = 0
            return lines

    def _return_logs(self, lines: List[Dict[str, str]]) -> None:
        with self._lock:
            self._logs = (lines + self._logs)[-_LOG_BUFFER_MAX:]


Handler = Callable[[Dict[str, Any], JobContext], Any]


# ----------------------------------------------------------------------------------------------- the worker


class Worker:
    """A worker process's connection to the service: ``run()`` blocks until it was stopped (SIGTERM, SIGINT, ``stop()``)."""

    def __init__(
        self,
        base_url: str,
        worker_key: Optional[str],
        name: str,
        types: Optional[Sequence[str]] = None,
        slots: int = 1,
        handlers: Optional[Mapping[str, Handler]] = None,
        *,
        labels: Optional[Mapping[str, str]] = None,
        wait_s: Optional[int] = None,
        heartbeat_s: Optional[float] = None,
        grace_s: float = 25.0,
        request_timeout_s: float = 30.0,
    ):
        """
        :param base_url: the service, e.g. ``http://127.0.0.1:3000``.
        :param worker_key: a key of the service's WORKER_KEYS (None when the service has none and is open).
        :param types: declared job types to run (default: the handlers' types).
        :param slots: jobs run at once, one thread each.
        :param handlers: job type → ``fn(job, ctx)``; its return value (JSON) is the result.
        :param wait_s: longest long-poll of a claim (default: the service's ``max_wait_s``).
        :param heartbeat_s: heartbeat more often than the service asks (never less often).
        :param grace_s: on stop, how long running jobs may still finish before they are released.
        """
        self.base_url = base_url.rstrip("/")
        self.worker_key = worker_key or None
        self.name = name
        self.handlers: Dict[str, Handler] = dict(handlers or {})
        self.types = list(types) if types is not None else list(self.handlers)
        if not self.types:
            raise ValueError("a worker needs at least one job type")
        missing = [t for t in self.types if t not in self.handlers]
        if missing:
            raise ValueError(f"no handler for type(s): {', '.join(missing)}")
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.slots = int(slots)
        self.labels = {"lang": "python", "host": socket.gethostname()[:256], "pid": str(os.getpid()), "version": VERSION, **dict(labels or {})}
        self.grace_s = float(grace_s)
        self._wait_s_wanted = wait_s
        self._heartbeat_s_wanted = heartbeat_s
        self._timeout_s = request_timeout_s

        self.worker_id: Optional[str] = None
        self.heartbeat_s = 10.0
        self.lease_s = 30.0
        self.wait_s = 25
        self.max_claim = 100
        self.state = "active"  # the service's word on this worker: active | drain | stop

        self._local = threading.local()
        self._claim_conn: Optional[_Connection] = None
        self._lock = threading.Condition()
        self._register_lock = threading.Lock()
        self._lane = threading.Lock()
        self._held: Dict[str, JobContext] = {}
        self._jobs: "queue.Queue[Optional[JobContext]]" = queue.Queue()
        self._stopping = threading.Event()
        self._force = threading.Event()
        self._beat_now = threading.Event()
        self._beats_done = threading.Event()
        self._finished = threading.Event()
        self._last_renewal = time.monotonic()
        self._signals = 0

    # -- HTTP

    def _conn(self) -> _Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _Connection(self.base_url, self.worker_key)
            self._local.conn = conn
        return conn

    def _call(self, method: str, path: str, body: Any = None, conn: Optional[_Connection] = None, **kwargs: Any) -> Any:
        # The service keeps one record per worker (the leases it holds, hence its free slots) that each call reads
        # and writes whole: two calls of one worker at once could leave it counting settled leases as held. So
        # calls go one at a time (the lane), all but a long-poll, which cannot hold the lane for its wait.
        with self._lane:
            return (conn or self._conn()).call(method, path, body, timeout=kwargs.pop("timeout", self._timeout_s), **kwargs)[1]

    # -- lifecycle

    def register(self) -> str:
        """POST /v1/workers; sets worker_id, heartbeat_s, lease_s, wait_s, max_claim."""
        answer = self._call("POST", "/v1/workers", {"name": self.name, "types": self.types, "slots": self.slots, "labels": self.labels})
        self.worker_id = answer["worker_id"]
        self.lease_s = float(answer["lease_s"])
        self.heartbeat_s = float(answer["heartbeat_s"])
        if self._heartbeat_s_wanted:
            self.heartbeat_s = max(0.05, min(self.heartbeat_s, float(self._heartbeat_s_wanted)))
        max_wait = int(answer["max_wait_s"])
        self.wait_s = max_wait if self._wait_s_wanted is None else max(0, min(max_wait, int(self._wait_s_wanted)))
        self.max_claim = int(answer["max_claim"])
        self._last_renewal = time.monotonic()
        with self._lock:
            self.state = "active"
            self._lock.notify_all()
        log_line("info", "registered", worker=self.name, worker_id=self.worker_id, types=",".join(self.types), slots=self.slots,
                 heartbeat_s=self.heartbeat_s, lease_s=self.lease_s, wait_s=self.wait_s)
        return self.worker_id

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the worker gracefully; a second one skips the grace. Call from the main thread."""
        def on_signal(signum: int, _frame: Any) -> None:
            self._signals += 1
            log_line("info", "signal", signal=signal.Signals(signum).name, action="stop" if self._signals == 1 else "stop-now")
            self.stop(force=self._signals > 1)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def stop(self, force: bool = False) -> None:
        """Asks the worker to stop (thread-safe): claim nothing more, finish or release what it holds, deregister."""
        if force:
            self._force.set()
        self._stopping.set()
        claim = self._claim_conn
        if claim is not None:
            claim.abort()  # ends a long-poll at once; the service hands back anything it was about to lease
        with self._lock:
            self._lock.notify_all()

    def run(self, install_signals: bool = True) -> None:
        """Registers (unless done), runs until stopped, then shuts down gracefully. Blocks."""
        if install_signals and threading.current_thread() is threading.main_thread():
            self.install_signal_handlers()
        while self.worker_id is None and not self._stopping.is_set():
            try:
                self.register()
            except (OSError, ProtocolError) as error:
                log_line("error", "register-failed", error=str(error), retry_in_s=2)
                self._stopping.wait(2)
        if self.worker_id is None:
            return
        for i in range(self.slots):
            threading.Thread(target=self._slot_loop, name=f"slot-{i + 1}", daemon=True).start()
        beats = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        beats.start()
        claims = threading.Thread(target=self._claim_loop, name="claim", daemon=True)
        claims.start()
        # The main thread only waits (signal handlers run here).
        while not self._stopping.wait(0.5):
            pass
        claims.join()
        self._shutdown()
        self._beats_done.set()
        self._beat_now.set()
        beats.join(timeout=self._timeout_s)
        self._deregister()
        for _ in range(self.slots):
            self._jobs.put(None)
        self._finished.set()
        log_line("info", "stopped", worker=self.name, worker_id=self.worker_id)

    # -- claiming

    def _free_slots(self) -> int:
        return self.slots - len(self._held)

    def _claim_loop(self) -> None:
        # A connection of its own, so that stop() can end a long-poll in flight (and only that).
        self._claim_conn = _Connection(self.base_url, self.worker_key)
        backoff = 0.5
        found_nothing = False
        while not self._stopping.is_set():
            with self._lock:
                while not self._stopping.is_set() and (self.state != "active" or self._free_slots() <= 0):
                    # drain / stop: claim nothing until a heartbeat says active (it notifies); full: until a slot frees.
                    self._lock.wait(timeout=self.heartbeat_s)
                if self._stopping.is_set():
                    break
                free = self._free_slots()
            # A claim waits only when the one before found nothing; one that does not wait goes through the lane.
            wait_s = self.wait_s if found_nothing else 0
            claimed_as = self.worker_id
            started = time.monotonic()
            path, body = f"/v1/workers/{self.worker_id}/leases", {"max": max(1, min(free, self.max_claim))}
            try:
                if wait_s > 0:
                    answer = self._claim_conn.call("POST", path, body, headers={"prefer": f"wait={wait_s}"}, timeout=wait_s + self._timeout_s)[1]
                else:
                    answer = self._call("POST", path, body, conn=self._claim_conn)
                backoff = 0.5
            except ProtocolError as error:
                if self._stopping.is_set():
                    break
                if error.code == "worker-not-found":
                    self._lost_registration(claimed_as)
                    continue
                log_line("warn", "claim-failed", status=error.status, code=error.code, detail=error.detail, retry_in_s=backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            except (OSError, http.client.HTTPException, ValueError) as error:
                if self._stopping.is_set():
                    break
                log_line("warn", "claim-failed", error=repr(error), retry_in_s=backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            leases = answer.get("leases", []) if isinstance(answer, dict) else []
            if self._stopping.is_set():
                for lease in leases:  # not started: back to the queue at once
                    self._settle(JobContext(self, lease), "release", None)
                break
            for lease in leases:
                ctx = JobContext(self, lease)
                with self._lock:
                    self._held[ctx.lease_id] = ctx
                log_line("info", "claimed", job_id=ctx.job_id, type=ctx.type, attempt=ctx.attempt, lease_id=ctx.lease_id)
                self._jobs.put(ctx)
            found_nothing = not leases and wait_s == 0
            if leases:
                continue
            if wait_s > 0 and time.monotonic() - started < wait_s / 2:
                # A long-poll answered empty long before its wait ended: drained, the service stopping, or its
                # record of our leases is behind. A heartbeat now tells which (and sets it right); then claim again.
                self._beat_now.set()
                self._stopping.wait(min(1.0, self.heartbeat_s))
            elif self.wait_s == 0 and wait_s == 0:
                self._stopping.wait(1.0)  # no long-poll allowed: poll once a second

    def _lost_registration(self, seen_id: Optional[str]) -> None:
        """The service no longer knows this worker (it stopped calling for longer than lease_s): its leases are gone."""
        with self._register_lock:
            if self.worker_id != seen_id:
                return  # the other thread registered again already
            with self._lock:
                held = list(self._held.values())
            for ctx in held:
                self._mark_lost(ctx, "worker-not-found")
            log_line("warn", "registration-lost", worker_id=self.worker_id, action="register again")
            while not self._stopping.is_set():
                try:
                    self.register()
                    return
                except (OSError, ProtocolError) as error:
                    log_line("error", "register-failed", error=str(error), retry_in_s=2)
                    self._stopping.wait(2)

    # -- running jobs

    def _slot_loop(self) -> None:
        while True:
            ctx = self._jobs.get()
            if ctx is None:
                return
            try:
                self._run_one(ctx)
            finally:
                with self._lock:
                    self._held.pop(ctx.lease_id, None)
                    self._lock.notify_all()

    def _run_one(self, ctx: JobContext) -> None:
        handler = self.handlers.get(ctx.type)
        started = time.monotonic()
        log_line("info", "started", job_id=ctx.job_id, type=ctx.type, attempt=ctx.attempt)
        outcome: str
        body: Any = None
        try:
            if handler is None:
                raise PermanentError(f"this worker has no handler for type {ctx.type!r}", code="no-handler")
            result = handler(ctx.job, ctx)
            try:
                json.dumps(result)
                outcome, body = "complete", {"result": result}
            except (TypeError, ValueError) as error:
                outcome, body = "fail", {"error": {"code": "result-not-json", "message": f"the result is not JSON: {error}"[:_MESSAGE_MAX]}, "retryable": False}
        except Cancelled:
            outcome = "release"
        except Exception as error:  # noqa: BLE001 - every handler failure is reported
            if ctx.cancelled.is_set() and not isinstance(error, (PermanentError, RetryableError)):
                outcome = "release"  # it stopped because it was asked to
            else:
                code = getattr(error, "code", None)
                if not isinstance(code, str) or not code or len(code) > 64 or not set(code) <= _CODE_CHARS or not code[0].isalnum():
                    code = "handler-error"
                message = f"{type(error).__name__}: {error}"
                detail = "".join(traceback.format_exception(type(error), error, error.__traceback__))
                body = {"error": {"code": code, "message": message[:_MESSAGE_MAX], "detail": detail[-_DETAIL_MAX:]}, "retryable": not isinstance(error, PermanentError)}
                retry_after = getattr(error, "retry_after_s", None)
                if isinstance(retry_after, (int, float)) and retry_after >= 0:
                    body["retry_after_s"] = retry_after
                outcome = "fail"
                log_line("warn", "handler-failed", job_id=ctx.job_id, error=message[:300], retryable=body["retryable"])
        took_ms = round((time.monotonic() - started) * 1000)
        if ctx.lost.is_set() or ctx._abandoned:
            log_line("warn", "outcome-dropped", job_id=ctx.job_id, outcome=outcome, reason="lease lost" if ctx.lost.is_set() else "released on stop", took_ms=took_ms)
            return
        if ctx._cancel_requested and outcome == "complete":
            outcome, body = "release", None  # the client does not want the result any more
        self._flush_logs(ctx)
        self._settle(ctx, outcome, body, took_ms=took_ms)

    def _settle(self, ctx: JobContext, verb: str, body: Any, took_ms: Optional[int] = None) -> bool:
        """complete / fail / release, retried while the service cannot be reached; 409 lease-lost drops it."""
        path = f"/v1/leases/{quote(ctx.lease_id, safe='')}/{verb}"
        ctx._settling_since = time.monotonic()
        deadline = time.monotonic() + max(self.lease_s, 5.0)
        delay = 0.2
        while True:
            try:
                answer = self._call("POST", path, body)
                log_line("info", {"complete": "completed", "fail": "failed", "release": "released"}[verb], job_id=ctx.job_id,
                         attempt=ctx.attempt, job_status=(answer or {}).get("job_status"), took_ms=took_ms)
                return True
            except ProtocolError as error:
                if error.code in ("lease-lost", "lease-not-found"):
                    log_line("warn", "lease-lost", job_id=ctx.job_id, lease_id=ctx.lease_id, outcome=verb, detail="outcome dropped")
                    return False
                if error.status < 500 and error.status != 429:
                    log_line("error", "settle-refused", job_id=ctx.job_id, outcome=verb, status=error.status, code=error.code, detail=error.detail)
                    return False
                failure = f"{error.status} {error.code}"
            except (OSError, http.client.HTTPException, ValueError) as error:
                failure = repr(error)
            if time.monotonic() + delay > deadline or self._force.is_set():
                log_line("error", "settle-failed", job_id=ctx.job_id, outcome=verb, error=failure, detail="giving up: the lease lapses and the job runs again")
                return False
            log_line("warn", "settle-retry", job_id=ctx.job_id, outcome=verb, error=failure, retry_in_s=delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _flush_logs(self, ctx: JobContext) -> None:
        lines = ctx._take_logs()
        while lines and not ctx.lost.is_set():
            chunk, rest = lines[:_LOG_LINES_PER_CALL], lines[_LOG_LINES_PER_CALL:]
            try:
                self._call("POST", f"/v1/leases/{quote(ctx.lease_id, safe='')}/logs", {"lines": chunk})
            except ProtocolError as error:
                if error.code == "lease-lost":
                    self._mark_lost(ctx, "lease-lost")
                elif error.status >= 500:
                    ctx._return_logs(lines)  # next time
                return
            except (OSError, http.client.HTTPException, ValueError):
                ctx._return_logs(lines)
                return
            lines = rest

    def _mark_lost(self, ctx: JobContext, why: str) -> None:
        if not ctx.lost.is_set():
            ctx.lost.set()
            ctx.cancelled.set()
            log_line("warn", "lost", job_id=ctx.job_id, lease_id=ctx.lease_id, reason=why)

    # -- heartbeats

    def _heartbeat_loop(self) -> None:
        while not self._beats_done.is_set():
            self._beat_now.wait(self.heartbeat_s)
            self._beat_now.clear()
            if self._beats_done.is_set():
                return
            self._heartbeat()
            with self._lock:
                held = [ctx for ctx in self._held.values() if not ctx.lost.is_set()]
            for ctx in held:
                self._flush_logs(ctx)

    def _heartbeat(self) -> None:
        now = time.monotonic()
        with self._lock:
            # A lease whose outcome is on its way is left out (the service would count it lost once settled),
            # unless that write is taking long (retrying): then it keeps the lease renewed meanwhile.
            held = [
                ctx for ctx in self._held.values()
                if not ctx.lost.is_set() and not ctx._abandoned and (ctx._settling_since is None or now - ctx._settling_since > 2 * self.heartbeat_s)
            ]
        entries = []
        versions = []
        for ctx in held:
            progress, version = ctx._take_progress()
            entry: Dict[str, Any] = {"lease_id": ctx.lease_id}
            if progress is not None:
                entry["progress"] = progress
            entries.append(entry)
            versions.append(version if progress is not None else None)
        beat_as = self.worker_id
        try:
            answer = self._call("POST", f"/v1/workers/{beat_as}/heartbeat", {"leases": entries})
        except ProtocolError as error:
            if error.code == "worker-not-found" and not self._stopping.is_set():
                self._lost_registration(beat_as)
            else:
                log_line("warn", "heartbeat-failed", status=error.status, code=error.code, detail=error.detail)
                self._check_renewal_age()
            return
        except (OSError, http.client.HTTPException, ValueError) as error:
            log_line("warn", "heartbeat-failed", error=repr(error))
            self._check_renewal_age()
            return
        self._last_renewal = time.monotonic()
        for ctx, version in zip(held, versions):
            if version is not None:
                ctx._progress_delivered(version)
        statuses = {each["lease_id"]: each["status"] for each in answer.get("leases", [])}
        for ctx in held:
            status = statuses.get(ctx.lease_id, "lost")
            if ctx._settling_since is not None:
                continue  # being settled: its answer decides
            if status == "lost":
                self._mark_lost(ctx, "heartbeat")
            elif status == "cancel_requested" and not ctx._cancel_requested:
                ctx._cancel_requested = True
                ctx.cancelled.set()
                log_line("info", "cancel-requested", job_id=ctx.job_id, lease_id=ctx.lease_id)
        state = answer.get("worker", "active")
        with self._lock:
            if state != self.state:
                log_line("info", "worker-state", state=state, was=self.state)
                self.state = state
                self._lock.notify_all()

    def _check_renewal_age(self) -> None:
        """Past lease_s without a renewal the service has taken our leases back: drop their outcomes."""
        if time.monotonic() - self._last_renewal <= self.lease_s:
            return
        with self._lock:
            held = list(self._held.values())
        for ctx in held:
            self._mark_lost(ctx, "no renewal within lease_s")

    # -- stopping

    def _shutdown(self) -> None:
        """Claims have stopped: let running jobs finish for up to grace_s, then release the rest."""
        grace = 0.0 if self._force.is_set() else self.grace_s
        deadline = time.monotonic() + grace
        with self._lock:
            if self._held:
                log_line("info", "draining", running=len(self._held), grace_s=grace)
            while self._held and not self._force.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(timeout=min(left, 0.5))
            rest = [ctx for ctx in self._held.values() if not ctx.lost.is_set()]
            for ctx in rest:
                ctx._abandoned = True
                ctx.cancelled.set()
        for ctx in rest:
            self._flush_logs(ctx)
            self._settle(ctx, "release", None)

    def _deregister(self) -> None:
        try:
            self._call("DELETE", f"/v1/workers/{self.worker_id}")
            log_line("info", "deregistered", worker_id=self.worker_id)
        except (OSError, ProtocolError, http.client.HTTPException) as error:
            log_line("warn", "deregister-failed", worker_id=self.worker_id, error=str(error))


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def env_float(name: str, default: Optional[float]) -> Optional[float]:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default
