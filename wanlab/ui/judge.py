"""The blind judging widget: two videos side by side, labelled only "A" and "B", playing in sync.

A thin shell over `wanlab.judging.JudgeSession`: each button (or key) is `session.choose(...)`. The
videos travel as bytes traits and become Blob URLs in the browser, so they play whatever the notebook's
folder or server; nothing the widget holds names a prompt or a run. An anywidget (inline ES module and
CSS, no build step).

Keys, while the widget has focus (click it): ← or a = A better, → or b = B better, ↓ or t = tie,
s or space = skip. JupyterLab's own shortcuts are suppressed inside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

if TYPE_CHECKING:
    from ..judging import JudgeSession

KEYS = "← or a: A better · → or b: B better · ↓ or t: tie · s or space: skip"

_ESM = r"""
const KEYS = {ArrowLeft: "a", a: "a", ArrowRight: "b", b: "b", ArrowDown: "tie", t: "tie", s: "skip", " ": "skip"};

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "wanlab-judge";
  root.tabIndex = 0;
  root.setAttribute("data-lm-suppress-shortcuts", "true");  // JupyterLab: our keys, not the notebook's
  root.innerHTML = `
    <div class="wj-videos">
      <figure><figcaption>A</figcaption><video class="wj-a" muted loop playsinline controls
        controlslist="nodownload noplaybackrate" disablepictureinpicture></video></figure>
      <figure><figcaption>B</figcaption><video class="wj-b" muted loop playsinline controls
        controlslist="nodownload noplaybackrate" disablepictureinpicture></video></figure>
    </div>
    <div class="wj-buttons">
      <button data-choice="a" title="← or a">◀ A better</button>
      <button data-choice="tie" title="↓ or t">Tie</button>
      <button data-choice="b" title="→ or b">B better ▶</button>
      <button data-choice="skip" title="s or space">Skip</button>
      <button class="wj-more" title="judge more pairs">Judge more</button>
    </div>
    <div class="wj-status"></div>
    <div class="wj-keys"></div>`;
  el.appendChild(root);
  const [va, vb] = [root.querySelector(".wj-a"), root.querySelector(".wj-b")];
  const status = root.querySelector(".wj-status");
  const buttons = [...root.querySelectorAll("button[data-choice]")];
  const more = root.querySelector(".wj-more");
  let urls = [];

  // play, pause and seek one: the other follows; small drift is corrected as they loop
  const other = (v) => (v === va ? vb : va);
  for (const v of [va, vb]) {
    v.addEventListener("play", () => { const o = other(v); if (o.paused) o.play().catch(() => {}); });
    v.addEventListener("pause", () => { const o = other(v); if (!o.paused) o.pause(); });
    v.addEventListener("seeked", () => {
      const o = other(v);
      if (Math.abs(o.currentTime - v.currentTime) > 0.1) o.currentTime = Math.min(v.currentTime, o.duration || 0);
    });
  }
  va.addEventListener("timeupdate", () => {
    if (va.paused || vb.seeking || !vb.duration || Math.abs(va.duration - vb.duration) > 0.1) return;
    if (Math.abs(va.currentTime - vb.currentTime) > 0.25) vb.currentTime = va.currentTime;
  });

  function load() {
    urls.forEach((u) => URL.revokeObjectURL(u));
    urls = [];
    const done = model.get("done");
    root.classList.toggle("wj-done", done);
    status.textContent = model.get("status");
    root.querySelector(".wj-keys").textContent = done ? "" : "Keys (click the widget first): " + model.get("key_help");
    buttons.forEach((b) => (b.disabled = done));
    more.style.display = done && model.get("can_continue") ? "" : "none";
    for (const [v, name] of [[va, "left"], [vb, "right"]]) {
      v.pause();
      const bytes = model.get(name);
      if (done || !bytes || !bytes.byteLength) { v.removeAttribute("src"); v.load(); continue; }
      const url = URL.createObjectURL(new Blob([bytes], { type: "video/mp4" }));
      urls.push(url);
      v.src = url;
    }
    if (!done) Promise.all([va, vb].map((v) => v.play().catch(() => {}))).then(() => {});
  }

  function choose(choice) {
    if (model.get("done") || buttons[0].disabled) return;
    buttons.forEach((b) => (b.disabled = true));  // until the next pair arrives
    model.send({ choice, pair: model.get("pair") });
  }
  buttons.forEach((b) => b.addEventListener("click", () => { choose(b.dataset.choice); root.focus(); }));
  more.addEventListener("click", () => model.send({ more: true }));
  root.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const choice = KEYS[e.key.length === 1 ? e.key.toLowerCase() : e.key];
    if (!choice) return;
    e.preventDefault();
    e.stopPropagation();
    choose(choice);
  });
  root.addEventListener("click", (e) => { if (e.target.tagName !== "VIDEO") root.focus(); });
  model.on("change:pair", load);
  model.on("change:status", () => (status.textContent = model.get("status")));
  model.on("change:error", () => { if (model.get("error")) buttons.forEach((b) => (b.disabled = model.get("done"))); });
  load();
  return () => urls.forEach((u) => URL.revokeObjectURL(u));
}
export default { render };
"""

_CSS = """
.wanlab-judge { font-family: var(--jp-ui-font-family, sans-serif); max-width: 1100px; padding: 6px;
  border: 1px solid #ccc; border-radius: 4px; outline: none; }
.wanlab-judge:focus { border-color: #1976d2; box-shadow: 0 0 0 2px rgba(25,118,210,.25); }
.wanlab-judge .wj-videos { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
.wanlab-judge figure { margin: 0; }
.wanlab-judge figcaption { font-weight: bold; font-size: 18px; text-align: center; margin-bottom: 2px; }
.wanlab-judge video { width: 100%; aspect-ratio: 16 / 9; max-height: 60vh; background: #000; display: block; }
.wanlab-judge.wj-done .wj-videos { display: none; }
.wanlab-judge .wj-buttons { display: flex; gap: 8px; justify-content: center; margin: 8px 0 4px; }
.wanlab-judge button { font-size: 14px; padding: 6px 16px; cursor: pointer; border: 1px solid #999;
  border-radius: 3px; background: #f5f5f5; }
.wanlab-judge button:hover:not(:disabled) { background: #e3f2fd; }
.wanlab-judge button:disabled { opacity: .5; cursor: default; }
.wanlab-judge .wj-status { text-align: center; color: #333; }
.wanlab-judge .wj-keys { text-align: center; color: #777; font-size: 12px; }
"""


class JudgeWidget(anywidget.AnyWidget):
    """`JudgeWidget(session)`: the session's pair as two muted, looping, synced videos and four buttons.
    Traits carry only the videos' bytes, a pair counter and the status line — no labels, no run ids."""

    _esm = _ESM
    _css = _CSS
    left = traitlets.Bytes(b"").tag(sync=True)
    right = traitlets.Bytes(b"").tag(sync=True)
    pair = traitlets.Int(0).tag(sync=True)  # bumped with every new pair: the browser reloads both videos
    status = traitlets.Unicode("").tag(sync=True)
    done = traitlets.Bool(False).tag(sync=True)
    can_continue = traitlets.Bool(False).tag(sync=True)
    key_help = traitlets.Unicode(KEYS).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, session: JudgeSession, **kwargs: Any):
        super().__init__(**kwargs)
        self.session = session
        self.on_msg(self._on_msg)
        session.on_change(lambda _s: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        s = self.session
        with self.hold_sync():
            if s.pair is None:
                self.left, self.right = b"", b""
            else:
                self.left, self.right = s.video(s.pair.left), s.video(s.pair.right)
            self.done = s.done
            self.can_continue = s.done and s.target is not None
            self.status = s.status()
            self.pair = self.pair + 1

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        try:
            self.error = ""
            if content.get("more"):
                self.session.more()
            elif content.get("pair") != self.pair or self.session.done:
                self.refresh()  # a click on a pair already gone: show the current one again
            else:
                self.session.choose(str(content.get("choice")))
        except Exception as exc:  # a closed log, a deleted file: say so in the widget, keep it usable
            self.error = f"{type(exc).__name__}: {exc}"
            self.status = f"{self.session.status()} · error: {self.error}"


def judge_view(session: JudgeSession) -> JudgeWidget:
    """The widget a `JudgeSession` displays as (what `Lab.judge` passes to `judging.start` as `view`)."""
    return JudgeWidget(session)
