"""A real HTTP receiver on loopback that records what it is sent and answers as told."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """``answer`` decides each response: (status, headers)."""

    answer: Callable[[Received], tuple[int, dict[str, str]]] = lambda _: (200, {})
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                got = Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                receiver.received.append(got)
                status, headers = receiver.answer(got)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# Added for the endpoint, worker and event tests.


def scripted(
    *answers: tuple[int, dict[str, str]],
) -> Callable[[Received], tuple[int, dict[str, str]]]:
    """Answer with each of ``answers`` in turn, then keep repeating the last one."""
    lock = threading.Lock()
    calls = [0]

    def answer(_: Received) -> tuple[int, dict[str, str]]:
        with lock:
            index = min(calls[0], len(answers) - 1)
            calls[0] += 1
        return answers[index]

    return answer


def webhook_ids(receiver: Receiver) -> list[str]:
    return [r.headers["webhook-id"] for r in receiver.received]
