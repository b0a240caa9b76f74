// llmrelay dashboard: polls /admin/dashboard/data and draws tables and inline SVG charts.
// No framework and no network access beyond this gateway; the session cookie authenticates.
"use strict";

const POLL_MS = 5000;
const COLORS = ["#4aa3ff", "#3fb950", "#d29922", "#f85149", "#a371f7", "#39c5cf", "#ff7b72", "#7ee787"];
const SVG = "http://www.w3.org/2000/svg";

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function usd(v) {
  if (v === null || v === undefined) return "–";
  const n = Number(v);
  if (n === 0) return "$0";
  if (Math.abs(n) < 0.01) return "$" + n.toPrecision(3);
  return "$" + n.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

function num(v) { return v === null || v === undefined ? "–" : Number(v).toLocaleString(); }
function ms(v) { return v === null || v === undefined ? "–" : Number(v).toFixed(1) + " ms"; }

function table(headers, rows, numeric) {
  if (!rows.length) return el("p", { class: "empty" }, "nothing yet in this window");
  const head = el("tr", {}, ...headers.map((h, i) => el("th", numeric[i] ? { class: "num" } : {}, h)));
  const body = rows.map(r => el("tr", {}, ...r.map((c, i) => el("td", numeric[i] ? { class: "num" } : {}, c))));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...body));
}

function bar(fraction) {
  const f = Math.max(0, Math.min(1, fraction || 0));
  const cls = f >= 0.95 ? "bar bad" : f >= 0.8 ? "bar warn" : "bar";
  const span = el("span");
  span.style.width = (f * 100).toFixed(1) + "%";
  return el("div", { class: cls }, span);
}

function replace(id, node) { const box = $(id); box.replaceChildren(node); }

function failed(part) { return part && typeof part === "object" && "error" in part && Object.keys(part).length === 1; }

function tiles(usage) {
  const t = (usage && usage.totals) || {};
  const reqs = t.requests || 0;
  const saved = usage && usage.savings ? Object.values(usage.savings).reduce((a, s) => a + s.saved_usd, 0) : 0;
  const items = [
    ["Spend", usd(t.cost_usd || 0), "spend-total"], ["Requests", num(reqs), "requests-total"],
    ["Errors", num(t.errors || 0), "errors-total"],
    ["Tokens in / out", num(t.input_tokens || 0) + " / " + num(t.output_tokens || 0), "tokens-total"],
    ["Cache hits", num(t.cache_hits || 0), "cache-hits"], ["Saved", usd(saved), "saved-total"],
  ];
  $("tiles").replaceChildren(...items.map(([l, v, id]) =>
    el("div", { class: "tile" }, el("div", { class: "v", id }, v), el("div", { class: "l" }, l))));
}

function spendChart(series, hours, step, now) {
  const box = $("spend-chart");
  if (!Array.isArray(series) || !series.length) {
    box.replaceChildren(el("p", { class: "empty" }, "no spend in this window"));
    $("spend-legend").replaceChildren();
    return;
  }
  const models = [...new Set(series.map(p => p.model))];
  const start = Math.floor((now - hours * 3600) / step) * step;
  const n = Math.max(1, Math.ceil((now - start) / step));
  const stacks = models.map(() => new Array(n).fill(0));
  for (const p of series) {
    const i = Math.min(n - 1, Math.max(0, Math.floor((p.t - start) / step)));
    stacks[models.indexOf(p.model)][i] += p.cost_usd;
  }
  const totals = new Array(n).fill(0).map((_, i) => stacks.reduce((a, s) => a + s[i], 0));
  const max = Math.max(...totals) || 1;
  const W = 1000, H = 220, L = 60, B = 22;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img", "aria-label": "spend over time" });
  for (let g = 0; g <= 4; g++) {
    const y = (H - B) - (H - B - 8) * g / 4;
    root.append(svg("line", { x1: L, x2: W, y1: y, y2: y, stroke: "#26313d" }));
    const label = svg("text", { x: L - 6, y: y + 4, fill: "#8b98a5", "font-size": 11, "text-anchor": "end" });
    label.textContent = usd(max * g / 4);
    root.append(label);
  }
  const bw = (W - L) / n;
  const base = new Array(n).fill(0);
  stacks.forEach((s, m) => {
    s.forEach((v, i) => {
      if (!v) return;
      const h = (H - B - 8) * v / max, y = (H - B) - (H - B - 8) * base[i] / max - h;
      const rect = svg("rect", { x: L + i * bw + 0.5, y, width: Math.max(1, bw - 1), height: h, fill: COLORS[m % COLORS.length] });
      const tip = svg("title", {}); tip.textContent = `${models[m] || "(none)"}: ${usd(v)}`; rect.append(tip);
      root.append(rect);
      base[i] += v;
    });
  });
  for (const frac of [0, 0.5, 1]) {
    const t = new Date((start + frac * n * step) * 1000);
    const text = svg("text", { x: L + frac * (W - L), y: H - 6, fill: "#8b98a5", "font-size": 11,
      "text-anchor": frac === 0 ? "start" : frac === 1 ? "end" : "middle" });
    text.textContent = hours > 48 ? t.toLocaleDateString() : t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    root.append(text);
  }
  box.replaceChildren(root);
  $("spend-legend").replaceChildren(...models.map((m, i) => {
    const sw = el("i"); sw.style.background = COLORS[i % COLORS.length];
    return el("span", {}, sw, m || "(none)");
  }));
}

function spendTable(id, rows, label) {
  if (failed(rows)) return replace(id, el("p", { class: "error" }, rows.error));
  const list = rows || [];
  const total = list.reduce((a, r) => a + r.cost_usd, 0) || 1;
  replace(id, table([label, "Requests", "Tokens", "Spend", ""],
    list.map(r => [r.label ? `${r.label} (${r.name})` : (r.name ?? "(none)"), num(r.requests), num(r.input_tokens + r.output_tokens), usd(r.cost_usd), bar(r.cost_usd / total)]),
    [false, true, true, true, false]));
}

function budgets(list) {
  if (list === null) return replace("budgets", el("p", { class: "empty" }, "no budget manager"));
  if (failed(list)) return replace("budgets", el("p", { class: "error" }, list.error));
  replace("budgets", table(["Scope", "Period", "Spent", "Limit", "Used"],
    list.map(b => [b.scope + (b.id && b.id !== "*" ? ":" + b.id : ""), b.period_label || b.period, usd(b.spent_usd),
      usd(b.limit_usd), el("span", {}, bar(b.fraction), (100 * b.fraction).toFixed(1) + "%")]),
    [false, false, true, true, false]));
}

function savings(usage) {
  const s = (usage && usage.savings) || {};
  const rows = [["Cache hits", s.cached], ["Joined (dedup)", s.joined]].map(([l, v]) =>
    [l, num(v ? v.requests : 0), usd(v ? v.saved_usd : 0)]);
  replace("savings", table(["Source", "Requests", "Saved"], rows, [false, true, true]));
}

function latency(lat) {
  if (!lat || failed(lat)) return replace("latency", el("p", { class: "empty" }, lat ? lat.error : "no data"));
  const rows = [["all models", lat.all], ["time to first token", lat.ttft],
    ...Object.entries(lat.by_model).map(([m, v]) => [m, v])];
  replace("latency", table(["Model", "n", "p50", "p90", "p99"],
    rows.map(([m, v]) => [m, num(v.n), ms(v.p50), ms(v.p90), ms(v.p99)]), [false, true, true, true, true]));
}

function providers(list) {
  replace("providers", table(["Deployment", "Circuit", "In flight", "Latency", "OK", "Failed", "Last error"],
    (list || []).map(d => [d.deployment, el("span", { class: "badge " + d.circuit }, d.circuit.replace("_", "-")),
      num(d.in_flight), ms(d.latency_ms), num(d.successes), num(d.failures), d.last_error || ""]),
    [false, false, true, true, true, true, false]));
}

function audit(a) {
  if (a === null) return replace("audit", el("p", { class: "empty" }, "the audit log is off"));
  if (failed(a)) return replace("audit", el("p", { class: "error" }, a.error));
  const v = a.verify;
  const status = el("p", {}, "Audit chain: ",
    el("span", { class: "badge " + (v.ok ? "ok" : "bad"), id: "audit-status" }, v.ok ? "intact" : "broken"),
    ` ${num(v.checked)} entries checked` + (v.ok ? "" : `; first bad entry #${v.first_bad_id}: ${v.reason}`));
  const events = table(["Time", "Kind", "Details"], a.events.map(e => [new Date(e.ts * 1000).toLocaleString(), e.kind,
    summary(e.data)]), [false, false, false]);
  $("audit").replaceChildren(status, events);
}

function summary(data) {
  if (!data || typeof data !== "object") return String(data ?? "");
  const keep = ["action", "direction", "categories", "category", "trigger", "changed", "problems", "scope", "fraction", "model"];
  return keep.filter(k => k in data).map(k => `${k}: ${Array.isArray(data[k]) ? data[k].join(", ") : data[k]}`).join("  ·  ");
}

function config(c) {
  const box = $("config-alert");
  if (!c || (!c.config_error && !(c.restart_required || []).length)) { box.hidden = true; return; }
  box.hidden = false;
  box.className = c.config_error ? "alert" : "alert warn";
  box.textContent = c.config_error
    ? "The last config reload was refused; the previous config is still serving:\n" + c.config_error.join("\n")
    : "Waiting for a restart:\n" + c.restart_required.join("\n");
}

function render(d) {
  const u = failed(d.usage) ? null : d.usage;
  tiles(u);
  spendChart(u ? u.series : [], d.hours, d.step_s, d.now);
  for (const [id, key, label] of [["by-model", "by_model", "Model"], ["by-key", "by_key", "Key"],
    ["by-user", "by_user", "User"], ["by-team", "by_team", "Team"]]) spendTable(id, u ? u[key] : [], label);
  budgets(d.budgets); savings(u); latency(u ? u.latency : null); providers(d.providers); audit(d.audit); config(d.config);
  $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
}

let timer = null;

async function poll() {
  clearTimeout(timer);
  try {
    const res = await fetch("/admin/dashboard/data?hours=" + encodeURIComponent($("hours").value),
      { credentials: "same-origin", cache: "no-store" });
    if (res.status === 401 || res.status === 403) { window.location.reload(); return; }
    if (!res.ok) throw new Error("HTTP " + res.status);
    render(await res.json());
  } catch (err) {
    $("updated").textContent = "update failed: " + err.message;
  } finally {
    timer = setTimeout(poll, POLL_MS);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("hours").addEventListener("change", () => poll());
  poll();
});
