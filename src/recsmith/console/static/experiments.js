// recsmith console, Experiments page: the registry's experiments, and one's report with its
// 95 % intervals (GET /v1/admin/experiments, /v1/admin/experiments/{name}/report).
// Loaded before console.js, which routes to it (window.consolePages) and lends it api, fill,
// cell, num and $ when the page opens.
"use strict";

(() => {
  const section = document.createElement("section");
  section.id = "page-experiments";
  section.className = "page";
  section.hidden = true;
  section.innerHTML = `
    <h1>Experiments</h1>
    <table id="exp-table"><thead><tr><th>name</th><th>status</th><th>variants (share of units)</th>
      <th>unit</th><th>placement</th><th>started</th><th></th></tr></thead><tbody></tbody></table>
    <p id="exp-note" class="note"></p>
    <div id="exp-report" hidden>
      <h2 id="exp-title"></h2>
      <p id="exp-verdict"></p>
      <table id="exp-variants"><thead><tr><th>variant</th><th>units</th><th>impressions</th>
        <th>CTR [95 % CI]</th><th>conversion [95 % CI]</th><th>revenue / unit [95 % CI]</th></tr></thead><tbody></tbody></table>
      <h2>Lift against the control</h2>
      <table id="exp-comparisons"><thead><tr><th>metric</th><th>variant</th><th>lift</th>
        <th>95 % CI</th><th>p</th><th>always-valid p</th></tr></thead><tbody></tbody></table>
      <h2>Guardrails</h2>
      <table id="exp-guardrails"><thead><tr><th>guardrail</th><th>variant</th><th>status</th><th>detail</th></tr></thead><tbody></tbody></table>
      <p id="exp-srm" class="note"></p>
    </div>`;
  document.querySelector("main").append(section); // this script runs after <main> is parsed

  const interval = (value, ci) => `${num(value)} [${num(ci?.[0])}, ${num(ci?.[1])}]`;

  async function report(name) {
    const r = await api(`/v1/admin/experiments/${encodeURIComponent(name)}/report`);
    $("exp-report").hidden = false;
    $("exp-title").textContent = `${r.experiment} (control: ${r.control})`;
    $("exp-verdict").textContent = r.verdict.join(" ");
    fill("exp-variants", Object.entries(r.variants).map(([variant, v]) => [
      cell(variant), cell(v.units, "num"), cell(v.impressions, "num"), cell(interval(v.ctr, v.ctr_ci), "num"),
      cell(interval(v.conversion, v.conversion_ci), "num"), cell(interval(v.revenue_per_unit, v.revenue_per_unit_ci), "num"),
    ]));
    fill("exp-comparisons", r.comparisons.map((c) => [
      cell(c.metric), cell(c.variant), cell(num(c.lift), "num"), cell(`[${num(c.ci[0])}, ${num(c.ci[1])}]`, "num"),
      cell(num(c.p), "num"), cell(num(c.p_sequential), "num"),
    ]));
    fill("exp-guardrails", r.guardrails.map((g) => [cell(g.name), cell(g.variant), cell(g.status, `status-${g.status}`), cell(g.detail)]));
    $("exp-srm").textContent = `sample-ratio mismatch p = ${num(r.srm_p)} (weights: ${Object.entries(r.weights).map(([v, w]) => `${v} ${(100 * w).toFixed(0)} %`).join(", ")})`;
  }

  async function experiments() {
    const found = await api("/v1/admin/experiments");
    $("exp-report").hidden = true;
    fill("exp-table", found.map((e) => {
      const open = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Report";
      button.dataset.experiment = e.name;
      button.addEventListener("click", () => report(e.name).catch((err) => { $("error").textContent = err.message; }));
      open.append(button);
      const variants = e.variants.map((v) => `${v.name}=${v.target} (${(100 * v.share).toFixed(0)} %)`).join(", ");
      return [cell(e.name), cell(e.status, `status-${e.status}`), cell(variants), cell(e.unit),
        cell(e.placement ?? "all"), cell(e.started_at), open];
    }));
    $("exp-note").textContent = found.length ? "" : "no experiments yet (recsmith experiment start)";
  }

  window.consolePages = { ...(window.consolePages || {}), experiments };
})();
