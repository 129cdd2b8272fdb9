"""HTTP downloads that cope with a busy archive: rate limiting, retries, resume.

Place in the flow (learning side): simulate, instruments, catalog (**http**) -> inject -> datasets,
curves -> train -> vetting -> evaluate; presets, demo.

Every request to MAST or the Exoplanet Archive goes through :func:`call_with_retries`:
a shared token bucket spaces the requests out, and timeouts, dropped connections,
HTTP 429 and 5xx answers and truncated bodies are retried with exponential backoff and
jitter (or after the server's ``Retry-After``). A file is downloaded to ``<name>.part``
and renamed only once its size is right, so a final file is never a partial one; an
interrupted download resumes from the ``.part`` file with an HTTP ``Range`` request.
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TypeVar

import requests

from .._version import __version__
from ..errors import ExoperiodError

T = TypeVar("T")

#: HTTP statuses that mean "try again later".
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = f"exoperiod/{__version__} (python-requests)"
_CHUNK_BYTES = 1 << 16


class DownloadError(ExoperiodError):
    """A download that failed for good; the message is one line naming the URL."""


class TruncatedDownload(IOError):
    """The body ended before the announced size (retried; resumed where it stopped)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    Attributes
    ----------
    attempts : int
        Tries per request, the first included.
    base_delay_s, max_delay_s : float
        Backoff before retry ``k`` (from 0) is ``min(max, base * 2**k)`` times a jitter
        factor uniform in [0.5, 1], so that parallel clients do not retry in lockstep.
    timeout_s : tuple of float
        (connect, read) timeouts of one request, seconds.
    sleep : callable
        Waits between tries (tests pass a recorder).
    """

    attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 120.0
    timeout_s: tuple[float, float] = (15.0, 120.0)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.max_delay_s)
        return min(self.max_delay_s, self.base_delay_s * 2**attempt) * random.uniform(0.5, 1.0)


class RateLimiter:
    """A thread-safe token bucket: at most ``rate_per_s`` requests a second on average,
    bursts of up to ``burst``."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"need rate_per_s > 0 and burst >= 1, got {rate_per_s}, {burst}")
        self.rate_per_s, self.burst = rate_per_s, burst
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take a token, waiting for it if the bucket is empty."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate_per_s)
            self._last = now
            # Taking the token before sleeping (the count may go negative) queues the
            # callers fairly without holding the lock while they wait.
            self._tokens -= 1.0
            wait = -self._tokens / self.rate_per_s if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)


def is_transient(exc: BaseException) -> bool:
    """Whether an error is worth retrying: timeouts, broken connections, 429 and 5xx."""
    if isinstance(exc, requests.HTTPError):
        return exc.response is not None and exc.response.status_code in RETRY_STATUS
    if isinstance(exc, (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                        TruncatedDownload)):
        return True
    try:
        from astroquery.exceptions import RemoteServiceError
        from astroquery.exceptions import TimeoutError as AstroqueryTimeout
    except ImportError:  # pragma: no cover - astroquery is a dependency
        return False
    return isinstance(exc, (RemoteServiceError, AstroqueryTimeout))


def retry_after_s(exc: BaseException) -> float | None:
    """The server's ``Retry-After`` (seconds or an HTTP date), if it sent one."""
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return (when - datetime.now(timezone.utc)).total_seconds()


def call_with_retries(
    fn: Callable[[], T], policy: RetryPolicy | None = None, limiter: RateLimiter | None = None
) -> T:
    """Call ``fn`` until it succeeds, retrying transient errors (see :func:`is_transient`).

    Raises the last error when it is not transient or the attempts are used up.
    """
    policy = policy or RetryPolicy()
    for attempt in range(policy.attempts):
        if limiter is not None:
            limiter.acquire()
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified right below
            if not is_transient(exc) or attempt == policy.attempts - 1:
                raise
            policy.sleep(policy.delay_s(attempt, retry_after_s(exc)))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def new_session(pool_size: int = 8) -> requests.Session:
    """A requests session with a connection pool for ``pool_size`` threads."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def _fetch_once(
    session: requests.Session, url: str, part: Path, timeout_s: tuple[float, float], expected_size: int | None
) -> None:
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with session.get(url, stream=True, timeout=timeout_s, headers=headers) as response:
        if response.status_code == 416:
            # The partial file does not fit what the server has: start again.
            part.unlink()
            raise TruncatedDownload(f"range {offset}- not satisfiable; restarting")
        response.raise_for_status()
        if response.status_code != 206:
            offset = 0  # the server ignored the Range header and sends it all
        length = response.headers.get("Content-Length")
        # A compressed body's Content-Length counts compressed bytes, not the file's.
        encoded = response.headers.get("Content-Encoding", "identity") != "identity"
        announced = offset + int(length) if length and not encoded else None
        with part.open("ab" if offset else "wb") as handle:
            for chunk in response.iter_content(_CHUNK_BYTES):
                handle.write(chunk)
    size = part.stat().st_size
    expected = expected_size if expected_size is not None else announced
    if expected is not None and size != expected:
        if size > expected:
            part.unlink()
        raise TruncatedDownload(f"received {size} of {expected} bytes")


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    session: requests.Session | None = None,
    expected_size: int | None = None,
    policy: RetryPolicy | None = None,
    limiter: RateLimiter | None = None,
) -> Path:
    """Download ``url`` to ``dest`` unless a complete copy is already there.

    Parameters
    ----------
    url : str
    dest : path
        Final file; the bytes arrive in ``<dest>.part`` first.
    session : requests.Session, optional
        The HTTP layer (tests inject one that replays recorded bytes and faults).
    expected_size : int, optional
        Size the archive lists for the file: a cached file of another size is fetched
        again, and a body of another size is an error (retried).
    policy, limiter
        Retry policy and shared rate limiter.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    DownloadError
        The download failed for good; ``dest`` does not exist afterwards.
    """
    dest = Path(dest)
    if dest.is_file() and (expected_size is None or dest.stat().st_size == expected_size):
        return dest
    policy = policy or RetryPolicy()
    session = session or new_session(1)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        call_with_retries(lambda: _fetch_once(session, url, part, policy.timeout_s, expected_size), policy, limiter)
    except Exception as exc:  # noqa: BLE001 - any failure ends as one DownloadError line
        raise DownloadError(f"{url}: {describe(exc)}") from exc
    os.replace(part, dest)
    return dest


def describe(exc: BaseException) -> str:
    """One line for an error: the HTTP status when there is one, else type and message."""
    response = getattr(exc, "response", None)
    if isinstance(exc, requests.HTTPError) and response is not None:
        return f"HTTP {response.status_code} {response.reason or ''}".strip()
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
