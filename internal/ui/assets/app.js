// Portico's operator page. Everything from the store is put into the page
// as text (textContent, createTextNode), never as markup.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  // el builds an element; children are nodes or strings (made text nodes).
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "class") e.className = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === "") continue;
      e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function table(headers, rows) {
    return el("table", {},
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c, i) =>
        el("td", { "data-label": headers[i] }, c))))));
  }

  function empty(text) { return el("p", { class: "empty" }, text); }
  function list(xs) { return (xs || []).join(", "); }
  function dash(s) { return s === undefined || s === null || s === "" ? "–" : String(s); }

  // ago renders a duration the way `portico status` does: days from two
  // days up, then days and hours, hours, minutes, seconds (truncated).
  function ago(ms) {
    const s = Math.floor(Math.abs(ms) / 1000), day = 86400;
    if (s >= 2 * day) return Math.floor(s / day) + "d";
    if (s >= day) { const h = Math.floor((s % day) / 3600); return h ? "1d " + h + "h" : "1d"; }
    if (s >= 3600) return Math.floor(s / 3600) + "h";
    if (s >= 60) return Math.floor(s / 60) + "m";
    return s + "s";
  }
  function when(t) {
    if (!t) return "–";
    const d = new Date(t);
    if (isNaN(d)) return dash(t);
    const ms = d - Date.now();
    const abs = d.toISOString().slice(0, 16).replace("T", " ");
    return abs + (ms >= 0 ? " (in " + ago(ms) + ")" : " (" + ago(ms) + " ago)");
  }

  function count(id, n) { $(id).textContent = "(" + n + ")"; }
  function fill(id, node) { $(id).replaceChildren(node); }

  function renderProblems(r) {
    const ps = r.problems || [];
    count("problems-n", ps.length);
    if (!ps.length) { fill("problems", el("p", { class: "empty ok" }, "No problems.")); return; }
    fill("problems", table(["Severity", "Container", "Host", "Label", "Value", "Problem"], ps.map((p) => [
      el("span", { class: "sev-" + p.severity }, dash(p.severity)),
      dash(p.container),
      dash(p.node),
      el("code", {}, dash(p.label)),
      el("code", { class: "wrap" }, dash(p.value) + (p.value_bytes ? " … (" + p.value_bytes + " bytes)" : "")),
      dash(p.message) + (p.more ? " (+" + p.more + " more)" : ""),
    ])));
  }

  function renderRoutes(r) {
    const rs = r.routes || [];
    count("routes-n", rs.length);
    if (!rs.length) { fill("routes", empty("No routes yet: label a container with portico.vhost.")); return; }
    fill("routes", table(["Host", "Protocol", "HTTPS", "Replicas (live upstreams)", "Containers"], rs.map((rt) => [
      el("span", { class: "mono" }, rt.Host + (rt.Default ? " (default)" : "")),
      dash(rt.Protocol),
      dash(rt.HTTPS),
      (rt.Upstreams && rt.Upstreams.length)
        ? el("ul", { class: "plain mono" }, rt.Upstreams.map((u) => el("li", {}, u)))
        : el("span", { class: "down" }, "none live (503)"),
      el("ul", { class: "plain" }, (rt.Containers || []).map((c) => el("li", {}, c))),
    ])));
  }

  function renderContainers(r) {
    const cs = r.containers || [];
    count("containers-n", cs.length);
    if (!cs.length) { fill("containers", empty("No containers reported.")); return; }
    const byNode = new Map();
    for (const c of cs) {
      if (!byNode.has(c.node)) byNode.set(c.node, []);
      byNode.get(c.node).push(c);
    }
    const nodes = [...byNode.keys()].sort();
    const hostState = new Map((r.hosts || []).map((h) => [h.host, h]));
    fill("containers", el("div", {}, nodes.map((n) => el("div", {},
      el("h3", {}, "Docker host ", el("span", { class: "mono" }, dash(n)), " ",
        el("span", { class: "muted" }, "(" + byNode.get(n).length + ")"), " ",
        hostBadge(hostState.get(n))),
      table(["Name", "ID", "State", "Vhosts", "Upstream"], byNode.get(n).map((c) => [
        c.name,
        el("span", { class: "mono" }, dash(c.id)),
        el("span", { class: c.state === "running" ? "ok" : "pending" }, dash(c.state) + (c.health ? " (" + c.health + ")" : "")),
        dash(list(c.vhosts)),
        c.addr ? el("span", { class: c.live ? "mono" : "mono down" }, c.addr + (c.live ? "" : " (not live)")) : "–",
      ]))))));
  }

  // hostBadge marks a Docker host whose heartbeat is lost: stale (its
  // routes still served until the host expiry) or expired (not routed).
  function hostBadge(h) {
    if (!h || h.state === "live") return "";
    if (h.state === "stale") {
      return el("span", { class: "pending" }, "stale: heartbeat lost, last seen " + when(h.last_seen) +
        (h.expires_at ? "; routes kept until " + when(h.expires_at) : "; routes kept"));
    }
    return el("span", { class: "error" }, "expired: last seen " + when(h.last_seen) + "; its containers are no longer routed");
  }

  function renderCerts(r) {
    const cs = r.certs || [];
    count("certs-n", cs.length);
    if (!cs.length) { fill("certs", empty("No certificates.")); return; }
    fill("certs", table(["Names", "Issuer", "Condition", "Expires", "Next renewal", "Last error"], cs.map((c) => [
      el("ul", { class: "plain mono" }, (c.names && c.names.length ? c.names : [c.primary]).map((x) => el("li", {}, x))),
      dash(c.issuer),
      el("span", { class: c.condition === "valid" ? "ok" : (c.condition === "failing" || c.condition === "expired") ? "error" : "pending" }, dash(c.condition)),
      when(c.not_after),
      when(c.next_renewal),
      c.error ? el("span", { class: "error" }, c.error + (c.retry_at ? " (retry " + when(c.retry_at) + ")" : "")) : "–",
    ])));
  }

  function renderNginx(r) {
    const ns = r.nginx || [];
    count("nginx-n", ns.length);
    if (!ns.length) { fill("nginx", empty("No nginx instance has reported yet.")); return; }
    fill("nginx", table(["Instance", "Config", "Applied", "Routes", "Reloads", "Listens", "Last error"], ns.map((n) => [
      el("span", { class: "mono" }, n.instance),
      el("span", { class: "mono", title: dash(n.applied) }, n.applied ? n.applied.slice(0, 12) : "–"),
      when(n.applied_at),
      String(n.routes || 0),
      String(n.reloads || 0),
      el("ul", { class: "plain mono" },
        (n.http_addrs || []).map((a) => el("li", {}, "http " + a)),
        (n.https_addrs || []).map((a) => el("li", {}, "https " + a))),
      n.error ? el("span", { class: "error" }, n.error + (n.error_routes ? " (routes: " + list(n.error_routes) + ")" : "")) : "–",
    ])));
  }

  function renderStore(r) {
    const ss = r.store_errors || [];
    $("store-section").hidden = !ss.length;
    count("store-n", ss.length);
    fill("store", el("ul", { class: "plain" }, ss.map((s) => el("li", { class: "error mono" }, s))));
  }


  // Traffic: per-site charts from /api/traffic (polled every sample
  // interval), drawn with uPlot (uPlot.iife.min.js, MIT). A card per site,
  // busiest first; a site with 5xx answers, upstream failures or no live
  // replica is outlined red and sorted up among equals.
  const charts = new Map(); // site -> { card, rate, lat }
  function cssVar(n) { return getComputedStyle(document.documentElement).getPropertyValue(n).trim() || "#888"; }
  function noLive() {
    const out = new Set();
    for (const rt of ((last && last.report && last.report.routes) || [])) {
      if (!rt.Upstreams || !rt.Upstreams.length) out.add(rt.Host);
    }
    return out;
  }
  function fmtRate(v) { return v === null || v === undefined ? "–" : (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)); }
  function fmtMs(v) { return v === null || v === undefined ? "–" : (v >= 100 ? v.toFixed(0) : v.toFixed(1)) + " ms"; }
  function fmtPct(v) { return v === null || v === undefined ? "–" : (v * 100).toFixed(v < 0.1 ? 1 : 0) + "%"; }
  function chartWidth(box) { return Math.max(200, Math.floor(box.clientWidth || 300)); }
  function axis(extra) {
    const c = cssVar("--muted"), g = cssVar("--line");
    return Object.assign({ stroke: c, grid: { stroke: g, width: 1 }, ticks: { stroke: g, width: 1 } }, extra || {});
  }
  function newCharts(site, box1, box2) {
    const h = 130, err = cssVar("--err"), acc = cssVar("--accent"), warn = cssVar("--warn");
    const rate = new uPlot({
      width: chartWidth(box1), height: h, legend: { live: false },
      scales: { x: { time: true }, err: { range: [0, 1] } },
      series: [{},
        { label: "req/s", stroke: acc, width: 1.5, fill: acc + "22", value: (u, v) => fmtRate(v) },
        { label: "5xx", scale: "err", stroke: err, width: 1.5, value: (u, v) => fmtPct(v) }],
      axes: [axis(), axis({ size: 44, values: (u, vs) => vs.map(fmtRate) }),
        axis({ scale: "err", side: 1, size: 50, grid: { show: false }, values: (u, vs) => vs.map((v) => (v * 100).toFixed(0) + "%") })],
    }, [[], [], []], box1);
    const lat = new uPlot({
      width: chartWidth(box2), height: h, legend: { live: false },
      scales: { x: { time: true } },
      series: [{},
        { label: "p50", stroke: acc, width: 1.5, value: (u, v) => fmtMs(v) },
        { label: "p99", stroke: warn, width: 1.5, value: (u, v) => fmtMs(v) }],
      axes: [axis(), axis({ size: 64, values: (u, vs) => vs.map((v) => fmtMs(v)) })],
    }, [[], [], []], box2);
    return { rate, lat };
  }
  function renderTraffic(t) {
    const box = $("traffic");
    if (!t.available) {
      for (const c of charts.values()) { c.rate.destroy(); c.lat.destroy(); }
      charts.clear();
      box.replaceChildren(empty("No traffic charts here: " + (t.why || "not available") + "."));
      $("traffic-n").textContent = "";
      return;
    }
    const sites = t.sites || [];
    const down = noLive();
    $("traffic-n").textContent = "(" + sites.length + (t.quieter ? " + " + t.quieter + " quieter" : "") + ")";
    $("traffic-n").title = t.idle ? t.idle + " routes had no requests in the window" : "";
    $("traffic-note").textContent = "last 15 minutes, busiest first" + (t.error ? " · nginx's counters unreadable: " + t.error : "");
    const keep = new Set(sites.map((s) => s.site));
    for (const [k, c] of charts) {
      if (!keep.has(k)) { c.rate.destroy(); c.lat.destroy(); c.card.remove(); charts.delete(k); }
    }
    let list = box.querySelector(".sites");
    if (!list) { list = el("div", { class: "sites" }); box.replaceChildren(list); }
    if (!sites.length) { box.replaceChildren(list, empty("No requests yet.")); }
    else if (box.lastChild !== list) { box.replaceChildren(list); }
    const xs = t.times || [];
    for (const s of sites) {
      let c = charts.get(s.site);
      if (!c) {
        const stats = el("span", { class: "stats" });
        const b1 = el("div", { class: "chart" }), b2 = el("div", { class: "chart" });
        const card = el("div", { class: "site", "data-site": s.site },
          el("h3", {}, el("span", { class: "mono" }, s.site), stats), el("div", { class: "charts" }, b1, b2));
        list.appendChild(card);
        c = Object.assign({ card, stats, b1, b2 }, newCharts(s.site, b1, b2));
        charts.set(s.site, c);
      }
      const noUp = down.has(s.site);
      const bad = s.server_errors > 0 || s.upstream_failures > 0 || noUp;
      c.card.className = "site" + (bad ? " alert" : "");
      const parts = [Math.round(s.requests) + " requests"];
      if (s.server_errors) parts.push(Math.round(s.server_errors) + " answered 5xx");
      if (s.upstream_failures) parts.push(Math.round(s.upstream_failures) + " upstream failures");
      if (noUp) parts.push("no live replica");
      c.stats.textContent = parts.join(" · ");
      c.stats.className = "stats" + (bad ? " error" : "");
      c.card.setAttribute("data-requests", String(s.requests));
      c.card.setAttribute("data-points", String((s.rps || []).filter((v) => v !== null && v > 0).length));
      const ms = (a) => (a || []).map((v) => (v === null ? null : v * 1000));
      c.rate.setData([xs, s.rps || [], s.error_rate || []]);
      c.lat.setData([xs, ms(s.p50), ms(s.p99)]);
      list.appendChild(c.card); // in the order given: busiest first
    }
  }
  function resizeCharts() {
    for (const c of charts.values()) {
      c.rate.setSize({ width: chartWidth(c.b1), height: 130 });
      c.lat.setSize({ width: chartWidth(c.b2), height: 130 });
    }
  }
  let trafficTimer = null;
  async function pollTraffic() {
    let next = 5000;
    try {
      const r = await fetch("api/traffic", { cache: "no-store" });
      if (r.ok) {
        const t = await r.json();
        renderTraffic(t);
        if (t.interval_seconds) next = Math.max(1000, t.interval_seconds * 1000);
      }
    } catch (e) { /* the event stream shows the connection's state */ }
    trafficTimer = setTimeout(pollTraffic, next);
  }

  let last = null;
  function render(snap) {
    last = snap;
    const r = snap.report || {};
    const c = r.counts || {};
    $("counts").textContent = [
      (c.routes || 0) + " routes", (c.containers || 0) + " containers",
      (c.errors || 0) + " errors", (c.warnings || 0) + " warnings",
    ].join(" · ");
    $("counts").className = "counts" + (c.errors ? " error" : "");
    $("truncated").hidden = !snap.truncated;
    renderEtcd(snap.embedded_etcd);
    renderProblems(r); renderRoutes(r); renderContainers(r); renderCerts(r); renderNginx(r); renderStore(r);
    tick();
    document.body.setAttribute("data-revision", String(snap.revision));
  }
  // The embedded etcd's failure, from portico itself: the store cannot
  // report its own absence.
  function renderEtcd(h) {
    const b = $("etcd-down");
    if (!h || h.up || !h.reason || h.reason === "starting") { b.hidden = true; return; }
    b.textContent = "The store (embedded etcd) is down since " + h.since + " (" + h.reason + ", " + (h.failures || 0) +
      " failures): " + (h.problem || "") + ". File: " + (h.file || "?") + ". What to do: " + (h.advice || "") +
      ". nginx keeps serving its last good config; this page shows the store as it last read it.";
    b.hidden = false;
  }
  function tick() {
    if (last) $("updated").textContent = "store revision " + last.revision + ", updated " + ago(Date.now() - new Date(last.generated_at)) + " ago";
  }

  function conn(state, text) {
    const c = $("conn");
    c.className = "pill " + state;
    c.textContent = text;
  }

  function connect() {
    const es = new EventSource("events");
    es.addEventListener("snapshot", (ev) => {
      try {
        const snap = JSON.parse(ev.data);
        render(snap);
        if (snap.synced) conn("live", "live"); else conn("pending", "reading the store…");
      } catch (e) { conn("down", "bad data: " + e.message); }
    });
    es.onerror = () => conn("down", "disconnected, retrying…"); // EventSource reconnects itself
  }

  document.addEventListener("DOMContentLoaded", () => {
    connect();
    if (window.uPlot) pollTraffic();
    else $("traffic").replaceChildren(empty("The charting library did not load."));
    let rz = null;
    window.addEventListener("resize", () => { clearTimeout(rz); rz = setTimeout(resizeCharts, 150); });
    setInterval(() => { if (last) render(last); }, 30000); // relative times
    setInterval(tick, 5000);
  });
})();
