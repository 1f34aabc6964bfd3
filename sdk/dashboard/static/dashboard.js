// jobwire dashboard: live counters, charts and recent events from the server-sent events of
// /live, and the per-minute stats of /api/stats. Everything from the server is put in the page
// as text (textContent), never as markup. The server pushes at most once a second; the browser
// never polls (it re-reads the stats after jobs finished, at most once every 10 s).
(function () {
  "use strict";
  const MAX_POINTS = 300;
  const MAX_EVENTS = 25;
  const STATS_EVERY_MS = 10000;
  const ENDINGS = new Set(["succeeded", "failed", "aborted", "retried", "dead_lettered"]);
  const COLORS = ["#2b6cb0", "#b7791f", "#2f855a", "#c53030"];
  const STAT_COLORS = { success: "#2f855a", failed: "#c53030", retried: "#b7791f",
    dead_lettered: "#553c9a", p50: "#2b6cb0", p95: "#c05621" };
  const body = document.body;
  const chartQueue = body.dataset.chartQueue || ""; // "" sums every queue
  const status = document.getElementById("live-status");
  const charts = [];
  const statCharts = [];
  let statsAsked = 0;
  let statsTimer = null;

  function plot(el, labels, colors, data, gaps) {
    const opts = {
      width: Math.max(el.clientWidth, 300),
      height: 180,
      scales: { x: { time: true } },
      series: [{}, ...labels.map((f, i) => ({
        label: f.replace(/_/g, " "), stroke: colors[i], width: 2,
        spanGaps: Boolean(gaps), points: { show: gaps ? true : undefined },
      }))],
    };
    return new uPlot(opts, data, el);
  }

  function makeChart(el) {
    const fields = el.dataset.series.split(",");
    const data = [[], ...fields.map(() => [])];
    const colors = fields.map((f, i) => COLORS[i % COLORS.length]);
    return { el, fields, data, plot: plot(el, fields, colors, data) };
  }

  function makeStatChart(el) {
    const fields = el.dataset.stats.split(",");
    const data = [[], ...fields.map(() => [])];
    const gaps = fields.some((f) => f.startsWith("p")); // durations: none in an idle minute
    return { el, fields, plot: plot(el, fields, fields.map((f) => STAT_COLORS[f]), data, gaps) };
  }

  function total(sample, field) {
    const queues = sample.queues || {};
    if (chartQueue) return Number((queues[chartQueue] || {})[field]) || 0;
    let sum = 0;
    for (const q of Object.values(queues)) sum += Number(q[field]) || 0;
    return sum;
  }

  function push(sample) {
    if (!sample.queues) return;
    for (const c of charts) {
      c.data[0].push(sample.t / 1000);
      c.fields.forEach((f, i) => c.data[i + 1].push(total(sample, f)));
      if (c.data[0].length > MAX_POINTS) c.data.forEach((series) => series.shift());
    }
  }

  function redraw() {
    for (const c of charts) c.plot.setData(c.data);
  }

  function loadStats() {
    statsTimer = null;
    statsAsked = Date.now();
    fetch(body.dataset.statsUrl, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error("stats: " + r.status))))
      .then((stats) => {
        for (const c of statCharts) c.plot.setData([stats.t, ...c.fields.map((f) => stats[f])]);
        body.dataset.statsLoads = String((Number(body.dataset.statsLoads) || 0) + 1);
      })
      .catch(() => setStatus("○ stats unavailable", false));
  }

  function statsSoon() { // after jobs finished: at most once every 10 s
    if (!statCharts.length || statsTimer !== null) return;
    statsTimer = setTimeout(loadStats, Math.max(0, statsAsked + STATS_EVERY_MS - Date.now()));
  }

  function cellOf(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }

  function describe(e) {
    if (e.progress) {
      const pct = Math.round(Number(e.progress.value) * 100);
      return pct + " %" + (e.progress.message ? " · " + e.progress.message : "");
    }
    const parts = [];
    if (e.duration !== null && e.duration !== undefined) parts.push(Number(e.duration).toFixed(3) + " s");
    if (e.worker) parts.push(e.worker);
    if (e.info) parts.push(e.info);
    return parts.join(" · ");
  }

  function addEvents(events) {
    const table = document.querySelector("#recent-events tbody");
    let ended = false;
    for (const e of events) {
      if (chartQueue && e.queue !== chartQueue) continue;
      if (ENDINGS.has(e.type)) ended = true;
      if (e.progress) updateProgress(e);
      if (!table) continue;
      const row = document.createElement("tr");
      row.className = "event-" + String(e.type).replace(/[^a-z_]/g, "");
      cellOf(row, new Date(e.t).toLocaleTimeString());
      cellOf(row, e.queue);
      cellOf(row, e.type);
      cellOf(row, e.job_id);
      cellOf(row, e.function);
      cellOf(row, e.try === null || e.try === undefined ? "" : String(e.try));
      cellOf(row, describe(e));
      table.insertBefore(row, table.firstChild);
      while (table.rows.length > MAX_EVENTS) table.deleteRow(table.rows.length - 1);
    }
    const none = document.getElementById("recent-events-none");
    if (none && table && table.rows.length) none.hidden = true;
    if (ended) statsSoon();
  }

  function updateProgress(e) {
    for (const el of document.querySelectorAll("[data-progress-job]")) {
      if (el.dataset.progressJob !== e.job_id || el.dataset.progressQueue !== e.queue) continue;
      el.textContent = describe(e);
    }
  }

  function updateCounters(sample) {
    const queues = sample.queues || {};
    for (const el of document.querySelectorAll("[data-live-field]")) {
      const q = Object.prototype.hasOwnProperty.call(queues, el.dataset.liveQueue)
        ? queues[el.dataset.liveQueue] : null;
      if (!q) continue;
      const field = el.dataset.liveField;
      if (field === "paused") {
        el.textContent = q.paused ? "paused" : "active";
        el.className = q.paused ? "paused" : "running";
      } else if (field in q) {
        el.textContent = String(q[field]);
      }
    }
  }

  function setStatus(text, ok) {
    if (!status) return;
    status.textContent = text;
    status.className = "live-status " + (ok ? "ok" : "bad");
  }

  function start() {
    for (const el of document.querySelectorAll(".chart[data-series]")) charts.push(makeChart(el));
    for (const el of document.querySelectorAll(".chart[data-stats]")) statCharts.push(makeStatChart(el));
    if (statCharts.length) loadStats();
    const source = new EventSource(body.dataset.liveUrl);
    source.addEventListener("history", (event) => {
      const backlog = JSON.parse(event.data);
      for (const sample of backlog.samples || []) push(sample);
      redraw();
      addEvents(backlog.events || []);
    });
    source.onmessage = (event) => {
      const sample = JSON.parse(event.data);
      if (sample.error) {
        setStatus("● Redis: " + sample.error, false);
        return;
      }
      push(sample);
      redraw();
      updateCounters(sample);
      addEvents(sample.events || []);
      setStatus("● live", true);
      body.dataset.liveSamples = String((Number(body.dataset.liveSamples) || 0) + 1);
    };
    source.onerror = () => setStatus("○ reconnecting", false);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
