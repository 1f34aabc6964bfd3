// jobwire dashboard: live counters and charts from the server-sent events of /live.
// Everything from the server is put in the page as text (textContent), never as markup.
// The server sends a sample at most once a second; the browser never polls.
(function () {
  "use strict";
  const MAX_POINTS = 300;
  const COLORS = ["#2b6cb0", "#b7791f", "#2f855a", "#c53030"];
  const body = document.body;
  const chartQueue = body.dataset.chartQueue || ""; // "" sums every queue
  const status = document.getElementById("live-status");
  const charts = [];

  function makeChart(el) {
    const fields = el.dataset.series.split(",");
    const data = [[], ...fields.map(() => [])];
    const opts = {
      width: Math.max(el.clientWidth, 300),
      height: 180,
      scales: { x: { time: true } },
      series: [{}, ...fields.map((f, i) => ({
        label: f.replace(/_/g, " "), stroke: COLORS[i % COLORS.length], width: 2,
      }))],
    };
    return { el, fields, data, plot: new uPlot(opts, data, el) };
  }

  function total(sample, field) {
    const queues = sample.queues || {};
    if (chartQueue) return Number((queues[chartQueue] || {})[field]) || 0;
    if (field in sample) return Number(sample[field]) || 0; // a total the server made
    let sum = 0;
    for (const [name, q] of Object.entries(sample.queues || {})) {
      if (chartQueue && name !== chartQueue) continue;
      sum += Number(q[field]) || 0;
    }
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
    const source = new EventSource(body.dataset.liveUrl);
    source.addEventListener("history", (event) => {
      for (const sample of JSON.parse(event.data)) push(sample);
      redraw();
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
      setStatus("● live", true);
      body.dataset.liveSamples = String((Number(body.dataset.liveSamples) || 0) + 1);
    };
    source.onerror = () => setStatus("○ reconnecting", false);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
