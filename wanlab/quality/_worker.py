"""The measuring worker: `python -m wanlab.quality._worker`, fed pickled `(id, path, first, last, expect,
clip)` frames on stdin (`clip`: None, or (model directory, prompt) for a clip_score), answering
`(id, ok, figures | error text)` frames on stdout (8-byte big-endian length, then the pickle). It ends
when stdin closes — so also when the process that started it dies.

Why not multiprocessing: its spawn and forkserver start methods re-import the parent's `__main__` in the
child, and a user's script without an `if __name__ == "__main__"` guard would run again there — submitting
its paid jobs a second time. A plain subprocess imports only this module."""

from __future__ import annotations

import os
import pickle
import sys
from typing import IO, Any


def read_frame(stream: IO[bytes]) -> Any:
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError
    size = int.from_bytes(head, "big")
    body = stream.read(size)
    if len(body) < size:
        raise EOFError
    return pickle.loads(body)


def write_frame(stream: IO[bytes], obj: Any) -> None:
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(body).to_bytes(8, "big") + body)
    stream.flush()


def main() -> None:
    try:
        os.nice(max(0, 10 - os.nice(0)))  # background work: the kernel the user types in comes first
    except OSError:
        pass
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print in a library must not corrupt the frames
    from ._clip import clip_score
    from ._measure import measure

    while True:
        try:
            ident, path, first, last, expect, clip = read_frame(inp)
        except EOFError:
            return
        try:
            figures: dict[str, Any] = measure(path, first, last, expect=expect)
        except Exception as exc:  # noqa: BLE001 - the error is the answer; the row records it
            write_frame(out, (ident, False, f"{type(exc).__name__}: {exc}"))
            continue
        if clip is not None:
            try:  # the signal figures stand even if the model fails
                figures["clip_score"] = clip_score(path, clip[1], clip[0])
            except Exception as exc:  # noqa: BLE001
                figures["clip_error"] = f"clip_score: {type(exc).__name__}: {exc}"
        write_frame(out, (ident, True, figures))


if __name__ == "__main__":
    main()
