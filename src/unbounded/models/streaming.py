"""What a streamed reply's text goes through on its way out, the same for every backend.

``complete`` and ``astream`` build their text through the same :class:`ReplyText`, so the deltas
of a stream always join to exactly the text ``complete`` would return:

* stop sequences applied on our side (OpenAI's reasoning models, which reject ``stop``; the
  embedded model) cut the text where the first stop sequence to complete begins, as a server that
  stops generating on a stop sequence does (so ``"OaO"`` with stops ``["a", "OaO"]`` gives ``"O"``,
  whether it arrives whole or in pieces). While a stream is running, the end of the
  text that could still be the start of a stop sequence is held back until the next piece shows
  whether it is one, so no delta ever has to be taken back;
* a reply to a schema that was sent wrapped as ``{"value": ...}`` (see ``schema.py``) is unwrapped;
  such a reply arrives as one piece at the end, since only the whole JSON can be unwrapped.
"""

from __future__ import annotations

from collections.abc import Sequence

from .schema import unwrap_value


class StopFilter:
    """Cuts a text that arrives in pieces where the first stop sequence to complete begins."""

    def __init__(self, stops: Sequence[str] = ()) -> None:
        self.stops = [s for s in stops if s]
        self._longest = max((len(s) for s in self.stops), default=0)
        self._held = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """The part of ``piece`` (with what was held back) that can be delivered now."""
        if self.stopped or not piece:
            return ""
        if not self.stops:
            return piece
        buf = self._held + piece
        cut = _first_completed(buf, self.stops)
        if cut >= 0:
            self._held = ""
            self.stopped = True
            return buf[:cut]
        keep = self._partial_stop(buf)
        self._held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep]

    def flush(self) -> str:
        """What is still held back, at the end of the text (it was not a stop sequence)."""
        out, self._held = self._held, ""
        return "" if self.stopped else out

    def _partial_stop(self, buf: str) -> int:
        """Length of the longest end of ``buf`` that begins some stop sequence."""
        for k in range(min(len(buf), self._longest - 1), 0, -1):
            tail = buf[-k:]
            if any(s.startswith(tail) for s in self.stops):
                return k
        return 0


def _first_completed(text: str, stops: Sequence[str]) -> int:
    """Start of the stop sequence whose first match ends first (the earlier start on a tie), or -1.

    Earliest *end*, not earliest start: a stream cannot wait past a completed stop sequence to see
    whether a longer one that began earlier completes too, and the cut must not depend on how the
    text was split into pieces.
    """
    found = [(i + len(s), i) for s in stops if (i := text.find(s)) >= 0]
    return min(found)[1] if found else -1


class ReplyText:
    """One reply's text as it is delivered: ``feed`` each piece, then ``finish``; ``text`` is the whole.

    ``stops``: stop sequences to apply here. ``unwrap``: the reply is a wrapped schema value, to be
    unwrapped and delivered whole at the end.
    """

    def __init__(self, stops: Sequence[str] = (), *, unwrap: bool = False) -> None:
        self._stops = StopFilter(stops)
        self._unwrap = unwrap
        self._raw: list[str] = []
        self._out: list[str] = []

    @property
    def stopped(self) -> bool:
        """A stop sequence was seen: nothing after it will be delivered."""
        return self._stops.stopped

    @property
    def text(self) -> str:
        return "".join(self._out)

    def feed(self, piece: str) -> str:
        out = self._stops.feed(piece)
        if self._unwrap:
            self._raw.append(out)
            return ""
        if out:
            self._out.append(out)
        return out

    def finish(self) -> str:
        tail = self._stops.flush()
        out = unwrap_value("".join(self._raw) + tail) if self._unwrap else tail
        if out:
            self._out.append(out)
        return out

    @classmethod
    def whole(cls, text: str, stops: Sequence[str] = (), *, unwrap: bool = False) -> str:
        """The delivered text of a reply that arrived in one piece."""
        reply = cls(stops, unwrap=unwrap)
        reply.feed(text)
        reply.finish()
        return reply.text
