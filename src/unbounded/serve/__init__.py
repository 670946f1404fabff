"""An RLM behind one endpoint: an OpenAI-compatible server (``unbounded serve``) and an MCP server
(``unbounded mcp``). To a client it is one model call, whatever the size of the input.

``POST /v1/chat/completions`` with ``model`` ``rlm`` (the server's default root model) or
``rlm/<spec>`` (one the server allows with ``--allow-model``; ``GET /v1/models`` lists them).

How a conversation becomes a run
--------------------------------
1. **The question** is the last message whose role is ``user``: its text parts of at most
   ``--inline-chars`` characters (default 8,192), joined by blank lines. A string content is one part.
2. **The context** is everything else: every other message (system, developer, earlier user turns,
   assistant, tool; in order) and the parts of the last user message longer than ``--inline-chars``.
   One piece is the context as a string; several are a list of strings, each opening with a line
   that names its role (``[system]``, ``[user]``, ``[assistant]``…).
3. **The completion form.** When the last user message has no short part (the whole prompt is one
   long message) the question is the paper's completion instruction — respond to the prompt as an
   assistant would — and the prompt is the context. A single short message with nothing else is
   answered the same way, so a plain call still gets an answer.
4. **A server-side context** replaces the conversation's: ``context_id`` (a registered context) or
   ``paths``. The rest of the conversation then goes before the question as "Conversation so far",
   and may hold at most ``--inline-chars`` characters in all (more is a 400: register it instead).

Only text parts are accepted (an image is a 400); ``n`` must be 1; ``tools`` are refused. The other
OpenAI fields (``temperature``, ``max_tokens``, ``seed``…) are accepted and have no effect: the RLM's
own options and budget govern its model calls.

Extension fields (top-level keys; with the OpenAI SDK, ``extra_body={...}``)
----------------------------------------------------------------------------
- ``context_id``: a context registered with ``POST /v1/contexts`` (the same key's); its loaded worker
  is reused, and the budget is the one it was registered with.
- ``paths``: files or folders, relative to an ``--allow-path`` folder or absolute inside one, loaded
  as ``unbounded ask`` would (``include``/``exclude``: glob lists). Nothing outside is read.
- ``budget``: ``{"max_iterations", "max_llm_calls", "max_total_tokens", "max_cost_usd",
  "max_seconds"}``, each at most the server's cap (above it: a 400 naming the cap).
- ``progress``: ``false`` leaves the progress chunks out of a stream.

The response is OpenAI's ``chat.completion``. ``usage`` is the whole recursion tree's (root and every
sub-call, all models); ``finish_reason`` is ``stop`` for an answer and ``length`` when a budget limit
ended the run first. The extra top-level field ``unbounded`` holds ``status``, ``iterations``,
``subcalls``, ``elapsed``, ``usage`` and ``cost_usd`` per model, and ``trace_id`` (``GET
/v1/traces/<id>``). ``response_format`` ``json_schema`` (or ``json_object``) makes a typed answer: the
content is JSON of that schema (``client.chat.completions.parse`` works). A ``Server-Timing`` header
gives the time queued, running and in all.

Streaming (``stream: true``)
----------------------------
Server-sent events in OpenAI's chunk format: a first chunk with the assistant role, then one chunk
per run event whose delta is empty and whose extension field ``unbounded.progress`` is
``{"type", "id", "parent", "ts", "data"}`` (the trace's event, long strings cut to 300 characters:
``run_start``, ``rlm_start``, ``lm_request``, ``lm_response``, ``cell``, ``subcall_start``…; plain
clients ignore it), then the answer as a content delta, a chunk with ``finish_reason`` and the
``unbounded`` summary, a usage chunk when ``stream_options.include_usage`` is set, and ``[DONE]``.
A failed run sends OpenAI's error object as a chunk. A client that disconnects cancels its run within
a second: sub-calls cancelled, the worker killed, the trace closed ``interrupted``.

Other routes
------------
``POST /v1/contexts`` (text, records, JSONL, files, or ``paths``; see ``uploads``) → a context id,
loaded once into a warm session; ``GET /v1/contexts``, ``GET``/``DELETE /v1/contexts/<id>``. Contexts
belong to the key that made them and are evicted least recently used first past
``--context-memory-mb``. ``GET /v1/traces/<id>``, ``/healthz`` (no key), ``/metrics`` (Prometheus).

Limits: a bearer key is required when binding beyond loopback (``--api-key``, compared in constant
time); ``--max-concurrent`` runs with a ``--max-queue`` queue, beyond which 429 with ``Retry-After``;
``--max-body-mb``/``--max-upload-mb`` (413); a per-run wall clock (``--max-seconds``, default 900).
Errors use OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

from .config import ServeConfig, is_loopback

__all__ = ["ServeConfig", "create_app", "is_loopback"]


def __getattr__(name: str) -> object:
    if name == "create_app":  # Starlette only when an app is built
        from .app import create_app

        return create_app
    raise AttributeError(name)
