// The question page's history chart (uPlot, vendored): community aggregate, the Bayesian
// aggregate's 90% band, the market price, the reader's own forecasts, close and resolution
// markers; ranges; the community number refreshes while the page is open. The data comes from
// /questions/<id>/history.json; the page keeps a table and an SVG for readers without JavaScript.
(() => {
  const figure = document.querySelector("[data-chart-url]");
  if (!figure || typeof uPlot === "undefined") return;
  const canvas = figure.querySelector("[data-chart-canvas]");
  const status = figure.querySelector("[data-chart-status]");
  const community = document.querySelector("[data-community-value]");
  // The design system's colours (site.css tokens), with fallbacks if a token is missing.
  const token = (name, fallback) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  const COLOURS = {
    community: token("--color-accent", "#0b5cad"),
    bayes: "#7a3fa0",
    market: token("--color-chart-2", "#c46a00"),
    mine: token("--color-yes", "#17703f"),
    options: ["#1f4e8c", "#c2570c", "#17803d", "#b3261e", "#7a3fa0", "#0f766e", "#8a6d00", "#5b5b5b"],
  };
  const REFRESH_MS = 30000;
  let range = figure.dataset.range || "all";
  let plot = null;
  let lastJson = "";

  const dayMonth = uPlot.fmtDate("{D} {MMM}");
  const hourMinute = uPlot.fmtDate("{D} {MMM} {HH}:{mm}");
  // Days on a span of days; hours too when the span is shorter than two days.
  const tickLabel = (u, t) => {
    const short = u.scales.x.max - u.scales.x.min < 2 * 86400;
    return (short ? hourMinute : dayMonth)(uPlot.tzDate(new Date(t * 1e3), "Etc/UTC"));
  };
  const pct = (v) => (v == null ? "–" : `${Math.round(v * 1000) / 10}%`);

  // Each series is a step function: at every x it holds its latest value at or before x.
  function stepAt(times, values, xs) {
    const out = new Array(xs.length).fill(null);
    let j = -1;
    for (let i = 0; i < xs.length; i++) {
      while (j + 1 < times.length && times[j + 1] <= xs[i]) j++;
      if (j >= 0) out[i] = values[j];
    }
    return out;
  }

  function build(data) {
    const q = data.question;
    const end = q.resolved_at || data.now; // a resolved question's lines stop at its resolution
    const xsSet = new Set();
    data.series.forEach((s) => s.t.forEach((t) => xsSet.add(t)));
    if (data.mine) data.mine.t.forEach((t) => xsSet.add(t));
    // From the first forecast (a question opened long before its first forecast has nothing to draw
    // there), or from the chosen range's start.
    const start = data.since || (xsSet.size ? Math.min(...xsSet) : q.opens_at);
    xsSet.add(start);
    xsSet.add(Math.min(end, Math.max(q.closes_at, start)));
    xsSet.add(end);
    const xs = [...xsSet].filter((t) => t >= start && t <= end).sort((a, b) => a - b);
    const columns = [xs];
    const series = [{ label: "Time (UTC)", value: "{D} {MMM} {YYYY} {HH}:{mm}" }];
    const bands = [];
    const binary = q.type === "binary";
    data.series.forEach((s, i) => {
      const colour = binary ? COLOURS[s.key] || COLOURS.options[i % 8] : COLOURS.options[i % 8];
      if (s.low) {
        const hi = columns.push(stepAt(s.t, s.high, xs)) - 1;
        series.push({ label: "90% interval, high", stroke: "transparent", points: { show: false }, value: (u, v) => pct(v) });
        const lo = columns.push(stepAt(s.t, s.low, xs)) - 1;
        series.push({ label: "90% interval, low", stroke: "transparent", points: { show: false }, value: (u, v) => pct(v) });
        bands.push({ series: [hi, lo], fill: "rgba(122, 63, 160, 0.15)" });
      }
      columns.push(stepAt(s.t, s.v, xs));
      series.push({
        label: s.label,
        stroke: colour,
        width: s.key === "community" || !binary ? 2.5 : 1.75,
        dash: s.key === "bayes" ? [6, 4] : undefined,
        paths: uPlot.paths.stepped({ align: 1 }),
        points: { show: false },
        value: (u, v) => pct(v),
      });
    });
    if (data.mine && data.mine.t.length) {
      const mine = new Array(xs.length).fill(null);
      data.mine.t.forEach((t, k) => { mine[xs.indexOf(t)] = data.mine.v[k]; });
      columns.push(mine);
      series.push({
        label: data.mine.label,
        stroke: COLOURS.mine,
        fill: COLOURS.mine,
        paths: () => null,
        points: { show: true, size: 9, fill: COLOURS.mine },
        value: (u, v) => pct(v),
      });
    }
    return { columns, series, bands, q };
  }

  function markers(q) {
    const marks = [{ t: q.closes_at, label: "Closes", colour: "#5b5b5b" }];
    if (q.resolved_at) marks.push({ t: q.resolved_at, label: `Resolved: ${q.outcome}`, colour: "#b3261e" });
    return (u) => {
      const { ctx } = u;
      const top = u.bbox.top;
      const bottom = u.bbox.top + u.bbox.height;
      marks.forEach((m) => {
        if (m.t < u.scales.x.min || m.t > u.scales.x.max) return;
        const x = Math.round(u.valToPos(m.t, "x", true));
        ctx.save();
        ctx.strokeStyle = m.colour;
        ctx.setLineDash([4, 4]);
        ctx.lineWidth = uPlot.pxRatio;
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, bottom);
        ctx.stroke();
        ctx.fillStyle = m.colour;
        ctx.font = `${12 * uPlot.pxRatio}px system-ui, sans-serif`;
        ctx.textAlign = x > u.bbox.left + u.bbox.width / 2 ? "right" : "left";
        ctx.fillText(m.label, x + (ctx.textAlign === "left" ? 4 : -4) * uPlot.pxRatio, top + 14 * uPlot.pxRatio);
        ctx.restore();
      });
    };
  }

  function render(data) {
    const { columns, series, bands, q } = build(data);
    const width = Math.max(280, canvas.clientWidth);
    const options = {
      width,
      height: width < 500 ? 220 : 280,
      series,
      bands,
      scales: { x: { time: true }, y: { range: [0, 1] } },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"), // the page speaks UTC
      axes: [
        { stroke: "#444", grid: { stroke: "#eee" }, values: (u, ticks) => ticks.map((t) => tickLabel(u, t)) },
        { stroke: "#444", grid: { stroke: "#eee" }, values: (u, ticks) => ticks.map((v) => `${Math.round(v * 100)}%`), size: 48 },
      ],
      legend: { live: true },
      cursor: { points: { size: 7 } },
      hooks: { draw: [markers(q)] },
    };
    if (plot) plot.destroy();
    canvas.textContent = "";
    plot = new uPlot(options, columns, canvas);
    window.questionChart = plot; // for the browser tests and the curious: the live uPlot instance
  }

  function updateCommunity(data) {
    if (!community) return;
    const s = data.series.find((x) => x.key === "community");
    if (s && s.v.length) community.textContent = pct(s.v[s.v.length - 1]);
  }

  async function load(quiet) {
    if (!quiet && status) status.textContent = "Loading…";
    try {
      const response = await fetch(`${figure.dataset.chartUrl}?range=${encodeURIComponent(range)}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-cache", // a refresh must see forecasts made since the last one
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const text = await response.text();
      if (quiet && text === lastJson) return;
      lastJson = text;
      const data = JSON.parse(text);
      render(data);
      updateCommunity(data);
      if (status) status.textContent = "";
    } catch (error) {
      if (status) status.textContent = "The chart could not be loaded. The table below has its data.";
    }
  }

  figure.querySelectorAll("[data-range]").forEach((button) => {
    button.addEventListener("click", () => {
      range = button.dataset.range;
      figure.querySelectorAll("[data-range]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      load(false);
    });
  });
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (plot) plot.setSize({ width: Math.max(280, canvas.clientWidth), height: canvas.clientWidth < 500 ? 220 : 280 }); }, 150);
  });
  // The reader's own forecast, saved in place by htmx, appears on the chart at once.
  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.xhr && event.detail.xhr.status < 400) load(true);
  });
  // Others' forecasts move the community: refresh while the page is visible.
  setInterval(() => { if (document.visibilityState === "visible") load(true); }, REFRESH_MS);
  load(false);
})();
