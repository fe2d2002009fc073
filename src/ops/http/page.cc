#include "ops/http/page.h"

namespace tidemark::http {

const std::string_view kStatusPage = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tidemark</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2430; background: #f6f7f9; }
  h1 { font-size: 1.3rem; margin: 0 0 .8rem; }
  .state { display: inline-block; padding: .1rem .6rem; border-radius: 1rem; color: #fff; font-weight: 600; }
  .running { background: #2b8a3e; } .stopped { background: #6c757d; } .retrying, .paused { background: #e67700; }
  .stalled, .failed, .unknown { background: #c92a2a; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(15rem, 1fr)); gap: .8rem; margin: 1rem 0; }
  .card { background: #fff; border-radius: .5rem; padding: .7rem .9rem; box-shadow: 0 1px 2px #0002; }
  .card h2 { font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; color: #5c6775; margin: 0 0 .3rem; }
  .big { font-size: 1.5rem; font-weight: 600; }
  svg { width: 100%; height: 64px; display: block; margin-top: .3rem; }
  svg text { font: 10px system-ui, sans-serif; fill: #5c6775; }
  table { border-collapse: collapse; width: 100%; background: #fff; border-radius: .5rem; }
  td, th { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #eee; vertical-align: top; }
  .fail { color: #c92a2a; font-weight: 600; } .warn { color: #e67700; font-weight: 600; }
  .problem { background: #fff3bf; padding: .5rem .8rem; border-radius: .4rem; margin: .5rem 0; }
  .muted { color: #5c6775; }
  code { font-size: .9em; }
</style>
</head>
<body>
<h1>tidemark <span id="pipeline">…</span> <span id="state" class="state unknown">loading</span></h1>
<div id="reason" class="muted"></div>
<div id="problem" class="problem" hidden></div>
<div class="grid">
  <div class="card"><h2>Heartbeat age</h2><div class="big" id="age">–</div><svg id="chart-age"></svg></div>
  <div class="card"><h2>End-to-end lag</h2><div class="big" id="e2e">–</div><svg id="chart-e2e"></svg></div>
  <div class="card"><h2>Retained WAL</h2><div class="big" id="retained">–</div><svg id="chart-wal"></svg></div>
  <div class="card"><h2>Events</h2><div class="big" id="events">–</div><div class="muted" id="rate"></div><svg id="chart-rate"></svg></div>
</div>
<div class="grid">
  <div class="card"><h2>Sinks</h2><div id="sinks">–</div></div>
  <div class="card"><h2>Slot</h2><div id="slot">–</div></div>
  <div class="card"><h2>Positions</h2><div id="positions">–</div></div>
</div>
<h2 style="font-size:1rem">Checks <span class="muted" id="checked"></span></h2>
<div id="checks" class="muted">loading…</div>
<p class="muted">Updated <span id="updated">–</span> (times in UTC); refreshes every 2 s, the checks every 30 s. Charts: the last hour, from 0 up to the largest value shown.</p>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token");
const headers = token ? { Authorization: "Bearer " + token } : {};
const $ = (id) => document.getElementById(id);
const text = (id, v) => { $(id).textContent = v; };
function ms(v) { return v == null ? "–" : v < 1000 ? v + " ms" : (v / 1000).toFixed(1) + " s"; }
function bytes(v) {
  if (v == null) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(1) : v) + " " + u[i];
}
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]); }
function utc(iso) { return iso ? iso.slice(11, 19) : "–"; }
// A chart with its scale: the largest value at the top, 0 at the bottom, the time span below.
function spark(id, samples, key, fmt) {
  const svg = $(id), pts = samples.map((x, i) => [i, x[key]]).filter((p) => p[1] != null);
  if (pts.length < 2) { svg.innerHTML = ""; return; }
  const max = Math.max(...pts.map((p) => p[1]), 1), n = Math.max(samples.length - 1, 1);
  const top = 12, bottom = 50, left = 0, width = 300;
  const d = pts.map((p) => (left + p[0] / n * width).toFixed(1) + "," + (bottom - p[1] / max * (bottom - top)).toFixed(1)).join(" ");
  svg.setAttribute("viewBox", "0 0 300 64");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.innerHTML =
    '<line x1="0" y1="' + top + '" x2="300" y2="' + top + '" stroke="#e9ecef"/>' +
    '<line x1="0" y1="' + bottom + '" x2="300" y2="' + bottom + '" stroke="#ced4da"/>' +
    '<text x="2" y="' + (top - 2) + '">' + esc(fmt(max)) + '</text>' +
    '<text x="2" y="' + (bottom - 2) + '">0</text>' +
    '<text x="2" y="62">' + esc(utc(samples[0].t)) + '</text>' +
    '<text x="298" y="62" text-anchor="end">' + esc(utc(samples[samples.length - 1].t)) + ' UTC</text>' +
    '<polyline fill="none" stroke="#1c7ed6" stroke-width="2" points="' + d + '"/>';
}
async function get(path) {
  const r = await fetch(path, { headers, cache: "no-store" });
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}
async function refresh() {
  try {
    const s = await get("api/status");
    text("pipeline", s.pipeline);
    $("state").textContent = s.state; $("state").className = "state " + s.state;
    text("reason", (s.reason || "") + (s.retry ? " (attempt " + s.retry.attempt + ", retrying since " +
      utc(s.retry.since) + " UTC, gives up at " + utc(s.retry.gives_up_at) + " UTC)" : ""));
    const hb = s.heartbeat || {};
    $("problem").hidden = !hb.problem; text("problem", hb.problem || "");
    text("age", ms(hb.age_ms)); text("e2e", ms(hb.e2e_lag_ms));
    text("retained", bytes(s.slot && s.slot.retained_wal_bytes));
    text("events", (s.events && s.events.delivered) ?? "–");
    const p = s.progress || {};
    text("rate", (p.events_per_second != null ? p.events_per_second + " events/s" : "") +
                 (p.backlog_bytes ? ", " + bytes(p.backlog_bytes) + " behind" + (p.eta_seconds != null ? ", ~" + p.eta_seconds + " s to go" : "") : "") +
                 (s.snapshot ? "; initial snapshot " + s.snapshot.state + ": " + s.snapshot.rows +
                   (s.snapshot.estimated_rows != null ? " of ~" + s.snapshot.estimated_rows : "") + " rows, " +
                   s.snapshot.rows_per_second + " rows/s" +
                   (s.snapshot.state == "reading" && s.snapshot.eta_seconds != null ? ", ~" + s.snapshot.eta_seconds + " s to go" : "") : "") +
                 (s.incremental_snapshot ? "; incremental snapshot " + s.incremental_snapshot.id + " " +
                   s.incremental_snapshot.state + ": " + s.incremental_snapshot.rows + " rows" +
                   (s.incremental_snapshot.tables.length ? ", left: " +
                     s.incremental_snapshot.tables.map(t => t.table + " (" + t.rows + " rows)").join(", ") : "") : "") +
                 (s.signals && s.signals.refused ? "; " + s.signals.refused + " signal(s) refused, the last: " +
                   s.signals.last_error : ""));
    $("sinks").innerHTML = Object.entries(s.sinks || {}).map(([n, v]) => {
      const d = (hb.sinks || {})[n] || {};
      return "<div><b>" + esc(n) + "</b> " + esc(v.state) + ", " + esc(v.lag_records) + " records behind" +
        (v.lag_seconds ? " (" + esc(v.lag_seconds) + " s)" : "") + ", delivered lag " + ms(d.delivered_lag_ms) +
        (v.dead_letters ? ", <b>" + esc(v.dead_letters) + " in the dead letter queue</b>" : "") +
        (v.last_error ? "<div class='muted'>" + esc(v.last_error) + "</div>" : "") + "</div>";
    }).join("") + (s.log ? "<div class='muted'>change log " + bytes(s.log.size_bytes) + " of " + bytes(s.log.max_bytes) +
      (s.log.held_by ? ", held by " + esc(s.log.held_by) : "") + "</div>" : "") || "–";
    const sl = s.slot || {};
    $("slot").innerHTML = "<div><b>" + esc(sl.name) + "</b> " + esc(sl.wal_status ?? "") + (sl.active ? ", active" : "") +
      "</div><div class='muted'>confirmed " + esc(sl.confirmed_flush_lsn ?? "–") + ", restart " + esc(sl.restart_lsn ?? "–") + "</div>";
    const pos = s.positions || {};
    $("positions").innerHTML = "<div>durable " + esc(pos.durable_lsn ?? "–") + "</div><div>acknowledged " +
      esc(pos.acknowledged_lsn ?? "–") + "</div><div class='muted'>received " + esc(pos.received_lsn ?? "–") + "</div>";
    text("updated", utc(s.updated_at));
  } catch (e) {
    $("state").textContent = "unreachable"; $("state").className = "state unknown"; text("reason", String(e));
  }
  try {
    const h = (await get("api/history")).samples;
    spark("chart-age", h, "age_ms", ms); spark("chart-e2e", h, "e2e_lag_ms", ms);
    spark("chart-wal", h, "retained_wal_bytes", bytes);
    spark("chart-rate", h, "events_per_second", (v) => Math.round(v) + "/s");
  } catch (e) { /* charts wait for the next refresh */ }
}
async function refreshChecks() {
  try {
    const c = await get("api/checks");
    text("checked", c.checked_at ? "checked at " + utc(c.checked_at) + " UTC" : "");
    if (c.error) { text("checks", c.error); return; }
    const bad = c.checks.filter((x) => x.outcome !== "pass");
    $("checks").innerHTML = bad.length === 0
      ? "<span>all " + c.checks.length + " checks pass</span>"
      : "<table>" + bad.map((x) => "<tr><td class='" + x.outcome + "'>" + x.outcome.toUpperCase() + "</td><td><b>" +
          esc(x.title) + "</b><div>" + esc(x.saw) + "</div><div class='muted'>fix: <code>" + esc(x.fix) + "</code></div></td></tr>").join("") + "</table>";
  } catch (e) {
    text("checks", "checks unavailable: " + e.message);
    setTimeout(refreshChecks, 2000);  // 503 while the first run is going on
  }
}
refresh(); refreshChecks();
setInterval(refresh, 2000); setInterval(refreshChecks, 30000);
</script>
</body>
</html>
)HTML";

}  // namespace tidemark::http
