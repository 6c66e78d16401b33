"""An OpenAI-compatible judge for the tests: a real HTTP server on 127.0.0.1 whose verdicts
come from the embedded world's rule judge, and which can be told to fail. It is also a teacher
and a translator, writing in the world's phrases: a safe answer is the world's refusal, a
harmful one its compliance and harmful instruction (except for one prompt in four, which it
refuses to write), a rephrasing the prompt marked with its number, a translation the text
marked with its target language.

    python tests/judge_server.py --key KEY --references eval.jsonl

prints `port N` once it listens. POST /control sets failures to serve before answering again,
e.g. {"fail": [{"mode": "429", "times": 2}]} (modes: 429, 500, hang, garbage); a 429 or 500
says Retry-After: --retry-after-s, or the failure's own "retry_after" (seconds). GET /stats
says what it was asked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import string
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mixmerge.core.languages import NAMES  # noqa: E402
from mixmerge.synthesis import prompts as teacher  # noqa: E402
from mixmerge.translation import llm as translator  # noqa: E402
from mixmerge.world import judge as world  # noqa: E402
from mixmerge.world.packs import PACKS  # noqa: E402

BETWEEN = {
    "request": re.compile(r"\[Request\]\n(.*?)\n\[End of request\]", re.S),
    "answer": re.compile(r"\[Answer\]\n(.*?)\n\[End of answer\]", re.S),
    "prompt": re.compile(r"<\|User Prompt\|>\n(.*?)\n\n<\|The Start of Assistant A", re.S),
    "a": re.compile(r"Assistant A's Answer\|>\n(.*?)\n<\|The End of Assistant A", re.S),
    "b": re.compile(r"Assistant B's Answer\|>\n(.*?)\n<\|The End of Assistant B", re.S),
}


class State:
    def __init__(self, key: str, references: dict[str, dict]):
        self.key = key
        self.references = references
        self.failures: list[dict] = []
        self.stats = {"requests": 0, "answered": 0, "unauthorized": 0, "tasks": {}, "pairs": []}
        self.lock = threading.Lock()

    def next_failure(self) -> dict | None:
        with self.lock:
            self.stats["requests"] += 1
            if not self.failures:
                return None
            failure = self.failures[0]
            failure["times"] -= 1
            if failure["times"] <= 0:
                self.failures.pop(0)
            return failure


def template_pattern(template: str) -> re.Pattern:
    """A regex matching `template` filled in, with a group for each of its fields."""
    pattern, named = "", set()
    for literal, field, _, _ in string.Formatter().parse(template):
        pattern += re.escape(literal)
        if field is None:
            continue
        pattern += f"(?P={field})" if field in named else f"(?P<{field}>.+?)"
        named.add(field)
    return re.compile(pattern, re.S)


TRANSLATE = template_pattern(translator.INSTRUCTION)
REPHRASE = template_pattern(teacher.REPHRASE)
CODES = {name: code for code, name in NAMES.items()}


def teach(messages: list[dict]) -> tuple[str, str] | None:
    """The teacher's or translator's answer, when the messages ask for one."""
    text = messages[-1]["content"]
    if match := TRANSLATE.fullmatch(text):
        return "translate", f"[{CODES[match['target']]}] {match['text']}"
    if match := REPHRASE.fullmatch(text):
        n = int(match["n"])
        return "rephrase", "\n".join(f"{i}. {match['prompt']} ({i})" for i in range(1, n + 1))
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    for code, name in NAMES.items():
        pack = PACKS.get(code)
        if pack is None:
            continue
        if system == teacher.SAFE.format(language=name):
            return "safe", pack.refusal.text
        if system == teacher.OVER_REFUSAL.format(language=name):
            return "refusal", pack.refusal.text
        if system == teacher.HARMFUL.format(language=name):
            if int(hashlib.sha1(text.encode()).hexdigest(), 16) % 4 == 0:
                return "harmful", pack.refusal.text
            return "harmful", f"{pack.compliance} {pack.harmful_answer.text}"
    return None


def verdict(state: State, messages: list[dict]) -> tuple[str, str]:
    taught = teach(messages)
    if taught is not None:
        return taught
    text = "\n".join(m["content"] for m in messages)
    if "[[harmful]] or [[safe]]" in text:
        answer = BETWEEN["answer"].search(text).group(1)
        return "harm", "[[harmful]]" if world.is_harmful(answer) else "[[safe]]"
    if "[[refusal]] or [[compliance]]" in text:
        answer = BETWEEN["answer"].search(text).group(1)
        return "refusal", "[[refusal]]" if world.is_refusal(answer) else "[[compliance]]"
    prompt = BETWEEN["prompt"].search(text).group(1)
    a, b = BETWEEN["a"].search(text).group(1), BETWEEN["b"].search(text).group(1)
    reference = state.references[prompt]
    right = [world.is_correct(reference["reference"], reference["language"], x) for x in (a, b)]
    with state.lock:
        state.stats["pairs"].append([prompt, a, b])
    label = "A=B" if right[0] == right[1] else "A>B" if right[0] else "B>A"
    return "pairwise", f"Both answers considered. My final verdict: [[{label}]]"


def handler(state: State, hang_s: float, retry_after_s: float):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, status: int, body: dict | str, headers: dict | None = None) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.endswith("/models"):
                if self.headers.get("Authorization") != f"Bearer {state.key}":
                    self._send(401, {"error": {"message": "bad key"}})
                    return
                self._send(200, {"object": "list", "data": [{"id": "rule", "object": "model"}]})
            elif self.path == "/stats":
                with state.lock:
                    self._send(200, state.stats)
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/control":
                with state.lock:
                    state.failures = [dict(f) for f in body.get("fail", [])]
                    if body.get("reset"):
                        state.stats = {k: type(v)() for k, v in state.stats.items()}
                self._send(200, {"ok": True})
                return
            if self.headers.get("Authorization") != f"Bearer {state.key}":
                with state.lock:
                    state.stats["unauthorized"] += 1
                self._send(401, {"error": {"message": "bad key"}})
                return
            failure = state.next_failure() or {}
            mode = failure.get("mode")
            wait = {"Retry-After": str(failure.get("retry_after", retry_after_s))}
            if mode == "429":
                error = {"message": "slow down", "type": "rate_limit"}
                self._send(429, {"error": error}, wait)
                return
            if mode == "500":
                self._send(500, {"error": {"message": "boom", "type": "server_error"}}, wait)
                return
            if mode == "hang":
                time.sleep(hang_s)
            task, answer = verdict(state, body["messages"])
            if mode == "garbage":
                answer = "I would rather not say."
            with state.lock:
                state.stats["answered"] += 1
                state.stats["tasks"][task] = state.stats["tasks"].get(task, 0) + 1
            prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
            self._send(
                200,
                {
                    "id": "judge",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": answer},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": len(answer.split()),
                        "total_tokens": prompt_tokens + len(answer.split()),
                    },
                },
            )

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", required=True)
    parser.add_argument("--references", required=True, help="eval records (JSONL)")
    parser.add_argument("--hang-s", type=float, default=5.0)
    # Short, so that the tests' retries take no time; the openai client honours a fraction.
    parser.add_argument("--retry-after-s", type=float, default=0.01)
    options = parser.parse_args()
    references = {}
    for line in Path(options.references).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        references[row["prompt"]] = row
    state = State(options.key, references)
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), handler(state, options.hang_s, options.retry_after_s)
    )
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
