"""A loopback stand-in for the OpenAI and Anthropic HTTP APIs, for tests and benchmarks (not part of the product).

It speaks just enough of the wire formats for the official SDKs: OpenAI `/v1/chat/completions`, `/v1/files`,
`/v1/batches`; Anthropic `/v1/messages`, `/v1/messages/batches` (+ results). By default it answers a ranking prompt
with the first 25 candidates in the order given (a teacher-order echo); a `behaviour` callback can change any reply
(status, text, delay, headers, raw body, the token usage it reports, or a connection dropped without an answer: the
faults a paid API can show). Binds 127.0.0.1 on a free port; never reaches the network.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from core.teachers.prompts import CANDIDATES_MARK, SESSION_MARK, decode_line


@dataclass
class FakeCall:
    """One model call as the server saw it. api: "openai" | "anthropic"; n_messages counts system + turns;
    candidates / session_titles are read back from the prompt's JSON data lines; at: time.monotonic() on arrival."""

    api: str
    body: dict[str, Any]
    headers: dict[str, str]
    system: str
    user: str
    n_messages: int
    candidates: list[int]
    session_titles: list[str]
    batch: bool = False
    at: float = field(default_factory=time.monotonic)

    @property
    def is_repair(self) -> bool:
        return self.n_messages > 2


@dataclass
class FakeReply:
    """status: HTTP status; text: the model's reply (None = default ranking); delay_s: seconds before answering;
    raw: a raw response body (overrides everything, e.g. malformed JSON); usage: include token usage; tokens: token
    counts to report instead of the real ones (e.g. {"output": 10**6}: a server over-reporting; keys "input",
    "output"); drop: close the connection without answering (a server dying mid-request)."""

    status: int = 200
    text: str | None = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    usage: bool = True
    tokens: dict[str, int] | None = None
    drop: bool = False


Behaviour = Callable[[FakeCall], "FakeReply | None"]


def default_text(call: FakeCall, n_out: int = 25) -> str:
    return json.dumps({"ranking": call.candidates[:n_out], "rationale": "fake server: teacher order"})


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(block.get("text", "") for block in content or [] if isinstance(block, dict))


def _call_of(api: str, body: dict[str, Any], headers: dict[str, str], batch: bool = False) -> FakeCall:
    messages = body.get("messages") or []
    if api == "openai":
        system = "\n".join(_text_of(m.get("content")) for m in messages if m.get("role") == "system")
        others = [m for m in messages if m.get("role") != "system"]
        n = len(messages)
    else:
        system = _text_of(body.get("system"))
        others = messages
        n = len(messages) + (1 if system else 0)
    user = _text_of(others[0].get("content")) if others else ""
    candidates = [int(c["id"]) for c in decode_line(user, CANDIDATES_MARK)]
    titles = [str(s["title"]) for s in decode_line(user, SESSION_MARK)]
    return FakeCall(api, body, headers, system, user, n, candidates, titles, batch)


def _openai_body(call: FakeCall, text: str, usage: bool, tokens: dict[str, int] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                            "model": call.body.get("model", ""),
                            "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": text}}]}
    if usage:
        prompt = sum(len(_text_of(m.get("content"))) for m in call.body.get("messages") or []) // 4
        prompt, out = (tokens or {}).get("input", prompt), (tokens or {}).get("output", len(text) // 4)
        body["usage"] = {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out}
    return body


def _anthropic_body(call: FakeCall, text: str, usage: bool, tokens: dict[str, int] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if call.body.get("tools"):
        try:
            block = {"type": "tool_use", "id": "toolu_fake", "name": call.body["tools"][0]["name"],
                     "input": json.loads(text)}
        except (ValueError, TypeError):
            pass
    body: dict[str, Any] = {"id": "msg_fake", "type": "message", "role": "assistant",
                            "model": call.body.get("model", ""), "content": [block], "stop_reason": "end_turn"}
    if usage:
        prompt = (len(call.system) + sum(len(_text_of(m.get("content"))) for m in call.body.get("messages") or [])) // 4
        body["usage"] = {"input_tokens": (tokens or {}).get("input", prompt),
                         "output_tokens": (tokens or {}).get("output", len(text) // 4)}
    return body


class FakeLLMServer:
    """Use as a context manager. `openai_url` / `anthropic_url` are the SDK base URLs. `calls` lists model calls
    (batch lines included); `requests` lists every HTTP request as (method, path); `answered` counts model calls
    whose answer was sent in full (any status)."""

    def __init__(self, behaviour: Behaviour | None = None, delay_s: float = 0.0) -> None:
        self.behaviour = behaviour
        self.delay_s = delay_s
        self.calls: list[FakeCall] = []
        self.requests: list[tuple[str, str]] = []
        self.answered = 0
        self._lock = threading.Lock()
        self._files: dict[str, bytes] = {}
        self._batches: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # ---- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> "FakeLLMServer":
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        threading.Thread(target=self._server.serve_forever, name="fake-llm", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeLLMServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, api: str | None = None) -> int:
        with self._lock:
            return sum(1 for c in self.calls if api is None or c.api == api)

    # ---- replies ----------------------------------------------------------------------------------------------
    def decide(self, call: FakeCall) -> FakeReply:
        with self._lock:
            self.calls.append(call)
        reply = self.behaviour(call) if self.behaviour else None
        reply = reply or FakeReply()
        if reply.delay_s == 0.0 and self.delay_s and not call.batch:
            reply = replace(reply, delay_s=self.delay_s)
        return reply

    def model_reply(self, api: str, call: FakeCall, reply: FakeReply) -> dict[str, Any]:
        text = default_text(call) if reply.text is None else reply.text
        build = _openai_body if api == "openai" else _anthropic_body
        return build(call, text, reply.usage, reply.tokens)

    def new_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}{next(self._ids)}"

    def openai_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        batch_id = self.new_id("batch_")
        out = []
        for line in self._files[body["input_file_id"]].decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            call = _call_of("openai", item["body"], {}, batch=True)
            reply = self.decide(call)
            response = {"status_code": reply.status, "request_id": "req_fake",
                        "body": self.model_reply("openai", call, reply) if reply.status == 200
                        else {"error": {"message": "fake failure", "type": "server_error"}}}
            out.append(json.dumps({"id": self.new_id("resp_"), "custom_id": item["custom_id"], "response": response,
                                   "error": None}))
        output_id = self.new_id("file-")
        self._files[output_id] = ("\n".join(out) + "\n").encode()
        batch = {"id": batch_id, "object": "batch", "endpoint": body.get("endpoint"),
                 "input_file_id": body["input_file_id"], "completion_window": "24h", "status": "in_progress",
                 "created_at": int(time.time()), "polls": 0, "final": {"status": "completed",
                                                                      "output_file_id": output_id}}
        self._batches[batch_id] = batch
        return {k: v for k, v in batch.items() if k not in ("polls", "final")}

    def anthropic_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        batch_id = self.new_id("msgbatch_")
        out = []
        for item in body.get("requests") or []:
            call = _call_of("anthropic", item["params"], {}, batch=True)
            reply = self.decide(call)
            result = ({"type": "succeeded", "message": self.model_reply("anthropic", call, reply)}
                      if reply.status == 200 else
                      {"type": "errored", "error": {"type": "error", "error": {"type": "api_error",
                                                                                "message": "fake failure"}}})
            out.append(json.dumps({"custom_id": item["custom_id"], "result": result}))
        results_id = self.new_id("results_")
        self._files[results_id] = ("\n".join(out) + "\n").encode()
        batch = {"id": batch_id, "type": "message_batch", "processing_status": "in_progress",
                 "request_counts": {"processing": len(out), "succeeded": 0, "errored": 0, "canceled": 0,
                                    "expired": 0},
                 "created_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-02T00:00:00Z",
                 "results_url": None, "polls": 0,
                 "final": {"processing_status": "ended",
                           "results_url": f"{self.anthropic_url}/v1/messages/batches/{batch_id}/results",
                           "ended_at": "2026-01-01T00:01:00Z"},
                 "results_id": results_id}
        self._batches[batch_id] = batch
        return {k: v for k, v in batch.items() if k not in ("polls", "final", "results_id")}

    def poll(self, batch_id: str) -> dict[str, Any] | None:
        batch = self._batches.get(batch_id)
        if batch is None:
            return None
        batch["polls"] += 1
        if batch["polls"] >= 2:  # "in progress" once, then done
            batch.update(batch["final"])
        return {k: v for k, v in batch.items() if k not in ("polls", "final", "results_id")}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLLMServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(raw)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

    def _body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:  # noqa: N802
        fake, path = self.fake, self.path.split("?")[0]
        with fake._lock:
            fake.requests.append(("GET", path))
        if path.startswith("/v1/files/") and path.endswith("/content"):
            data = fake._files.get(path.split("/")[3])
            return self._send(200, data, content_type="application/binary") if data is not None \
                else self._send(404, {"error": {"message": "no such file"}})
        if path.startswith("/v1/messages/batches/") and path.endswith("/results"):
            batch = fake._batches.get(path.split("/")[4])
            if batch is None:
                return self._send(404, {"error": {"message": "no such batch"}})
            return self._send(200, fake._files[batch["results_id"]], content_type="application/binary")
        if path.startswith("/v1/batches/") or path.startswith("/v1/messages/batches/"):
            state = fake.poll(path.rstrip("/").split("/")[-1])
            return self._send(200, state) if state else self._send(404, {"error": {"message": "no such batch"}})
        self._send(404, {"error": {"message": f"no route {path}"}})

    def do_POST(self) -> None:  # noqa: N802
        fake, path = self.fake, self.path.split("?")[0]
        raw = self._body()
        with fake._lock:
            fake.requests.append(("POST", path))
        if path == "/v1/files":
            message = BytesParser(policy=HTTP).parsebytes(
                b"content-type: " + self.headers["content-type"].encode() + b"\r\n\r\n" + raw)
            data = b""
            for part in message.iter_parts():
                if part.get_param("name", header="content-disposition") == "file":
                    data = part.get_payload(decode=True) or b""
            file_id = fake.new_id("file-")
            fake._files[file_id] = data
            return self._send(200, {"id": file_id, "object": "file", "bytes": len(data), "created_at": 0,
                                    "filename": "batch.jsonl", "purpose": "batch", "status": "processed"})
        body = json.loads(raw or b"{}")
        if path == "/v1/batches":
            return self._send(200, fake.openai_batch(body))
        if path == "/v1/messages/batches":
            return self._send(200, fake.anthropic_batch(body))
        if path not in ("/v1/chat/completions", "/v1/messages"):
            return self._send(404, {"error": {"message": f"no route {path}"}})
        api = "openai" if path == "/v1/chat/completions" else "anthropic"
        call = _call_of(api, body, {k.lower(): v for k, v in self.headers.items()})
        reply = fake.decide(call)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if reply.raw is not None:
            self._send(reply.status, reply.raw, reply.headers)
        elif reply.status != 200:
            kind = "rate_limit_error" if reply.status == 429 else "api_error"
            message = reply.text or f"fake error {reply.status}"
            self._send(reply.status, {"type": "error", "error": {"message": message, "type": kind}}, reply.headers)
        else:
            self._send(200, fake.model_reply(api, call, reply), reply.headers)
        with fake._lock:
            fake.answered += 1
