"""The page script and style sheet (served as ``/static/app.js``; inlined in the report).

The script draws every ``div.chart`` from its embedded JSON figure, and on a page with
``data-poll`` fetches that same-origin JSON every few seconds: ``figs`` (chart id -> figure) are
redrawn with ``Plotly.react``, ``text`` values set as ``textContent`` of ``[data-text=key]``
elements, and ``rows`` (table id -> list of rows) rebuild a table body cell by cell with
``textContent`` (a cell ``{"href", "text"}`` becomes a link); nothing is ever parsed as HTML.
When ``text.state`` changes to ``finished`` the page reloads to show the final result.
``window.hwnasCharts`` counts the charts drawn (for tests).
"""

from __future__ import annotations

APP_JS = r"""
(function () {
  "use strict";
  var CONFIG = {responsive: true, displaylogo: false};
  var POLL_MS = 1500;
  window.hwnasCharts = 0;
  window.hwnasPolls = 0;
  function draw(div, fig) {
    Plotly.react(div, fig.data, fig.layout, CONFIG);
  }
  function drawAll() {
    var divs = document.querySelectorAll("div.chart[data-fig]");
    for (var i = 0; i < divs.length; i++) {
      var src = document.getElementById(divs[i].getAttribute("data-fig"));
      if (src) { draw(divs[i], JSON.parse(src.textContent)); window.hwnasCharts += 1; }
    }
  }
  function fillTable(id, rows) {
    var table = document.getElementById(id);
    if (!table) { return; }
    var body = table.tBodies[0];
    while (body.firstChild) { body.removeChild(body.firstChild); }
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      row.forEach(function (cell) {
        var td = document.createElement("td");
        if (cell !== null && typeof cell === "object" && cell.href) {
          var a = document.createElement("a");
          a.setAttribute("href", cell.href);
          a.textContent = String(cell.text);
          td.appendChild(a);
        } else {
          td.textContent = cell === null ? "-" : String(cell);
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }
  function apply(p) {
    var figs = p.figs || {};
    Object.keys(figs).forEach(function (id) {
      var div = document.getElementById("chart-" + id);
      if (div) { draw(div, figs[id]); }
    });
    var text = p.text || {};
    Object.keys(text).forEach(function (key) {
      var els = document.querySelectorAll("[data-text]");
      for (var i = 0; i < els.length; i++) {
        if (els[i].getAttribute("data-text") === key) { els[i].textContent = String(text[key]); }
      }
    });
    var rows = p.rows || {};
    Object.keys(rows).forEach(function (id) { fillTable(id, rows[id]); });
    window.hwnasPolls += 1;
    var state = document.body.getAttribute("data-state");
    if (state && state !== "finished" && text.state === "finished") { window.location.reload(); }
  }
  function poll(url) {
    fetch(url, {cache: "no-store"}).then(function (r) { return r.json(); }).then(apply)
      .catch(function () {}).then(function () { setTimeout(function () { poll(url); }, POLL_MS); });
  }
  function start() {
    drawAll();
    var url = document.body.getAttribute("data-poll");
    if (url) { setTimeout(function () { poll(url); }, POLL_MS); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
"""

STYLE_CSS = """
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
nav{background:#2c3e50;padding:.5em 1em}nav a{color:#ecf0f1;margin-right:1.2em;text-decoration:none}
nav a.active{font-weight:bold;text-decoration:underline}
main{padding:1em 2em}h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.5em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#eee}td{max-width:48em;overflow-wrap:anywhere}
.chart{background:#fff;border:1px solid #ddd;margin:.5em 0;min-height:360px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:1em}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;font-size:.9em}dt{font-weight:bold}
dd{margin:0;overflow-wrap:anywhere}form{margin:.5em 0}form label{margin-right:1em}
.note{color:#666;font-size:.9em}.state-running{color:#27ae60;font-weight:bold}
"""
