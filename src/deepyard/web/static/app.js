// Deepyard: shared helpers for every page (API calls with the CSRF header, formatting, charts, live events).
"use strict";
const DY = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  async function api(method, url, body, raw, signal) {
    const opts = { method, headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin", signal };
    if (body instanceof Blob || body instanceof ArrayBuffer) { opts.body = body; }
    else if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
    const res = await fetch(url, opts);
    if (!res.ok) {
      let message = res.status + " " + res.statusText;
      try { const e = await res.json(); message = e.error.message; } catch (_) { /* not JSON */ }
      const err = new Error(message); err.status = res.status; throw err;
    }
    if (raw) return res;
    return res.status === 204 ? null : res.json();
  }

  const fmt = {
    num: (v, d = 4) => (v === null || v === undefined ? "–" : Number(v).toFixed(d)),
    pct: (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(2) + "%"),
    secs: (v) => (v === null || v === undefined ? "–" : v < 90 ? v.toFixed(0) + " s" : (v / 60).toFixed(1) + " min"),
    bytes: (v) => (v / 1e9 >= 1 ? (v / 1e9).toFixed(1) + " GB" : (v / 1e6).toFixed(0) + " MB"),
    // An ISO timestamp (UTC, as the server writes them) as a local date and time: "14 Mar 2026, 10:02".
    date: (iso) => { const d = new Date(iso); return isNaN(d) ? String(iso) : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }); },
    // ... and how long ago: "just now", "2 minutes ago", "yesterday", "3 weeks ago".
    ago: (iso, now = Date.now()) => {
      const d = new Date(iso); if (isNaN(d)) return "";
      const s = (d.getTime() - now) / 1000, rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
      if (Math.abs(s) < 45) return "just now";
      const steps = [["minute", 60, 3600], ["hour", 3600, 86400], ["day", 86400, 604800], ["week", 604800, 2629800],
        ["month", 2629800, 31557600], ["year", 31557600, Infinity]];  // [unit, its seconds, used below]
      const [unit, n] = steps.find(([, , below]) => Math.abs(s) < below);
      return rtf.format(Math.round(s / n), unit);
    },
  };

  // <time datetime="ISO"> elements read "14 Mar 2026, 10:02 · 2 minutes ago" (the ISO text in the tooltip); the
  // "ago" part is refreshed every 30 s. Pages render timestamps as such elements, scripts make them with this.
  function showTime(el) {
    const iso = el.getAttribute("datetime"); if (!iso) return;
    el.textContent = `${fmt.date(iso)} · ${fmt.ago(iso)}`; el.title = iso; el.dataset.when = "1";
  }
  function timeElement(iso) { const el = document.createElement("time"); el.setAttribute("datetime", iso); showTime(el); return el; }
  const showTimes = (root = document) => root.querySelectorAll("time[datetime]").forEach(showTime);

  function sparkline(canvas, values) {
    const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    if (!values || values.length < 2) return;
    const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
    ctx.strokeStyle = "#2563eb"; ctx.lineWidth = 1.5; ctx.beginPath();
    values.forEach((v, i) => {
      const x = (i / (values.length - 1)) * (w - 2) + 1, y = h - 2 - ((v - lo) / span) * (h - 4);
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    ctx.stroke();
  }

  // A uPlot line chart: series = [{label, scale, color}], x is the first column of data.
  function chart(el, series, data, opts = {}) {
    const width = Math.max(320, el.clientWidth || 600);
    const axes = [{ label: opts.xlabel || "epoch" }, { scale: "y", label: opts.ylabel || "" }];
    const scales = { x: { time: false } };
    const pct = series.find((s) => s.scale === "acc");
    if (pct) {
      axes.push({ scale: "acc", side: 1, label: `${pct.label} (%)`, grid: { show: false } });
      scales.acc = { range: [0, 100] };
    }
    const other = series.find((s) => s.scale === "metric");
    if (other) {  // a task's headline that is not a percentage (R²): its own axis on the right
      axes.push({ scale: "metric", side: 1, label: other.label, grid: { show: false } });
      scales.metric = { auto: true };
    }
    if (opts.log) scales.y = { distr: 3 };
    const u = new uPlot({
      width, height: opts.height || 260, scales, axes,
      series: [{ label: opts.xlabel || "epoch" }, ...series.map((s) => ({
        label: s.label, scale: s.scale || "y", stroke: s.color, width: 2, spanGaps: true,
        points: { show: !!s.points, size: 5 } }))],
    }, data, el);
    return u;
  }

  function events(url, handlers) {
    const src = new EventSource(url);
    for (const [name, fn] of Object.entries(handlers)) src.addEventListener(name, (e) => fn(JSON.parse(e.data)));
    return src;
  }

  function hardware(h) {
    const el = document.getElementById("hw");
    if (el) el.textContent = `CPU ${h.cpu_percent.toFixed(0)}% · RAM ${fmt.bytes(h.memory_used)} / ${fmt.bytes(h.memory_total)}`
      + (h.gpus || []).map((g) => ` · GPU${g.index} ${g.utilization_percent.toFixed(0)}%`).join("");
  }

  function showError(id, err) {
    const el = document.getElementById(id);
    if (!el) return;
    if (err) { el.textContent = err.message || String(err); el.hidden = false; } else { el.hidden = true; el.textContent = ""; }
  }

  function tabs(root = document) {
    root.querySelectorAll(".tabs").forEach((bar) => bar.addEventListener("click", (e) => {
      const btn = e.target.closest(".tab"); if (!btn) return;
      const scope = bar.parentElement;
      bar.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t === btn));
      scope.querySelectorAll(":scope > .tabpane").forEach((p) => { p.hidden = p.dataset.pane !== btn.dataset.tab; });
      bar.dispatchEvent(new CustomEvent("tabchange", { detail: btn.dataset.tab }));
    }));
  }

  function debounce(fn, ms) { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; }

  // Forms marked data-csrf-form (sign out) post through fetch so that they carry the CSRF header.
  document.addEventListener("submit", async (e) => {
    const form = e.target.closest("form[data-csrf-form]"); if (!form) return;
    e.preventDefault();
    const res = await api("POST", form.action, undefined, true);
    window.location = res.url;
  });
  document.addEventListener("DOMContentLoaded", () => { tabs(); showTimes(); setInterval(showTimes, 30000); });

  return { api, fmt, sparkline, chart, events, hardware, showError, debounce, timeElement, showTimes };
})();
