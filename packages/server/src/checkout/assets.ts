/**
 * The checkout's only style sheet and script, inlined into each page under its CSP nonce: no extra
 * request, nothing from another origin, a few kilobytes. Colours keep at least 4.5:1 contrast.
 */

export const CHECKOUT_CSS = `
*{box-sizing:border-box}
body{margin:0;background:#eef0f3;color:#1a1a1a;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.card{max-width:30rem;margin:1.5rem auto;padding:1.5rem;background:#fff;border-radius:.75rem;box-shadow:0 1px 3px #0002}
.merchant{display:flex;align-items:center;gap:.75rem}
.monogram{flex:none;display:grid;place-items:center;width:3rem;height:3rem;border-radius:50%;background:#1f3b73;color:#fff;font-size:1.4rem;font-weight:600}
.eyebrow{margin:0;color:#4a4a4a;font-size:.85rem}
h1{margin:0;font-size:1.3rem;line-height:1.3;overflow-wrap:anywhere}
h2{font-size:1.05rem;margin:1.25rem 0 .5rem}
.amount{margin:1rem 0 .25rem;font-size:2rem;font-weight:700;overflow-wrap:anywhere}
.amount span{font-size:1.2rem;font-weight:600;color:#4a4a4a}
.status{margin:.75rem 0;padding:.6rem .8rem;border-radius:.5rem;font-weight:600;background:#fff4d6;color:#5c4300}
[data-state=paid] .status{background:#e2f4e7;color:#0d5323}
[data-state=expired] .status,[data-state=canceled] .status{background:#fde8e8;color:#8a1c1c}
.qr{margin:1rem auto;text-align:center}
.qr svg{display:block;max-width:100%;height:auto;margin:0 auto}
.qr figcaption{color:#4a4a4a;font-size:.9rem}
.button{display:block;margin:.5rem 0 1rem;padding:.75rem 1rem;border-radius:.5rem;background:#1f3b73;color:#fff;text-align:center;font-weight:600;text-decoration:none}
.fields{margin:0}
.fields div{padding:.5rem 0;border-top:1px solid #e1e3e8}
.fields dt{color:#4a4a4a;font-size:.85rem}
.fields dd{margin:0;display:flex;align-items:center;justify-content:space-between;gap:.5rem}
code{font:.95rem/1.4 ui-monospace,Menlo,Consolas,monospace;overflow-wrap:anywhere}
button{flex:none;min-height:2rem;padding:.25rem .75rem;border:1px solid #1f3b73;border-radius:.4rem;background:#fff;color:#1f3b73;font:inherit;font-size:.9rem;cursor:pointer}
.warning{margin:1rem 0;padding:.75rem;border-left:4px solid #b45309;background:#fff7ed;color:#5a2a04}
.note,.help{color:#4a4a4a}
a{color:#1f3b73}
a:focus-visible,button:focus-visible{outline:3px solid #b45309;outline-offset:2px}
.settlement{margin-bottom:1rem}
footer{max-width:30rem;margin:0 auto 2rem;padding:0 1.5rem;font-size:.9rem}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:30rem){.card{margin:0;border-radius:0;padding:1rem}footer{padding:0 1rem}}
@media print{body{background:#fff}.card{box-shadow:none;margin:0;max-width:none}button,footer,.screen-only{display:none}a{color:inherit;text-decoration:none}}
`;

/**
 * Copy buttons, the countdown and live status: server-sent events, or polling `/status` when
 * EventSource is missing or the stream is refused. Without it the page still shows everything.
 */
export const CHECKOUT_JS = `
(() => {
  "use strict";
  const d = document;
  const notice = d.getElementById("notice");
  const reveal = () => d.querySelectorAll("button[data-copy],button[data-print]").forEach((b) => (b.hidden = false));
  d.addEventListener("click", (e) => {
    const b = e.target instanceof Element && e.target.closest("button");
    if (!b) return;
    if (b.hasAttribute("data-print")) return window.print();
    if (!b.hasAttribute("data-copy")) return;
    navigator.clipboard.writeText(b.dataset.copy).then(() => {
      const label = b.textContent;
      b.textContent = notice.textContent = b.dataset.copied;
      setTimeout(() => (b.textContent = label), 2000);
    }, () => {});
  });
  reveal();
  const main = d.getElementById("checkout");
  if (!main) return;
  // The Refresh link is for pages without a script (disabled, blocked, failed); this one updates itself.
  d.getElementById("refresh").hidden = true;
  const pad = (n) => String(n).padStart(2, "0");
  let deadline = 0;
  const tick = () => {
    const c = d.getElementById("countdown");
    if (!c) return;
    const s = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    c.textContent = (h ? h + ":" + pad(m) : m) + ":" + pad(s % 60);
  };
  const restart = () => {
    const c = d.getElementById("countdown");
    if (c) deadline = Date.now() + Number(c.dataset.secondsLeft) * 1000;
    tick();
  };
  let source, timer;
  const apply = (s) => {
    if (s.version === main.dataset.version) return;
    main.dataset.version = s.version;
    main.dataset.state = s.state;
    d.getElementById("status").textContent = s.message;
    d.getElementById("details").innerHTML = s.html;
    reveal();
    restart();
    if (s.state === "paid") {
      if (source) source.close();
      clearTimeout(timer);
    }
  };
  const poll = () =>
    fetch(main.dataset.poll, { cache: "no-store" })
      .then((r) => (r.ok ? r.json() : undefined))
      .then((s) => s && apply(s), () => {})
      .finally(() => main.dataset.state !== "paid" && (timer = setTimeout(poll, 3000)));
  restart();
  setInterval(tick, 1000);
  if (main.dataset.state === "paid") return;
  if (!window.EventSource) return void poll();
  source = new EventSource(main.dataset.live);
  source.addEventListener("status", (e) => apply(JSON.parse(e.data)));
  // A refused stream (too many open, a proxy that buffers) is closed for good; a dropped one reconnects by itself.
  source.onerror = () => source.readyState === EventSource.CLOSED && poll();
})();
`;
