"""The fixed parts of the selection page: its template, style, script and CSP.

Kept apart from :mod:`detreduce.report.html` so the builder reads in one sitting. The
script builds the thumbnail grids from the page's JSON block (each thumbnail is stored
once, however many classes show it), links thumbnails and map points on hover, and logs
``READY_MARKER`` with the number of thumbnails once it has run to the end (the browser
test waits for exactly that line and no other console message).
"""

from __future__ import annotations

CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="detreduce show">
<title>{title}</title>
<style>{css}</style></head>
<body>
{body}
<div id="peek" hidden></div>
<noscript><p class="note warn">Thumbnails are drawn by the page's script: enable JavaScript.</p></noscript>
<script type="application/json" id="detreduce-data">{data}</script>
<script>{js}</script>
</body></html>
"""

CSS = """
:root { --ink: #1d2733; --muted: #5b6875; --line: #d9dee4; --kept: #1f5f99; --drop: #b24a3b; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  margin: 0 auto; padding: 14px 16px 48px; max-width: 1400px; background: #fbfcfd; }
h1 { font-size: 21px; margin: 4px 0 10px; } h2 { font-size: 17px; margin: 18px 0 8px; }
h3 { font-size: 15px; margin: 14px 0 6px; } h4 { font-size: 13px; margin: 4px 0; color: var(--muted); }
dl.meta { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 2px 14px;
  margin: 0; font-size: 13px; }
dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; overflow-wrap: anywhere; }
table.classes { border-collapse: collapse; font-size: 13px; }
table.classes th, table.classes td { padding: 2px 10px; border-bottom: 1px solid var(--line);
  text-align: right; } table.classes th:first-child, table.classes td:first-child { text-align: left; }
a { color: inherit; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 5px;
  vertical-align: -1px; }
.row { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; }
.charts { display: grid; grid-template-columns: repeat(2, auto); gap: 4px 12px; }
svg text { font: 11px system-ui, sans-serif; fill: var(--ink); }
svg .title { font-weight: 600; } svg .tick, svg .axis { fill: var(--muted); }
svg .grid { stroke: var(--line); stroke-width: 1; } svg .frame { fill: #fff; stroke: var(--line); }
circle.pt { cursor: pointer; } circle.pt.hot { r: 8; stroke: #000; stroke-width: 2.2; }
.caption { color: var(--muted); font-size: 12px; max-width: 640px; }
.note { background: #eef3f8; padding: 6px 10px; border-radius: 4px; max-width: 900px; }
.warn { background: #fbeee0; }
.sides { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.side { border-top: 3px solid var(--kept); padding-top: 2px; }
.side.dropped { border-top-color: var(--drop); }
.grid { display: flex; flex-wrap: wrap; gap: 4px; }
figure.thumb { margin: 0; width: 132px; padding: 1px; border-radius: 3px; background: #fff;
  border: 1px solid var(--line); }
figure.thumb.dropped img { opacity: 0.8; }
figure.thumb.hot { outline: 3px solid #000; }
figure.thumb img { display: block; margin: 0 auto; max-width: 128px; max-height: 128px; }
figure.thumb figcaption { font-size: 10px; color: var(--muted); white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }
.missing { width: 128px; height: 96px; background: #eee; color: var(--muted); font-size: 11px;
  display: flex; align-items: center; justify-content: center; }
details.problems { margin: 4px 0; } details.problems ul { margin: 4px 0; font-size: 12px; }
#peek { position: fixed; pointer-events: none; background: #fff; border: 1px solid var(--ink);
  padding: 3px; font-size: 11px; z-index: 10; max-width: 260px; }
#peek img { display: block; }
"""

JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("detreduce-data").textContent);
  var built = 0;
  document.querySelectorAll(".grid[data-group]").forEach(function (grid) {
    var group = data.groups[Number(grid.dataset.group)];
    var side = grid.dataset.side;
    group[side].forEach(function (i) {
      var t = data.thumbs[String(i)] || { name: String(i), src: null };
      var fig = document.createElement("figure");
      fig.className = "thumb " + side;
      fig.dataset.i = String(i);
      fig.title = t.name + " (" + side + ")";
      if (t.src) {
        var img = document.createElement("img");
        img.src = t.src; img.width = t.w; img.height = t.h; img.alt = t.name;
        fig.appendChild(img);
      } else {
        var box = document.createElement("div");
        box.className = "missing"; box.textContent = "cannot read image";
        fig.appendChild(box);
      }
      var cap = document.createElement("figcaption");
      cap.textContent = t.name;
      fig.appendChild(cap);
      grid.appendChild(fig);
      built += 1;
    });
  });
  var points = {};
  document.querySelectorAll("circle.pt").forEach(function (p) { points[p.dataset.i] = p; });
  var peek = document.getElementById("peek");
  function mark(i, on) {
    var p = points[i];
    if (p) { p.classList.toggle("hot", on); if (on) p.parentNode.appendChild(p); }
    document.querySelectorAll('figure.thumb[data-i="' + i + '"]').forEach(function (f) {
      f.classList.toggle("hot", on);
    });
  }
  document.addEventListener("mouseover", function (e) {
    var el = e.target.closest ? e.target.closest("[data-i]") : null;
    if (!el) return;
    mark(el.dataset.i, true);
    var t = data.thumbs[el.dataset.i];
    if (el.tagName.toLowerCase() === "circle" && t && t.src) {
      peek.innerHTML = "";
      var img = document.createElement("img"); img.src = t.src;
      var cap = document.createElement("div"); cap.textContent = t.name;
      peek.appendChild(img); peek.appendChild(cap);
      peek.style.left = (e.clientX + 14) + "px"; peek.style.top = (e.clientY + 14) + "px";
      peek.hidden = false;
    }
  });
  document.addEventListener("mouseout", function (e) {
    var el = e.target.closest ? e.target.closest("[data-i]") : null;
    if (el) mark(el.dataset.i, false);
    peek.hidden = true;
  });
  document.addEventListener("click", function (e) {
    var el = e.target.closest ? e.target.closest("circle.pt") : null;
    if (!el) return;
    var f = document.querySelector('figure.thumb[data-i="' + el.dataset.i + '"]');
    if (f) f.scrollIntoView({ behavior: "smooth", block: "center" });
  });
  document.body.dataset.thumbnails = String(built);
  console.log(READY_MARKER, built);
})();
"""
