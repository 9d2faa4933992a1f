"""The render entry: frames are synthesised (mode picture + overlay, and any defects asked for) in a
producer thread while the encoder runs in the caller's."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from fractions import Fraction

import av

from . import defects
from .modes import MODE_FUNCS, Target
from .mp4 import encode
from .overlay import Overlay
from .planes import frame_planes
from .spec import RenderSpec, n_frames, validate


def _frames(spec: RenderSpec, n: int) -> Iterator[av.VideoFrame]:
    """Synthesize the n output frames (runs in the producer thread)."""
    tgt = Target()
    overlay = Overlay(spec, n)
    fx = defects.make(spec, n)  # None for a clean render: no per-frame work
    steps = MODE_FUNCS[spec.mode](spec, n, tgt)
    tb = Fraction(1, spec.fps)
    for i in range(n):
        frame = av.VideoFrame(spec.width, spec.height, "yuv420p")
        tgt.planes = frame_planes(frame)
        try:
            caption = next(steps)
        except StopIteration:
            # Safety net: modes yield exactly n frames, but a short mode must never
            # produce a short file.
            tgt.planes[0].fill(64)
            tgt.planes[1].fill(128)
            tgt.planes[2].fill(128)
            caption = "(end of input)"
        if fx is None:
            overlay.apply(tgt.planes, i, caption)
        elif fx.held(i):
            # A frozen frame repeats the whole finished frame (counter included); the mode still
            # stepped above, so the picture resumes on its own timeline after the span.
            fx.hold(tgt.planes)
        else:
            fx.picture(tgt.planes, i)  # drift: the picture only
            overlay.apply(tgt.planes, i, caption)
            fx.finish(tgt.planes, i)  # flicker, blur: the whole frame; remembers the frame to freeze
        frame.pts = i
        frame.time_base = tb
        yield frame


def _threaded(gen: Iterator[av.VideoFrame], depth: int = 6) -> Iterator[av.VideoFrame]:
    """Run `gen` in a helper thread; numpy and the encoder both release the GIL."""
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def worker() -> None:
        try:
            for item in gen:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            q.put(exc)

    thread = threading.Thread(target=worker, name="wanlab-sim-render", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


def render(spec: RenderSpec) -> bytes:
    """Render `spec` to a complete, deterministic H.264 MP4 file in memory."""
    validate(spec)
    n = n_frames(spec)
    return encode(spec, n, _threaded(_frames(spec, n)))
