// The Numbers page: each number's card redrawn from GET /api/numbers/<id>/health/ when the event log says
// something about the number changed (Meta's news, a template, an alert, a message). Meta's and customers'
// words are set as text only.
import { getJson } from "./api.js";
import { EVENTS } from "./events.js";
import { element } from "./format.js";
import { InboxSocket, showsConnectionIn } from "./socket.js";

const SVG = "http://www.w3.org/2000/svg";
const CHART_WIDTH = 160;
const CHART_HEIGHT = 40;
const REDRAW_AFTER_MS = 300;
const REDRAWN_BY = new Set([
  EVENTS.NUMBER_UPDATED,
  EVENTS.TEMPLATE_UPDATED,
  EVENTS.NUMBER_ALERTS_CHANGED,
  EVENTS.MESSAGE_CREATED,
]);

const data = JSON.parse(document.getElementById("numbers-data").textContent);
const connection = document.getElementById("connection-state");
const pending = new Map();

// Same geometry as conversations/views.py quality_chart.
function chartPoints(history) {
  const step = CHART_WIDTH / Math.max(1, history.length - 1);
  return history
    .map((point, i) => `${Math.round(i * step * 10) / 10},${Math.round((CHART_HEIGHT - ((point.score - 1) / 2) * (CHART_HEIGHT - 8) - 4) * 10) / 10}`)
    .join(" ");
}

function fact(card, name, text) {
  const node = card.querySelector(`[data-fact="${name}"]`);
  if (node) node.textContent = text;
}

function redraw(health) {
  const card = document.getElementById(`number-${health.id}`);
  if (!card) return;
  for (const old of card.querySelectorAll(".number-alert")) old.remove();
  const line = card.querySelector(".number-line");
  for (const alert of [...health.alerts].reverse()) {
    const p = element("p", "number-alert");
    p.dataset.kind = alert.kind;
    p.append(element("strong", null, alert.title), `${alert.template ? ` (${alert.template})` : ""}. ${alert.advice}`);
    if (alert.detail) p.append(" ", element("span", "alert-detail", `Meta: ${alert.detail}`));
    line.after(p);
  }
  fact(card, "status", health.meta_status || "not known");
  fact(card, "quality", (health.quality.rating || "not rated") + (health.quality.event ? ` (last event ${health.quality.event})` : ""));
  const limit = health.messaging_limit;
  fact(card, "limit", limit.limit
    ? `${limit.used_24h} of ${limit.limit} customers in 24 h`
    : `${limit.used_24h} customers in 24 h (${limit.tier || "limit not known"})`);
  fact(card, "throughput", health.throughput_level || "not known");
  fact(card, "phone-app", health.phone_app);
  fact(card, "history", health.history);
  fact(card, "backlog", String(health.webhook_backlog));
  fact(card, "last-in", health.last_inbound_at || "none");
  fact(card, "last-out", health.last_outbound_at || "none");
  const svg = card.querySelector(".quality-chart svg");
  svg.querySelector("polyline")?.remove();
  if (health.quality.history.length) {
    const polyline = document.createElementNS(SVG, "polyline");
    polyline.setAttribute("points", chartPoints(health.quality.history));
    polyline.setAttribute("class", "chart-line");
    svg.append(polyline);
  }
  svg.setAttribute("aria-label", `Quality over the last 30 days: ${health.quality.history.length} change(s)`);
  const counts = Object.entries(health.templates.counts).map(([status, count]) => `${status}: ${count}`);
  fact(card, "template-counts", counts.length ? counts.join(", ") : "none");
  const list = card.querySelector(".number-templates ul");
  list.replaceChildren(...health.templates.items.map((t) => {
    const item = element("li", null, `${t.name} (${t.language}): ${t.status || "not known"}`);
    if (t.stopped) item.className = "stopped";
    return item;
  }));
  card.dataset.quality = health.quality.rating;
}

// Several events of one change (a number.updated, then its alerts) make one read.
function scheduleRedraw(numberId) {
  if (pending.has(numberId) || !document.getElementById(`number-${numberId}`)) return;
  pending.set(numberId, setTimeout(async () => {
    pending.delete(numberId);
    try {
      redraw(await getJson(`/api/numbers/${numberId}/health/`));
    } catch {
      // No longer theirs, or the server is away: the next event tries again.
    }
  }, REDRAW_AFTER_MS));
}

const socket = new InboxSocket({
  lastEventId: data.lastEventId,
  onEvent: (event) => {
    if (REDRAWN_BY.has(event.type) && typeof event.number_id === "number") scheduleRedraw(event.number_id);
  },
  onStateChange: showsConnectionIn(connection),
});
socket.connect();
