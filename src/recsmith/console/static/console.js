// recsmith console: hash-routed pages over the admin API (README: Web console).
"use strict";

const KEY = "recsmith-admin-key";
const $ = (id) => document.getElementById(id);
const pages = ["overview", "releases", "drift", "fairness", "rules", "preview"];

function key() { return sessionStorage.getItem(KEY); }

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${key()}`, ...(options.headers || {}) },
  });
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (response.status === 401 || response.status === 403) {
    sessionStorage.removeItem(KEY);
    showLogin(body?.detail || `refused (${response.status})`);
    throw new Error("not logged in");
  }
  if (!response.ok) throw new Error(body?.detail ? JSON.stringify(body.detail) : `HTTP ${response.status}`);
  return body;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "-" : String(text);
  if (cls) td.className = cls;
  return td;
}

function fill(table, rows) {
  const body = $(table).querySelector("tbody");
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    tr.append(...cells);
    return tr;
  }));
}

const num = (v, digits = 4) => (v === null || v === undefined || Number.isNaN(v) ? "-" : Number(v).toPrecision(digits));

function showLogin(reason) {
  $("nav").hidden = true;
  for (const p of pages) $(`page-${p}`).hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = reason || "";
}

const kpiRow = (g) => [
  cell(g.group), cell(g.lists, "num"), cell(g.impressions, "num"), cell(g.users, "num"),
  cell(num(g.ctr), "num"), cell(num(g.conversion), "num"), cell(num(g.revenue_per_user), "num"),
];

// events per minute (a bar per minute, the current one last), dead letters and latency
function showFigures(o) {
  const counts = o.events_per_minute.counts;
  const total = counts.reduce((a, b) => a + b, 0);
  const peak = Math.max(0, ...counts);
  $("ov-events").textContent = `${total} events, ${counts[counts.length - 1]} this minute, peak ${peak} per minute`;
  const svg = "http://www.w3.org/2000/svg";
  $("ov-events-chart").replaceChildren(...counts.map((n, i) => {
    const bar = document.createElementNS(svg, "rect");
    const h = peak ? (20 * n) / peak : 0;
    for (const [k, v] of Object.entries({ x: i, y: 20 - h, width: 0.8, height: h })) bar.setAttribute(k, v);
    bar.dataset.count = n;
    return bar;
  }));
  $("ov-dead").textContent = `${o.dead_letters.count} refused records`;
  $("ov-dead-latest").replaceChildren(...o.dead_letters.latest.map((d) => {
    const li = document.createElement("li");
    li.textContent = `${d.received_at} ${d.source}: ${d.reasons.join("; ")}`;
    return li;
  }));
  const l = o.latency;
  const ms = (v) => (v === null ? "-" : `${v.toFixed(2)} ms`);
  $("ov-latency").textContent = l.requests
    ? `p50 ${ms(l.p50_ms)}, p99 ${ms(l.p99_ms)} over ${l.requests} requests since start`
    : "no requests yet";
}

async function overview() {
  const [releases, kpis, variants, figures] = await Promise.all([
    api("/v1/admin/releases").catch(() => null),
    api("/v1/admin/kpis?since=7d&by=release"),
    api("/v1/admin/kpis?since=7d&by=variant"),
    api("/v1/admin/overview"),
  ]);
  showFigures(figures);
  $("ov-serving").textContent = releases ? `${releases.serving ?? "nothing"} (current: ${releases.current ?? "none"})` : "no registry";
  try {
    const report = await api("/v1/admin/monitor?since=1d");
    $("ov-monitor").textContent = `${report.status} over ${report.window_events} events in the last day`;
  } catch (e) {
    $("ov-monitor").textContent = `not available: ${e.message}`;
  }
  fill("ov-kpis", kpis.groups.map(kpiRow));
  fill("ov-variants", variants.groups.map(kpiRow));
  $("ov-kpis-note").textContent = kpis.groups.length ? "" : "no lists served in the last 7 days";
}

async function releases(message) {
  const r = await api("/v1/admin/releases");
  $("rel-current").textContent = r.current ?? "none";
  $("rel-serving").textContent = r.serving ?? "nothing";
  $("rollback").disabled = r.history.length === 0;
  fill("rel-table", r.releases.slice().reverse().map((row) => {
    const action = document.createElement("td");
    if (!row.current) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Deploy";
      button.dataset.version = row.version;
      button.addEventListener("click", () => act(`deploy ${row.version}`, `/v1/admin/releases/${encodeURIComponent(row.version)}/deploy`));
      action.append(button);
    }
    return [cell(row.current ? "current" : ""), cell(row.version), cell(row.kind), cell(row.created_at), action];
  }));
  $("rel-message").textContent = message || "";
}

async function act(what, path) {
  if (!window.confirm(`Really ${what}? Every server follows within a second.`)) return;
  try {
    const done = await api(path, { method: "POST" });
    await releases(`${done.version} is current (was ${done.previous ?? "nothing"})`);
  } catch (e) {
    $("rel-message").textContent = `${what} refused: ${e.message}`;
  }
}

async function drift(event) {
  event?.preventDefault();
  const since = $("drift-since").value.trim() || "1d";
  const report = await api(`/v1/admin/monitor?since=${encodeURIComponent(since)}`);
  $("drift-summary").textContent = `${report.version}: ${report.status}, ${report.window_events} events since ${report.since}`;
  fill("drift-table", report.signals.map((s) => [
    cell(s.name), cell(num(s.value), "num"), cell(s.status, `status-${s.status}`),
    cell(num(s.warn), "num"), cell(num(s.alert), "num"), cell(s.note),
  ]));
  // each ranker feature's PSI (sampled by the servers), worst first, judged as feature_psi is
  const signal = report.signals.find((s) => s.name === "feature_psi");
  const features = Object.entries(report.feature_psi || {});
  const level = (v) => (signal.alert !== null && v >= signal.alert ? "alert"
    : signal.warn !== null && v >= signal.warn ? "warn" : "ok");
  fill("drift-features", features.map(([name, v]) => [
    cell(name), cell(num(v), "num"), cell(level(v), `status-${level(v)}`),
  ]));
  $("drift-features-note").textContent = features.length ? "" : `No feature PSI: ${signal.note}`;
}

async function fairness(event) {
  event?.preventDefault();
  const params = new URLSearchParams({
    since: $("fairness-since").value.trim() || "30d",
    item_groups: $("fairness-groups").value.trim() || "category",
  });
  const r = await api(`/v1/admin/fairness?${params}`);
  const pct = (v) => (v === null || v === undefined ? "-" : `${(100 * v).toFixed(1)} %`);
  $("fair-lists").textContent = `${r.lists} (${r.window}, groups: ${r.grouping})`;
  $("fair-gini").textContent = num(r.exposure.gini, 3);
  $("fair-shown").textContent = pct(r.exposure.catalogue_shown);
  $("fair-calibration").textContent = `${num(r.calibration.mean, 3)} over ${r.calibration.lists} lists`;
  const n = r.narrowing;
  $("fair-narrowing").textContent = `${pct(n.share_narrowing)} of ${n.units} users (median ratio ${num(n.median, 3)}, last ${n.last} lists vs the ${n.last} before)`;
  fill("fair-groups", Object.entries(r.exposure.group_share).map(([g, share]) => [cell(g), cell(pct(share), "num")]));
  fill("fair-parity", Object.entries(r.parity).map(([bucket, p]) => [
    cell(bucket), cell(p.units, "num"), cell(p.lists, "num"), cell(num(p.outcomes_per_list), "num"), cell(num(p.miscalibration), "num"),
  ]));
  $("fair-notes").replaceChildren(...r.notes.map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
}

async function preview(event) {
  event?.preventDefault();
  const user = $("preview-user").value.trim();
  if (!user) return;
  const params = new URLSearchParams({ k: $("preview-k").value || "10" });
  const recent = $("preview-recent").value.trim();
  const placement = $("preview-placement").value.trim();
  if (recent) params.set("recent", recent);
  if (placement) params.set("placement", placement);
  const id = encodeURIComponent(user);
  const [history, list] = await Promise.all([
    api(`/v1/admin/users/${id}/history`),
    api(`/v1/users/${id}/recommendations?${params}`),
  ]);
  const shown = [...history.recent, ...history.items.filter((i) => !history.recent.includes(i))];
  $("preview-history").replaceChildren(...shown.map((i) => {
    const li = document.createElement("li");
    li.textContent = i;
    return li;
  }));
  $("preview-meta").textContent = `${list.model_version} · tier ${list.tier ?? "-"} · fallback ${list.fallback ?? "none"}` +
    (list.degraded?.length ? ` · degraded: ${list.degraded.join(", ")}` : "");
  fill("preview-list", list.items.map((item, n) => [
    cell(n + 1, "num"), cell(item.item_id), cell(num(item.score), "num"),
    cell((item.sources || []).join(", ")), cell(item.reason),
  ]));
}

function showRuleErrors(errors) {
  if (errors.length) showRuleWarnings([]);
  $("rules-errors").replaceChildren(...errors.map((e) => {
    const li = document.createElement("li");
    li.textContent = `${e.field}: ${e.reason}`;
    return li;
  }));
}

async function rules(message) {
  const r = await api("/v1/admin/rules");
  $("rules-meta").textContent = r.current_version
    ? `Version ${r.current_version}, set by ${r.set_by} at ${r.set_at}` : "Never set: the pipeline's rules apply.";
  $("rules-text").value = JSON.stringify(r.rules, null, 2);
  $("rules-pipeline").textContent = r.pipeline ? JSON.stringify(r.pipeline, null, 2) : "a single model: no rules";
  fill("rules-history", r.history.map((h) => [
    cell(h.version, "num"), cell(h.set_at), cell(h.set_by), cell(h.pipeline_rules ? "the pipeline's rules" : ""),
  ]));
  $("rules-message").textContent = typeof message === "string" ? message : "";
  showRuleErrors([]);
}

// PUT, POST (validate) or DELETE /v1/admin/rules with the textarea's file: JSON when it starts
// with "{" (as the page shows it), else TOML (as `recsmith rules set` reads it), parsed by the
// server; a refusal lists the rule and field the server named, a warning what matches no item
async function sendRules(method, path) {
  showRuleErrors([]);
  $("rules-message").textContent = "";
  const text = $("rules-text").value.trim() || "{}";
  const type = text.startsWith("{") ? "application/json" : "application/toml";
  const options = method === "DELETE" ? { method } : { method, body: text, headers: { "Content-Type": type } };
  try {
    const r = await api(path, options);
    showRuleWarnings(r.warnings || []);
    return r;
  } catch (e) {
    let detail = e.message;
    try { detail = JSON.parse(e.message); } catch { /* plain text */ }
    showRuleErrors(Array.isArray(detail) ? detail : [{ field: "rules", reason: String(detail) }]);
    return null;
  }
}

function showRuleWarnings(warnings) {
  $("rules-warnings").replaceChildren(...warnings.map((w) => {
    const li = document.createElement("li");
    li.textContent = `${w.field}: ${w.message}`;
    return li;
  }));
}

async function validateRules() {
  const r = await sendRules("POST", "/v1/admin/rules/validate");
  if (r) $("rules-message").textContent = "Valid: Save applies it everywhere within a second.";
}

async function saveRules() {
  const r = await sendRules("PUT", "/v1/admin/rules");
  if (r) await rules(`Saved as version ${r.version}.`);
}

async function resetRules() {
  if (!window.confirm("Really go back to the pipeline's own rules? Every server follows within a second.")) return;
  const r = await sendRules("DELETE", "/v1/admin/rules");
  if (r) await rules(`Version ${r.version}: the pipeline's rules.`);
}

const loaders = { overview, releases, drift, fairness, rules, preview: async () => {} };
// pages kept in their own files (experiments.js, …), loaded before this one
for (const [name, load] of Object.entries(window.consolePages || {})) { pages.push(name); loaders[name] = load; }

async function route() {
  if (!key()) return showLogin();
  const page = pages.includes(location.hash.slice(1)) ? location.hash.slice(1) : "overview";
  $("login").hidden = true;
  $("nav").hidden = false;
  for (const p of pages) $(`page-${p}`).hidden = p !== page;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === page);
  $("error").textContent = "";
  try {
    await loaders[page]();
  } catch (e) {
    if (e.message !== "not logged in") $("error").textContent = e.message;
  }
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("key").value.trim());
  $("key").value = "";
  await route();
});
$("logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); showLogin(); });
$("rollback").addEventListener("click", () => act("roll back", "/v1/admin/rollback"));
$("drift-form").addEventListener("submit", (e) => drift(e).catch((err) => { $("error").textContent = err.message; }));
$("fairness-form").addEventListener("submit", (e) => fairness(e).catch((err) => { $("error").textContent = err.message; }));
$("rules-validate").addEventListener("click", () => validateRules().catch((err) => { $("error").textContent = err.message; }));
$("rules-save").addEventListener("click", () => saveRules().catch((err) => { $("error").textContent = err.message; }));
$("rules-reset").addEventListener("click", () => resetRules().catch((err) => { $("error").textContent = err.message; }));
$("preview-form").addEventListener("submit", (e) => preview(e).catch((err) => { $("error").textContent = err.message; }));
window.addEventListener("hashchange", route);
route();
