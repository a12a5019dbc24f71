// The dashboard page: hash routes (#/login, #/unit/<id>, #/cadre/<id>), one panel per call
// to the backend, so a failing service shows a message on its own panels only.
import { has, language, reason, setLanguage, t } from "./i18n.js";

const DIMENSIONS = ["politics", "discipline", "learning", "communication", "responsibility"];
const LIGHT_KINDS = ["light_changed", "light_changed_in_unit"];
// A refused stream is opened again soon (a passing hiccup heals in a second), then less and
// less often while notify stays away, so a down service is not hammered by every page.
const STREAM_RETRY_FIRST_MS = 1000;
const STREAM_RETRY_MAX_MS = 15000;
const NOTIFICATION_KINDS = [
  ...LIGHT_KINDS, "ranking_showcased", "ranking_bottom", "ranking_mentor", "ranking_published",
  "journal_missed", "leave_awaiting", "leave_approved", "leave_rejected", "task_assigned",
  "task_overdue", "task_overdue_assigner", "entry_reacted", "remind_journal", "remind_approval",
  "remind_task_due",
];

const state = { session: null, route: null, stream: null, onLight: null, streamRetryMs: STREAM_RETRY_FIRST_MS };
// Tests and curious operators read the charts back through ECharts' API.
window.cadreDashboard = { charts: {}, state };

class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { credentials: "same-origin", ...options });
  } catch {
    throw new ApiError(503, { code: "service-unavailable", service: "dashboard" });
  }
  if (response.status === 204) return null;
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (response.status === 401 && !path.startsWith("/v1/session")) {
      state.session = null;
      go("#/login", "login.expired");
    }
    throw new ApiError(response.status, body);
  }
  return body;
}

// ------------------------------------------------------------------ small helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false)
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmtNumber(value) {
  return new Intl.NumberFormat(language(), { maximumFractionDigits: 2 }).format(value);
}

function fmtDateTime(iso) {
  return new Intl.DateTimeFormat(language(), {
    timeZone: state.session?.timezone || "Asia/Shanghai",
    dateStyle: "medium",
    timeStyle: "short",
  }).format(new Date(iso));
}

function fmtDay(day) {
  // A calendar day is already the tenant's day: format it without moving it across zones.
  return new Intl.DateTimeFormat(language(), { timeZone: "UTC", dateStyle: "medium" }).format(
    new Date(`${day}T00:00:00Z`),
  );
}

function stars(n) {
  if (n === null || n === undefined) return el("span", { class: "muted", text: "—" });
  return el("span", { class: "stars", title: String(n), text: "★".repeat(n) + "☆".repeat(5 - n) });
}

function lightDot(light) {
  return el("span", { class: `dot ${light}`, title: t(`light.${light}`) });
}

function tagName(tag) {
  return has(`tag.${tag}`) ? t(`tag.${tag}`) : tag;
}

function ruleName(rule) {
  if (rule.startsWith("tag:")) return `${t("col.tag")}：${tagName(rule.slice(4))}`;
  return has(`rule.${rule}`) ? t(`rule.${rule}`) : rule;
}

function errorMessage(error) {
  if (error.status === 503 || error.body?.code === "service-unavailable") {
    const service = error.body?.service || "dashboard";
    return t("error.unavailable", { service: t(`svc.${service}`) });
  }
  if (error.status === 404) return t("error.notFound");
  return t("error.generic", { detail: error.body?.detail || error.message });
}

// A card whose body is filled by `fill`; a failure shows a message and a retry button in
// the card and leaves the rest of the page alone.
function panel(title, testid, fill) {
  const body = el("div", { class: "panel-body" }, el("p", { class: "muted", text: t("loading") }));
  const card = el("section", { class: "card", "data-testid": testid }, el("h2", { text: title }), body);
  const load = async () => {
    body.replaceChildren(el("p", { class: "muted", text: t("loading") }));
    try {
      await fill(body, load);
      card.dataset.state = "ready";
    } catch (error) {
      if (error.status === 401) return;
      card.dataset.state = "error";
      body.replaceChildren(
        el("p", { class: "panel-error", role: "alert", "data-testid": `${testid}-error` }, errorMessage(error)),
        el("button", { type: "button", onclick: load, text: t("retry") }),
      );
    }
  };
  load();
  card.reload = load;
  return card;
}

function periodPicker(initial, onChange, kinds = ["month", "quarter", "half"]) {
  const periods = state.session.periods;
  const kindOf = (p) => (/-Q\d$/.test(p) ? "quarter" : /-H\d$/.test(p) ? "half" : "month");
  const select = el("select", { "data-testid": "period-kind" },
    kinds.map((k) => el("option", { value: k, text: t(`period.${k}`) })));
  select.value = kindOf(initial);
  const input = el("input", { value: initial, size: 9, "data-testid": "period", pattern: "\\d{4}-(\\d{2}|Q[1-4]|H[12])" });
  select.addEventListener("change", () => { input.value = periods[select.value]; onChange(input.value); });
  input.addEventListener("change", () => onChange(input.value.trim()));
  return el("span", { class: "period" }, select, input);
}

function toast(text) {
  const note = el("div", { class: "toast", role: "status", text });
  document.body.append(note);
  setTimeout(() => note.remove(), 6000);
}

// ------------------------------------------------------------------ routing

function go(hash, messageKey) {
  state.loginMessage = messageKey || null;
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function ensureSession() {
  if (state.session) return state.session;
  try {
    state.session = await api("/v1/session");
  } catch {
    state.session = null;
  }
  return state.session;
}

async function route() {
  const hash = location.hash || "#/";
  const view = document.getElementById("view");
  for (const chart of Object.values(window.cadreDashboard.charts)) chart?.dispose?.();
  window.cadreDashboard.charts = {};
  state.onLight = null;
  if (hash.startsWith("#/login")) return showLogin(view);
  const session = await ensureSession();
  if (!session) return go("#/login");
  showChrome(session);
  const [, kind, id] = hash.split("/").map(decodeURIComponent);
  if (kind === "unit" && id && session.views_units) return showUnit(view, id);
  if (kind === "cadre" && id) return showCadre(view, id);
  if (session.views_units && session.home_unit_id) return go(`#/unit/${encodeURIComponent(session.home_unit_id)}`);
  return go(`#/cadre/${encodeURIComponent(session.cadre_id)}`);
}

function showChrome(session) {
  document.getElementById("who").textContent = session.name ? `${session.name}（${session.cadre_id}）` : session.cadre_id;
  document.getElementById("logout").hidden = false;
  const tree = document.getElementById("tree");
  tree.hidden = !session.views_units;
  document.getElementById("live").hidden = false;
  document.querySelector(".layout").classList.toggle("solo", false);
  if (session.views_units && !tree.dataset.loaded) loadTree(tree);
  markCurrentInTree();
  startStream();
}

async function loadTree(tree) {
  tree.dataset.loaded = "1";
  tree.replaceChildren(el("h2", { text: t("tree.title") }));
  try {
    const roots = await api("/v1/tree");
    const render = (nodes) => el("ul", {}, nodes.map((node) => el("li", {},
      el("a", { href: `#/unit/${encodeURIComponent(node.unit_id)}`, "data-unit": node.unit_id, text: node.name }),
      node.children.length ? render(node.children) : null)));
    tree.append(render(roots));
    markCurrentInTree();
  } catch (error) {
    delete tree.dataset.loaded;
    tree.append(el("p", { class: "panel-error", role: "alert", "data-testid": "tree-error" }, errorMessage(error)),
      el("button", { type: "button", text: t("retry"), onclick: () => loadTree(tree) }));
  }
}

function markCurrentInTree() {
  const [, kind, id] = (location.hash || "").split("/").map(decodeURIComponent);
  for (const link of document.querySelectorAll("#tree a[data-unit]"))
    link.classList.toggle("current", kind === "unit" && link.dataset.unit === id);
}

// ------------------------------------------------------------------ login

function showLogin(view) {
  stopStream();
  document.getElementById("tree").hidden = true;
  document.getElementById("live").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  const message = el("p", { class: "panel-error", role: "alert", "data-testid": "login-error", hidden: !state.loginMessage },
    state.loginMessage ? t(state.loginMessage) : "");
  const form = el("form", { class: "login card", "data-testid": "login-form" },
    el("h1", { text: t("login.title") }),
    message,
    el("label", {}, t("login.username"), el("input", { name: "username", autocomplete: "username", required: true })),
    el("label", {}, t("login.password"), el("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    el("label", {}, t("login.tenant"), el("input", { name: "tenant" })),
    el("button", { class: "primary", type: "submit", text: t("login.submit") }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    if (!data.tenant) delete data.tenant;
    try {
      state.session = await api("/v1/session", {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(data),
      });
      state.loginMessage = null;
      go("#/");
    } catch (error) {
      message.hidden = false;
      message.textContent = error.status === 401 ? t("login.failed") : errorMessage(error);
    }
  });
  view.replaceChildren(form);
}

// ------------------------------------------------------------------ unit overview

function showUnit(view, unitId) {
  markCurrentInTree();
  const title = el("h1", { "data-testid": "unit-title", text: unitId });
  api(`/v1/units/${encodeURIComponent(unitId)}`).then((unit) => { title.textContent = unit.name; }).catch(() => {});
  const lights = lightsPanel(unitId);
  view.replaceChildren(title, lights, rankingPanel(unitId), stationingPanel(unitId));
  state.onLight = () => lights.reload();
}

function lightsPanel(unitId) {
  return panel(t("unit.lights"), "lights", async (body) => {
    const answer = await api(`/v1/units/${encodeURIComponent(unitId)}/lights?limit=200`);
    const counts = el("div", { class: "counts" }, ["red", "yellow", "green"].map((light) =>
      el("div", { class: `count ${light}`, "data-testid": `count-${light}` },
        el("b", { text: String(answer.summary[light] ?? 0) }), t(`light.${light}`))));
    const flagged = answer.items.filter((item) => item.light !== "green");
    const list = flagged.length
      ? el("table", { "data-testid": "light-list" },
          el("thead", {}, el("tr", {}, el("th", { text: t("col.light") }), el("th", { text: t("col.cadre") }), el("th", { text: t("col.reasons") }))),
          el("tbody", {}, flagged.map((item) => el("tr", { "data-cadre": item.cadre_id, "data-light": item.light },
            el("td", {}, lightDot(item.light), t(`light.${item.light}`)),
            el("td", {}, el("a", { href: `#/cadre/${encodeURIComponent(item.cadre_id)}`, text: item.name })),
            el("td", {}, item.reasons.map((r) => el("div", { text: reason(r) }))),
          ))))
      : el("p", { class: "muted", text: t("lights.none") });
    body.replaceChildren(counts, el("h2", { text: t("unit.lightList"), style: "margin-top:12px" }), list);
  });
}

function rankingPanel(unitId) {
  const query = { period: state.session.periods.month, sort: "rank", order: "asc", page: 1 };
  return panel(t("unit.ranking"), "ranking", async (body, reload) => {
    const params = new URLSearchParams({ ...query, size: 20 });
    const answer = await api(`/v1/units/${encodeURIComponent(unitId)}/ranking?${params}`);
    const header = (key, numeric) => {
      const active = answer.sort === key;
      return el("th", {
        class: `sortable${numeric ? " num" : ""}`,
        "data-sort": key,
        "aria-sort": active ? (answer.order === "asc" ? "ascending" : "descending") : "none",
        onclick: () => {
          query.order = active && query.order === "asc" ? "desc" : "asc";
          query.sort = key;
          query.page = 1;
          reload();
        },
        text: t(`col.${key}`),
      });
    };
    const exportLink = el("a", {
      href: `/v1/units/${encodeURIComponent(unitId)}/ranking.xlsx?${new URLSearchParams({ period: answer.period, lang: language() })}`,
      download: `ranking-${unitId}-${answer.period}.xlsx`,
      "data-testid": "export",
      text: t("unit.export"),
    });
    const toolbar = el("div", { class: "toolbar" },
      periodPicker(answer.period, (period) => { query.period = period; query.page = 1; reload(); }),
      exportLink,
      answer.stars_known ? null : el("span", { class: "muted", text: t("stars.unknown") }));
    const table = el("table", { "data-testid": "ranking-table" },
      el("thead", {}, el("tr", {}, header("rank", true), header("name"), header("composite", true), header("stars"))),
      el("tbody", {}, answer.items.map((row) => el("tr", { "data-cadre": row.cadre_id },
        el("td", { class: "num", text: String(row.rank) }),
        el("td", {}, el("a", { href: `#/cadre/${encodeURIComponent(row.cadre_id)}`, text: row.name })),
        el("td", { class: "num", text: fmtNumber(row.composite) }),
        el("td", {}, stars(row.stars)),
      ))));
    const pager = el("div", { class: "pager", "data-testid": "pager" },
      el("button", { type: "button", disabled: answer.page <= 1, onclick: () => { query.page -= 1; reload(); }, text: t("prev") }),
      el("span", { text: t("pager", answer) }),
      el("button", { type: "button", disabled: answer.page >= answer.pages, onclick: () => { query.page += 1; reload(); }, text: t("next") }));
    query.page = answer.page;
    body.replaceChildren(toolbar, table, pager);
  });
}

function stationingPanel(unitId) {
  const query = { month: state.session.periods.month };
  return panel(t("unit.stationing"), "stationing", async (body, reload) => {
    const answer = await api(`/v1/units/${encodeURIComponent(unitId)}/stationing?${new URLSearchParams(query)}`);
    const picker = el("input", { type: "month", value: answer.month, "data-testid": "stationing-month",
      onchange: (event) => { query.month = event.target.value; reload(); } });
    const rows = answer.rows.length
      ? el("table", {},
          el("thead", {}, el("tr", {}, el("th", { text: t("col.cadre") }), el("th", { class: "num", text: t("col.days") }), el("th", { text: t("col.below", { min: answer.minimum_days }) }))),
          el("tbody", {}, answer.rows.map((row) => el("tr", { "data-cadre": row.cadre_id },
            el("td", {}, el("a", { href: `#/cadre/${encodeURIComponent(row.cadre_id)}`, text: row.name || row.cadre_id })),
            el("td", { class: "num", text: String(row.days_present) }),
            el("td", { class: row.below_minimum ? "below" : "", text: row.below_minimum ? t("yes") : t("no") }),
          ))))
      : el("p", { class: "muted", text: t("stationing.none") });
    body.replaceChildren(el("div", { class: "toolbar" }, picker), rows);
  });
}

// ------------------------------------------------------------------ cadre page

function showCadre(view, cadreId) {
  markCurrentInTree();
  const base = `/v1/cadres/${encodeURIComponent(cadreId)}`;
  const title = el("h1", { "data-testid": "cadre-title", text: cadreId });
  const subtitle = el("div", { class: "muted", "data-testid": "cadre-stars" });
  api(base).then((cadre) => { title.textContent = `${cadre.name}（${cadre.cadre_id}）`; }).catch(() => {});
  api(`${base}/stars`).then((s) => { subtitle.replaceChildren(t("cadre.stars", { period: s.period }), " ", stars(s.stars)); }).catch(() => {});
  const selection = { period: state.session.periods.month, dimension: null };
  const explain = explainPanel(base, selection);
  const radar = radarPanel(base, selection, explain);
  view.replaceChildren(title, subtitle, el("div", { class: "grid2" }, radar, explain),
    timelinePanel(base), entriesPanel(cadreId));
}

function radarPanel(base, selection, explain) {
  return panel(t("cadre.radar"), "radar-panel", async (body, reload) => {
    const answer = await api(`${base}/radar?${new URLSearchParams({ period: selection.period })}`);
    const own = DIMENSIONS.map((d) => answer.radar.dimensions[d]);
    const average = DIMENSIONS.map((d) => answer.unit_average.dimensions[d]);
    const top = Math.max(5, ...own.map(Math.abs), ...average.map(Math.abs)) * 1.2;
    const low = Math.min(0, ...own, ...average) * 1.2;
    const chartBox = el("div", { class: "chart", "data-testid": "radar" });
    const buttons = el("div", { class: "dims", "data-testid": "dimensions" }, DIMENSIONS.map((d, i) =>
      el("button", { type: "button", "data-dimension": d, class: selection.dimension === d ? "active" : "",
        onclick: () => choose(d), text: `${t(`dim.${d}`)} ${fmtNumber(own[i])}` })));
    const choose = (dimension) => {
      selection.dimension = dimension;
      for (const b of buttons.children) b.classList.toggle("active", b.dataset.dimension === dimension);
      explain.reload();
    };
    body.replaceChildren(
      el("div", { class: "toolbar" },
        periodPicker(selection.period, (period) => { selection.period = period; reload(); explain.reload(); }),
        el("span", { "data-testid": "composite", text: `${t("col.composite")} ${fmtNumber(answer.radar.composite)}` }),
        el("span", { class: "muted", text: `${t("cadre.unitAverage")} ${fmtNumber(answer.unit_average.composite)}` })),
      chartBox, buttons);
    const chart = echarts.init(chartBox, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      legend: { bottom: 0, data: [answer.radar.cadre_id, t("cadre.unitAverage")] },
      tooltip: {},
      radar: {
        indicator: DIMENSIONS.map((d) => ({ name: t(`dim.${d}`), max: top, min: low })),
        triggerEvent: true,
        radius: "62%",
      },
      series: [{
        type: "radar",
        data: [
          { value: own, name: answer.radar.cadre_id, areaStyle: { opacity: 0.25 }, itemStyle: { color: "#b71c1c" } },
          { value: average, name: t("cadre.unitAverage"), lineStyle: { type: "dashed" }, itemStyle: { color: "#1d5fa7" } },
        ],
      }],
    });
    chart.on("click", (event) => {
      const index = DIMENSIONS.findIndex((d) => t(`dim.${d}`) === event.name);
      if (event.componentType === "radar" && index >= 0) choose(DIMENSIONS[index]);
    });
    chartBox.dataset.period = answer.radar.period;
    window.cadreDashboard.charts.radar = chart;
  });
}

function explainPanel(base, selection) {
  return panel(t("cadre.explain"), "explain", async (body) => {
    if (!selection.dimension) {
      body.replaceChildren(el("p", { class: "muted", text: t("cadre.explainHint") }));
      return;
    }
    const rows = el("tbody");
    const summary = el("p", { "data-testid": "explain-total" });
    const more = el("button", { type: "button", hidden: true, text: t("explain.more") });
    body.replaceChildren(
      el("h2", { "data-testid": "explain-dimension", text: t(`dim.${selection.dimension}`) }),
      summary,
      el("table", { "data-testid": "explain-table" },
        el("thead", {}, el("tr", {}, el("th", { text: t("col.day") }), el("th", { text: t("col.rule") }),
          el("th", { class: "num", text: t("col.raw") }), el("th", { class: "num", text: t("col.cap") }),
          el("th", { class: "num", text: t("col.points") }), el("th", { text: t("col.event") }))),
        rows),
      more);
    const load = async (cursor) => {
      const params = new URLSearchParams({ period: selection.period, dimension: selection.dimension, limit: 50 });
      if (cursor) params.set("cursor", cursor);
      const answer = await api(`${base}/explain?${params}`);
      summary.textContent = answer.count ? t("explain.total", { total: fmtNumber(answer.total), count: answer.count }) : t("explain.none");
      for (const item of answer.items) {
        rows.append(el("tr", { class: item.voided ? "voided" : "", "data-event": item.event_id, "data-points": String(item.points) },
          el("td", { text: fmtDay(item.day) }),
          el("td", {}, ruleName(item.rule), item.voided ? el("span", { class: "badge voided", text: t("explain.voided") }) : null),
          el("td", { class: "num", text: fmtNumber(item.raw_points) }),
          el("td", { class: "num", text: item.cap_effect ? fmtNumber(item.cap_effect) : "" }),
          el("td", { class: "num", text: fmtNumber(item.points) }),
          el("td", {}, el("code", { title: item.event_id, text: item.event_id.slice(0, 8) })),
        ));
      }
      more.hidden = !answer.next_cursor;
      more.onclick = () => load(answer.next_cursor);
    };
    await load(null);
  });
}

function timelinePanel(base) {
  let days = 30;
  return panel(t("cadre.timeline"), "timeline-panel", async (body, reload) => {
    const to = state.session.today;
    const from = new Date(Date.parse(`${to}T00:00:00Z`) - (days - 1) * 86400000).toISOString().slice(0, 10);
    const answer = await api(`${base}/timeline?${new URLSearchParams({ from, to })}`);
    const choice = el("select", { "data-testid": "timeline-days", onchange: (e) => { days = Number(e.target.value); reload(); } },
      [30, 90, 180].map((n) => el("option", { value: n, text: t("timeline.days", { n }), selected: n === days })));
    const box = el("div", { class: "chart small", "data-testid": "timeline" });
    body.replaceChildren(el("div", { class: "toolbar" }, choice), box);
    const chart = echarts.init(box, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      grid: { left: 40, right: 12, top: 12, bottom: 28 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: answer.days.map((d) => d.day.slice(5)) },
      yAxis: { type: "value" },
      series: [{ type: "line", name: t("col.composite"), data: answer.days.map((d) => d.composite), itemStyle: { color: "#b71c1c" }, areaStyle: { opacity: 0.1 } }],
    });
    window.cadreDashboard.charts.timeline = chart;
  });
}

function entriesPanel(cadreId) {
  return panel(t("cadre.entries"), "entries", async (body) => {
    const answer = await api(`/v1/cadres/${encodeURIComponent(cadreId)}/entries?limit=10`);
    if (!answer.items.length) {
      body.replaceChildren(el("p", { class: "muted", text: t("cadre.noEntries") }));
      return;
    }
    body.replaceChildren(...answer.items.map((entry) => el("div", { class: "entry", "data-entry": entry.entry_id },
      el("div", { class: "meta" }, fmtDay(entry.day), " · ", fmtDateTime(entry.posted_at), " · ", t("likes", entry)),
      el("div", { text: entry.text }),
      el("div", {}, entry.tags.map((tag) => el("span", { class: "tag", text: tagName(tag) }))))));
  });
}

// ------------------------------------------------------------------ live updates

function setLive(on, key) {
  const status = document.getElementById("live-status");
  status.hidden = false;
  status.className = `live-status ${on ? "on" : "off"}`;
  status.dataset.state = on ? "on" : "off";
  status.textContent = t(key);
}

function showNotification(item, fresh) {
  const list = document.getElementById("live-list");
  list.querySelector(".empty")?.remove();
  if (item.id && list.querySelector(`[data-id="${item.id}"]`)) return;
  list.prepend(el("li", { class: fresh ? "fresh" : "", "data-id": item.id, "data-kind": item.kind },
    el("div", { class: "time", text: fmtDateTime(item.created_at) }),
    el("b", { text: item.title }),
    el("div", { text: item.body })));
  while (list.children.length > 30) list.lastElementChild.remove();
}

async function loadRecentNotifications() {
  const list = document.getElementById("live-list");
  const error = document.getElementById("live-error");
  try {
    const answer = await api("/v1/notifications?limit=10");
    list.replaceChildren();
    for (const item of [...answer.items].reverse()) showNotification(item, false);
    if (!answer.items.length) list.append(el("li", { class: "muted empty", text: t("live.empty") }));
    error.hidden = true;
  } catch (failure) {
    error.hidden = false;
    error.textContent = failure.status === 503 ? t("live.unavailable") : errorMessage(failure);
  }
}

function stopStream() {
  state.stream?.close();
  state.stream = null;
  clearTimeout(state.retryTimer);
  state.streamRetryMs = STREAM_RETRY_FIRST_MS; // the next session starts afresh
}

function startStream() {
  if (state.stream) return;
  loadRecentNotifications();
  const source = new EventSource("/v1/stream");
  state.stream = source;
  source.onopen = () => {
    state.streamRetryMs = STREAM_RETRY_FIRST_MS;
    setLive(true, "live.on");
    document.getElementById("live-error").hidden = true;
  };
  const receive = (message) => {
    const item = JSON.parse(message.data);
    showNotification(item, true);
    if (LIGHT_KINDS.includes(item.kind)) {
      toast(item.title);
      state.onLight?.();
    }
  };
  for (const kind of NOTIFICATION_KINDS) source.addEventListener(kind, receive);
  source.onerror = () => {
    setLive(false, "live.off");
    if (source.readyState === EventSource.CLOSED) {
      // The backend answered with an error (notify down): EventSource gives up by itself.
      const error = document.getElementById("live-error");
      error.hidden = false;
      error.textContent = t("live.unavailable");
      state.stream = null;
      state.retryTimer = setTimeout(startStream, state.streamRetryMs);
      state.streamRetryMs = Math.min(state.streamRetryMs * 2, STREAM_RETRY_MAX_MS);
    }
  };
}

// ------------------------------------------------------------------ start

function start() {
  const select = document.getElementById("lang");
  select.value = language();
  setLanguage(language());
  select.addEventListener("change", () => {
    setLanguage(select.value);
    delete document.getElementById("tree").dataset.loaded;
    route();
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await api("/v1/session", { method: "DELETE" }).catch(() => {});
    state.session = null;
    stopStream();
    document.getElementById("live-list").replaceChildren();
    delete document.getElementById("tree").dataset.loaded;
    go("#/login");
  });
  window.addEventListener("hashchange", route);
  route();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
