/* evolve ui: draws the pages from the JSON API and redraws them when the run changes.
   Every value from the database is set as text (never as HTML): program code and model
   replies are hostile. */
"use strict";
(function () {
  const body = document.body;
  const page = body.dataset.page;
  const run = body.dataset.run;
  const enc = encodeURIComponent;
  const runPath = run ? "/runs/" + enc(run) : "";
  const api = run ? "/api/runs/" + enc(run) : "/api/runs";

  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "text") node.textContent = v;
      else if (k === "cls") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) node.append(kid);
    return node;
  }
  const fmt = (v, digits) => (v === null || v === undefined) ? "-" :
    (typeof v === "number" ? (Number.isInteger(v) && !digits ? v.toLocaleString("en") : Number(v.toPrecision(digits || 8)).toString()) : String(v));
  const money = (v) => v ? "$" + Number(v.toPrecision(4)) : "$0";
  async function getJSON(url) {
    const r = await fetch(url, { headers: { accept: "application/json" } });
    if (!r.ok) throw new Error(url + ": " + r.status);
    return r.json();
  }
  function programLink(id, text) {
    return el("a", { href: runPath + "/programs/" + enc(id), text: text || id });
  }
  function stateBadge(o) {
    const kind = o.alive ? "alive" : (o.state || "").startsWith("stale") ? "stale" : o.status || "";
    return el("span", { cls: "badge " + kind, text: o.state || "" });
  }

  /* live updates: server-sent events; each 'change' redraws the page's data */
  function live(url, redraw) {
    const mark = document.getElementById("live");
    let busy = false, again = false;
    async function go() {
      if (busy) { again = true; return; }
      busy = true;
      try { await redraw(); } catch (e) { console.error(e); }
      busy = false;
      if (again) { again = false; go(); }
    }
    const source = new EventSource(url);
    source.addEventListener("open", () => mark && mark.classList.add("on"));
    source.addEventListener("error", () => mark && mark.classList.remove("on"));
    source.addEventListener("change", go);
    go();  // draw now; the stream's first event (the state it starts from) draws again
    return go;
  }

  /* charts (uPlot) */
  const palette = ["#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04", "#db2777"];
  const charts = {};
  function chart(id, series, data, opts) {
    const box = document.getElementById(id);
    if (!box) return;
    if (charts[id]) { charts[id].destroy(); delete charts[id]; }
    box.textContent = "";
    if (!data[0] || data[0].length === 0) { box.append(el("p", { cls: "muted", text: "nothing to draw yet" })); return; }
    const width = Math.max(260, box.clientWidth || 400);
    charts[id] = new uPlot({
      width, height: (opts && opts.height) || 240,
      scales: { x: { time: false }, y: (opts && opts.y) ? { range: opts.y } : {} },
      axes: [{ label: opts && opts.xLabel, size: 40 }, { size: 64 }],
      legend: { live: true },
      series: [{ label: (opts && opts.xLabel) || "x" }, ...series],
    }, data, box);
  }
  const steps = uPlot.paths.stepped({ align: 1 });
  const dots = (label, color) => ({ label, stroke: color, paths: () => null, points: { show: true, size: 4, fill: color, stroke: color } });
  const stepLine = (label, color) => ({ label, stroke: color, width: 2, paths: steps, points: { show: false }, spanGaps: true });
  function padded(range) {
    if (!range) return undefined;
    const pad = (range[1] - range[0]) * 0.06 || Math.abs(range[0]) * 0.01 || 1;
    return [range[0] - pad, range[1] + pad];
  }

  /* -- runs page ------------------------------------------------------------------------- */
  const overlaid = new Set();
  async function drawRuns() {
    const runs = await getJSON("/api/runs");
    const tbody = document.querySelector("#runs tbody");
    tbody.textContent = "";
    if (!runs.length) tbody.append(el("tr", {}, el("td", { colspan: 11, cls: "muted", text: "no runs yet: evolve run problem=..." })));
    for (const o of runs) {
      const box = el("input", { type: "checkbox", "data-run": o.id, "aria-label": "overlay " + o.id });
      box.checked = overlaid.has(o.id);
      box.addEventListener("change", () => { box.checked ? overlaid.add(o.id) : overlaid.delete(o.id); drawOverlay(); });
      tbody.append(el("tr", { "data-run": o.id },
        el("td", {}, box),
        el("td", {}, el("a", { href: "/runs/" + enc(o.id), text: o.id })),
        el("td", { text: o.problem || "-" }),
        el("td", {}, stateBadge(o)),
        el("td", { cls: "num", text: fmt(o.best_score) }),
        el("td", { cls: "num", text: fmt(o.best_known) }),
        el("td", { cls: "num", text: o.gap_to_best_known === null || o.gap_to_best_known === undefined ? "-" : fmt(o.gap_to_best_known, 4) }),
        el("td", { cls: "num", text: o.iterations === undefined ? "-" : fmt(o.iterations) + (o.max_iterations ? " / " + fmt(o.max_iterations) : "") }),
        el("td", { cls: "num", text: o.cost_usd ? money(o.cost_usd) : (o.tokens ? fmt(o.tokens) + " tok" : "-") }),
        el("td", { text: o.owner || "-" }),
        el("td", { text: o.updated_at ? o.updated_at.slice(0, 19).replace("T", " ") : "-" })));
    }
    await drawOverlay();
  }
  async function drawOverlay() {
    const ids = [...overlaid];
    document.getElementById("overlay-hint").hidden = ids.length > 0;
    if (!ids.length) { chart("overlay", [], [[]]); document.getElementById("overlay").textContent = ""; return; }
    const all = await Promise.all(ids.map((id) => getJSON("/api/runs/" + enc(id) + "/charts")));
    const xs = [...new Set(all.flatMap((c) => c.iteration.x))].sort((a, b) => a - b);
    const data = [xs];
    for (const c of all) {
      const ys = []; let k = 0, cur = null;
      for (const x of xs) {
        while (k < c.iteration.x.length && c.iteration.x[k] <= x) { const b = c.iteration.best[k++]; if (b !== null) cur = b; }
        ys.push(cur);
      }
      data.push(ys);
    }
    chart("overlay", ids.map((id, i) => stepLine(id, palette[i % palette.length])), data, { xLabel: "iteration", height: 300 });
  }

  /* -- run page -------------------------------------------------------------------------- */
  function stat(key, label, value, extra) {
    return el("div", { cls: "stat", "data-key": key }, el("span", { text: label }), value instanceof Node ? el("b", {}, value) : el("b", { text: value }), extra ? el("small", { text: extra }) : null);
  }
  async function drawRun() {
    const [o, c, a, m] = await Promise.all([getJSON(api), getJSON(api + "/charts"), getJSON(api + "/archive"), getJSON(api + "/models")]);
    const state = document.getElementById("state");
    state.replaceWith(Object.assign(stateBadge(o), { id: "state" }));
    const ov = document.getElementById("overview");
    ov.textContent = "";
    const gap = o.gap_to_best_known === null ? null : fmt(o.gap_to_best_known, 4) + " to best known";
    ov.append(
      stat("best", "best " + o.primary, o.best_id ? programLink(o.best_id, fmt(o.best_score)) : "-", o.direction),
      stat("best-known", "best known", fmt(o.best_known), gap || o.best_known_source || ""),
      stat("iterations", "iterations", fmt(o.iterations) + (o.max_iterations ? " / " + fmt(o.max_iterations) : "")),
      stat("cost", "cost", money(o.cost_usd), fmt(o.tokens) + " tokens"),
      stat("problem", "problem", o.problem, o.problem_error || ""),
      stat("owner", "owner", o.owner || "nobody", o.stop_reason || ""),
      stat("started", "started", (o.created_at || "").slice(0, 16).replace("T", " "), "updated " + (o.updated_at || "").slice(0, 19).replace("T", " ")));
    const y = padded(c.y_range);
    chart("chart-iteration", [dots("score", "#94a3b8"), stepLine("best", "#16a34a")], [c.iteration.x, c.iteration.score, c.iteration.best], { xLabel: "iteration", y });
    chart("chart-time", [stepLine("best", "#2563eb")], [c.time.x, c.time.best], { xLabel: "seconds", y });
    const unit = c.spend.unit === "usd" ? "dollars" : "tokens";
    document.getElementById("spend-title").textContent = "over " + unit;
    chart("chart-spend", [stepLine("best", "#9333ea")], [c.spend.x, c.spend.best], { xLabel: unit, y });
    const kinds = Object.keys(c.failures.series);
    const bars = uPlot.paths.bars({ size: [0.7, 48] });
    if (kinds.length) chart("chart-failures", kinds.map((k, i) => ({ label: k, stroke: palette[(i + 3) % palette.length], fill: palette[(i + 3) % palette.length] + "99", width: 1, paths: bars, points: { show: false } })),
      [c.failures.x, ...kinds.map((k) => c.failures.series[k])], { xLabel: "iteration", height: 220 });
    document.getElementById("failures-note").textContent = kinds.length
      ? "failed programs per " + c.failures.width + " iterations" : "no failed programs";
    const mt = document.querySelector("#models tbody");
    mt.textContent = "";
    for (const r of m) {
      mt.append(el("tr", {}, el("td", { text: r.model }), ...[r.calls, r.errors, r.retried, r.input_tokens, r.output_tokens].map((v) => el("td", { cls: "num", text: fmt(v) })),
        el("td", { cls: "num", text: fmt(r.cost_usd, 4) }), el("td", { cls: "num", text: fmt(r.mean_latency_s, 3) }),
        ...[r.children, r.failed, r.improved].map((v) => el("td", { cls: "num", text: fmt(v) })),
        el("td", { cls: "num", text: fmt(r.usd_per_improvement, 4) })));
    }
    drawArchive(a);
    await drawCommands();
  }
  function drawArchive(a) {
    const box = document.getElementById("archive");
    box.textContent = "";
    document.getElementById("archive-axes").textContent = a.dimensions.length
      ? "x: " + a.dimensions[0] + (a.dimensions[1] ? ", y: " + a.dimensions[1] : "") + " · darker is better · click a cell for its elite"
      : "the problem declares no feature dimensions: one cell per island";
    const size = Math.max(4, Math.min(26, Math.floor(360 / Math.max(a.x_bins, a.y_bins))));
    for (const isl of a.islands) {
      const fits = isl.cells.map((c) => a.maximize ? c.score : -c.score);
      const lo = fits.reduce((a, b) => Math.min(a, b), Infinity), hi = fits.reduce((a, b) => Math.max(a, b), -Infinity);
      const grid = el("div", { cls: "heat", "data-island": isl.island });
      grid.style.gridTemplateColumns = `repeat(${a.x_bins}, ${size}px)`;
      grid.style.gridTemplateRows = `repeat(${a.y_bins}, ${size}px)`;
      isl.cells.forEach((c, i) => {
        const t = hi > lo ? (fits[i] - lo) / (hi - lo) : 1;
        const cell = el("a", { href: runPath + "/programs/" + enc(c.id), title: `cell (${c.x}, ${c.y}): ${fmt(c.score)} · ${c.id}`, "data-program": c.id });
        cell.style.gridColumn = String(c.x + 1);
        cell.style.gridRow = String(a.y_bins - c.y);
        cell.style.background = `rgb(${Math.round(220 - 200 * t)},${Math.round(236 - 120 * t)},${Math.round(245 - 170 * t)})`;
        grid.append(cell);
      });
      box.append(el("figure", { cls: "map" }, grid, el("figcaption", { text: `island ${isl.island}: ${isl.cells.length} / ${a.x_bins * a.y_bins} cells` })));
    }
  }

  /* control: commands go through the run's database; its controller applies them and records the outcome */
  async function drawCommands() {
    const rows = await getJSON(api + "/commands");
    const tb = document.querySelector("#commands tbody");
    tb.textContent = "";
    if (!rows.length) tb.append(el("tr", {}, el("td", { colspan: 6, cls: "muted", text: "no commands sent" })));
    for (const r of rows) {
      tb.append(el("tr", {}, el("td", { text: String(r.id) }), el("td", { text: r.kind }), el("td", { text: JSON.stringify(r.args) }),
        el("td", { text: r.source }), el("td", { text: r.created_at.slice(0, 19).replace("T", " ") }),
        el("td", { text: r.applied_at ? `${r.applied_at.slice(0, 19).replace("T", " ")}: ${r.outcome || ""}` : "not yet" })));
    }
  }
  async function send(kind, args) {
    const csrf = document.querySelector("meta[name=evolve-csrf]").content;
    const r = await fetch(api + "/commands", {
      method: "POST", headers: { "content-type": "application/json", "x-evolve-csrf": csrf },
      body: JSON.stringify({ kind, args: args || {} }),
    });
    const answer = await r.json();
    document.getElementById("control-result").textContent = r.ok
      ? `command #${answer.id} (${answer.kind}) sent; a live run applies it within a second`
      : `refused: ${answer.error}`;
    await drawCommands();
  }
  function controlPanel() {
    if (!document.getElementById("control")) return;
    for (const b of document.querySelectorAll("[data-command]")) b.addEventListener("click", () => send(b.dataset.command));
    const form = document.getElementById("budget-form");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const args = {};
      if (form.elements.max_iterations.value !== "") args.max_iterations = parseInt(form.elements.max_iterations.value, 10);
      if (form.elements.max_cost_usd.value !== "") args.max_cost_usd = parseFloat(form.elements.max_cost_usd.value);
      send("budget", args);
    });
    const file = document.getElementById("inject-file");
    file.addEventListener("change", async () => { if (file.files[0]) await send("inject", { code: await file.files[0].text() }); file.value = ""; });
  }

  /* -- programs page --------------------------------------------------------------------- */
  async function drawPrograms() {
    const params = new URLSearchParams(location.search);
    const form = document.getElementById("filters");
    for (const [k, v] of params) if (form.elements[k]) form.elements[k].value = v;
    const q = new URLSearchParams([...params].filter(([, v]) => v !== ""));
    const res = await getJSON(api + "/programs?" + q);
    const st = document.getElementById("f-status"), md = document.getElementById("f-model");
    if (st.options.length === 1) {
      for (const s of Object.keys(res.statuses).sort()) st.append(el("option", { value: s, text: `${s} (${res.statuses[s]})` }));
      for (const mname of res.models) md.append(el("option", { value: mname, text: mname }));
      st.value = params.get("status") || ""; md.value = params.get("model") || "";
    }
    document.getElementById("found").textContent = `${fmt(res.total)} programs match` + (res.total > res.limit ? `, showing ${res.offset + 1}–${Math.min(res.total, res.offset + res.limit)}` : "");
    const tb = document.querySelector("#programs tbody");
    tb.textContent = "";
    for (const p of res.programs) {
      tb.append(el("tr", {}, el("td", { cls: "num", text: fmt(p.iteration) }), el("td", {}, programLink(p.id)),
        el("td", {}, el("span", { cls: "badge status-" + p.status, text: p.status })), el("td", { cls: "num", text: fmt(p.score) }),
        el("td", { cls: "num", text: fmt(p.island) }), el("td", { cls: "num", text: fmt(p.generation) }), el("td", { text: p.model || "-" }),
        el("td", {}, p.parent_id ? programLink(p.parent_id) : "-")));
    }
    const page = (off) => { const n = new URLSearchParams(params); n.set("offset", String(off)); return "?" + n; };
    const prev = document.getElementById("prev"), next = document.getElementById("next");
    prev.hidden = res.offset <= 0; prev.href = page(Math.max(0, res.offset - res.limit));
    next.hidden = res.offset + res.limit >= res.total; next.href = page(res.offset + res.limit);
  }

  /* -- lineage page ---------------------------------------------------------------------- */
  function lineagePage() {
    const canvas = document.getElementById("graph");
    const tip = document.getElementById("tip");
    const ctx = canvas.getContext("2d");
    let g = null, hidden = new Uint8Array(0), collapsed = new Set(), kids = [];
    let onPath = new Uint8Array(0);
    let view = { sx: 1, sy: 1, ox: 0, oy: 0 };
    const R = 3.5;
    function resize() {
      const dpr = window.devicePixelRatio || 1;
      canvas.width = canvas.clientWidth * dpr; canvas.height = canvas.clientHeight * dpr;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    }
    function fit() {
      const w = canvas.clientWidth, h = canvas.clientHeight, m = 24;
      let maxX = 1, maxY = 1;  // a loop, not Math.max(...): no argument-count limit at any size
      for (let k = 0; k < g.n; k++) { if (g.x[k] > maxX) maxX = g.x[k]; if (g.y[k] > maxY) maxY = g.y[k]; }
      view = { sx: (w - 2 * m) / maxX, sy: (h - 2 * m) / maxY, ox: m, oy: m };
      draw();
    }
    const sx = (k) => g.x[k] * view.sx + view.ox;
    const sy = (k) => g.y[k] * view.sy + view.oy;
    function color(k) {
      const s = g.status[k];
      if (s === "evaluated") {
        const f = g.maximize ? g.score[k] : -g.score[k];
        const t = g.hi > g.lo ? Math.max(0, (f - g.lo) / (g.hi - g.lo)) : 1;
        return `rgb(${Math.round(187 - 170 * t)},${Math.round(247 - 119 * t)},${Math.round(208 - 147 * t)})`;
      }
      if (s === "duplicate") return "#9ca3af";
      if (s === "pending") return "#f59e0b";
      return "#ef4444";
    }
    function draw() {
      if (!g) return;
      const w = canvas.clientWidth, h = canvas.clientHeight;
      ctx.clearRect(0, 0, w, h);
      ctx.lineWidth = 1; ctx.strokeStyle = "rgba(100,116,139,.35)";
      ctx.beginPath();
      for (let k = 0; k < g.n; k++) {
        const p = g.parent[k];
        if (p < 0 || hidden[k]) continue;
        ctx.moveTo(sx(p), sy(p)); ctx.lineTo(sx(k), sy(k));
      }
      ctx.stroke();
      ctx.lineWidth = 3; ctx.strokeStyle = "#f97316";
      ctx.beginPath();
      for (let i = 1; i < g.path.length; i++) { ctx.moveTo(sx(g.path[i - 1]), sy(g.path[i - 1])); ctx.lineTo(sx(g.path[i]), sy(g.path[i])); }
      ctx.stroke();
      for (let k = 0; k < g.n; k++) {
        if (hidden[k]) continue;
        const x = sx(k), y = sy(k);
        if (x < -5 || y < -5 || x > w + 5 || y > h + 5) continue;
        ctx.fillStyle = color(k);
        ctx.beginPath(); ctx.arc(x, y, onPath[k] ? R + 1.5 : R, 0, 6.2832); ctx.fill();
        if (onPath[k]) { ctx.lineWidth = 2; ctx.strokeStyle = "#f97316"; ctx.stroke(); }
        if (collapsed.has(k)) { ctx.lineWidth = 1.5; ctx.strokeStyle = "#111827"; ctx.beginPath(); ctx.arc(x, y, R + 3, 0, 6.2832); ctx.stroke(); }
      }
    }
    function recomputeHidden() {
      hidden = new Uint8Array(g.n);
      for (const c of collapsed) {
        const stack = [...kids[c]];
        while (stack.length) { const k = stack.pop(); if (!hidden[k]) { hidden[k] = 1; stack.push(...kids[k]); } }
      }
    }
    function nearest(mx, my) {
      let best = -1, bd = 64;
      for (let k = 0; k < g.n; k++) {
        if (hidden[k]) continue;
        const dx = sx(k) - mx, dy = sy(k) - my, d = dx * dx + dy * dy;
        if (d < bd) { bd = d; best = k; }
      }
      return best;
    }
    const pos = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    let drag = null, moved = false;
    canvas.addEventListener("mousedown", (e) => { drag = pos(e); moved = false; canvas.style.cursor = "grabbing"; });
    window.addEventListener("mouseup", () => { drag = null; canvas.style.cursor = "grab"; });
    canvas.addEventListener("mousemove", (e) => {
      const [mx, my] = pos(e);
      if (drag) {
        if (Math.abs(mx - drag[0]) + Math.abs(my - drag[1]) > 2) moved = true;
        view.ox += mx - drag[0]; view.oy += my - drag[1]; drag = [mx, my]; draw(); return;
      }
      const k = g ? nearest(mx, my) : -1;
      if (k < 0) { tip.hidden = true; return; }
      tip.hidden = false;
      tip.textContent = `#${g.iteration[k]} · ${g.id[k]} · ${g.status[k]}` + (g.score[k] !== null ? ` · ${g.primary} ${fmt(g.score[k])}` : "") + ` · island ${g.island[k]}` + (kids[k].length ? ` · ${kids[k].length} children` : "");
      tip.style.left = (canvas.offsetLeft + mx + 12) + "px"; tip.style.top = (canvas.offsetTop + my + 12) + "px";
    });
    canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [mx, my] = pos(e), f = Math.exp(-e.deltaY * 0.0015);
      view.ox = mx - (mx - view.ox) * f; view.oy = my - (my - view.oy) * f; view.sx *= f; view.sy *= f; draw();
    }, { passive: false });
    let clickTimer = null;
    canvas.addEventListener("click", (e) => {
      if (moved || !g) return;
      const k = nearest(...pos(e));
      if (k < 0) return;
      clearTimeout(clickTimer);
      clickTimer = setTimeout(() => { location.href = runPath + "/programs/" + enc(g.id[k]); }, 250);
    });
    canvas.addEventListener("dblclick", (e) => {
      clearTimeout(clickTimer);
      const k = g ? nearest(...pos(e)) : -1;
      if (k < 0 || !kids[k].length) return;
      collapsed.has(k) ? collapsed.delete(k) : collapsed.add(k);
      recomputeHidden(); draw();
    });
    document.getElementById("fit").addEventListener("click", fit);
    document.getElementById("expand").addEventListener("click", () => { collapsed.clear(); recomputeHidden(); draw(); });
    document.getElementById("focus-best").addEventListener("click", () => {
      collapsed.clear();
      for (let k = 0; k < g.n; k++) if (!onPath[k] && kids[k].length && (g.parent[k] < 0 || onPath[g.parent[k]])) collapsed.add(k);
      recomputeHidden(); draw();
    });
    window.addEventListener("resize", () => { resize(); draw(); });
    /* for tests and for scripts: where a program's node is drawn, relative to the canvas */
    window.evolveLineage = { nodeAt: (id) => { const k = g.id.indexOf(id); return k < 0 ? null : [sx(k), sy(k)]; }, size: () => (g ? g.n : 0) };
    let first = true;
    return async function redraw() {
      const data = await getJSON(api + "/lineage");
      const n = data.id.length;
      const fits = [];
      for (let k = 0; k < n; k++) if (data.score[k] !== null) fits.push(data.maximize ? data.score[k] : -data.score[k]);
      fits.sort((a, b) => a - b);
      g = { ...data, n, lo: fits.length ? fits[Math.floor(fits.length / 20)] : 0, hi: fits.length ? fits[fits.length - 1] : 1 };
      kids = Array.from({ length: n }, () => []);
      for (let k = 0; k < n; k++) if (g.parent[k] >= 0) kids[g.parent[k]].push(k);
      onPath = new Uint8Array(n); for (const k of g.path) onPath[k] = 1;
      recomputeHidden();
      document.getElementById("lineage-count").textContent = `${fmt(n)} programs`;
      const ol = document.getElementById("path");
      ol.textContent = "";
      for (const k of g.path) ol.append(el("li", {}, programLink(g.id[k], `#${g.iteration[k]} ${g.id[k]}` + (g.score[k] !== null ? ` (${fmt(g.score[k])})` : ""))));
      if (first) { resize(); fit(); first = false; } else draw();
    };
  }

  const pages = {
    runs: () => live("/api/events", drawRuns),
    run: () => { controlPanel(); live(api + "/events", drawRun); },
    programs: () => live(api + "/events", drawPrograms),
    lineage: () => live(api + "/events", lineagePage()),
  };
  if (pages[page]) pages[page]();
})();
