// recsmith console, Shadow panel on the Releases page: which release scores live requests
// unseen, its overlap with the served lists and its latency (GET/PUT/DELETE /v1/admin/shadow).
// Loaded before console.js; uses its api, num and $ once the page is open.
"use strict";

(() => {
  const panel = document.createElement("div");
  panel.id = "shadow-panel";
  panel.innerHTML = `
    <h2>Shadow</h2>
    <p id="shadow-status" class="note"></p>
    <button id="shadow-refresh" type="button">Refresh</button>
    <dl class="facts">
      <dt>Compared</dt><dd id="shadow-compared">-</dd>
      <dt>Jaccard overlap</dt><dd id="shadow-jaccard">-</dd>
      <dt>Rank-biased overlap</dt><dd id="shadow-rbo">-</dd>
      <dt>Latency p50 / p99 (shadow, served)</dt><dd id="shadow-latency">-</dd>
    </dl>
    <form id="shadow-form">
      <label>Release <input id="shadow-release" required size="40"></label>
      <label>Sample <input id="shadow-sample" type="number" value="0.1" min="0.01" max="1" step="0.01"></label>
      <button type="submit">Shadow it</button>
      <button id="shadow-stop" type="button">Stop shadowing</button>
    </form>`;
  document.getElementById("page-releases").append(panel); // runs after the page is parsed

  // console.js (and its $) loads after this file: what runs now looks elements up itself
  const byId = (id) => document.getElementById(id);
  const ms = (p) => (p ? `${num(p.p50, 3)} / ${num(p.p99, 3)} ms` : "-");

  function show(r) {
    $("shadow-status").textContent = r.active
      ? `${r.release} scores ${(100 * r.sample).toFixed(0)} % of requests here since ${r.since}`
      : `no release shadows live traffic${r.error ? ` (${r.error})` : ""}`;
    $("shadow-compared").textContent = r.active ? `${r.compared} (dropped ${r.dropped}, failed ${r.failed}, store failed ${r.store_failed ?? 0})` : "-";
    $("shadow-jaccard").textContent = num(r.jaccard);
    $("shadow-rbo").textContent = num(r.rbo);
    $("shadow-latency").textContent = `${ms(r.shadow_latency_ms)}, ${ms(r.served_latency_ms)}`;
  }

  async function refresh() {
    if (location.hash !== "#releases" || !key()) return;
    show(await api("/v1/admin/shadow"));
  }

  async function change(method, body) {
    try {
      await api("/v1/admin/shadow", {
        method, headers: { "Content-Type": "application/json" }, body: body && JSON.stringify(body),
      });
      show(await api("/v1/admin/shadow")); // DELETE answers the last figures: show what is now
    } catch (e) {
      $("shadow-status").textContent = `refused: ${e.message}`;
    }
  }

  byId("shadow-form").addEventListener("submit", (event) => {
    event.preventDefault();
    change("PUT", { release: byId("shadow-release").value.trim(), sample: Number(byId("shadow-sample").value) });
  });
  byId("shadow-stop").addEventListener("click", () => change("DELETE"));
  const safely = () => refresh().catch((e) => { $("shadow-status").textContent = e.message; });
  window.addEventListener("hashchange", safely);
  window.addEventListener("load", safely);
  byId("shadow-refresh").addEventListener("click", safely);
})();
