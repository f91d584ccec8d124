// One message bubble, built from the message snapshot (conversations/snapshots.py) with DOM APIs.
import { appendLinkified, element, timeLabel } from "./format.js";
import { updateDecision } from "./unconfirmed.js";

const TICKS = {
  pending: { symbol: "🕓", label: "Pending" },
  // The send's answer was lost: Meta may have it. A status webhook still confirms it; otherwise staff decide.
  unconfirmed: { symbol: "❓", label: "Not confirmed by Meta: it may or may not have gone out" },
  sent: { symbol: "✓", label: "Sent" },
  delivered: { symbol: "✓✓", label: "Delivered" },
  read: { symbol: "✓✓", label: "Read" },
  played: { symbol: "✓✓", label: "Played" },
  failed: { symbol: "⚠", label: "Failed" },
};

const MEDIA_TYPES = new Set(["image", "video", "audio", "document", "sticker"]);

const QUICK_REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];

export function renderMessage(message, { findQuoted, actions } = {}) {
  const item = element("li", `message message-${message.direction === "out" ? "out" : "in"} type-${message.type}`);
  item.dataset.messageId = String(message.id);
  item.dataset.conversationId = String(message.conversation_id);
  if (message.wamid) item.dataset.wamid = message.wamid;
  item.dataset.timestamp = message.timestamp;
  if (message.type === "system" || message.type === "request_welcome") item.classList.add("message-system");
  const data = message.content || {};
  if (data.revoked) item.classList.add("message-revoked");

  const bubble = element("div", "bubble");
  if (message.reply_to) bubble.append(renderQuote(message.reply_to, findQuoted));
  bubble.append(renderContent(message));
  const meta = element("div", "meta");
  // Which of the team sent a reply (none for Meta's echoes of what the phone app sent).
  if (message.direction === "out" && message.sent_by) meta.append(element("span", "sender", message.sent_by.name));
  // Coexistence: the business answered from the WhatsApp Business app on the phone.
  if (message.direction === "out" && data.phone_app) meta.append(element("span", "sender phone-app", "Sent from the phone app"));
  if (data.edits && data.edits.length && !data.revoked) meta.append(renderEdited(data));
  meta.append(element("time", "time", timeLabel(message.timestamp)));
  if (message.direction === "out") meta.append(element("span", "ticks"));
  bubble.append(meta);
  item.append(bubble, element("ul", "reactions"));
  if (actions && message.wamid && !item.classList.contains("message-system") && !data.revoked) item.append(renderActions(message, actions));
  updateStatus(item, message.status, message.error);
  updateReactions(item, message.reactions || []);
  return item;
}

export function updateStatus(item, status, error) {
  const ticks = item.querySelector(".ticks");
  if (!ticks) return;
  const tick = TICKS[status] || TICKS.pending;
  ticks.textContent = tick.symbol;
  ticks.dataset.status = status;
  // A failure we chose (a discarded reply) has a title and no Meta error code.
  const reason = error ? [error.code, error.title].filter((part) => part != null && part !== "").join(" ") : "";
  ticks.title = status === "failed" && reason ? `Failed: ${reason}` : tick.label;
  ticks.setAttribute("aria-label", ticks.title);
  updateDecision(item, status, (message) => updateStatus(item, message.status, message.error));
}

export function updateReactions(item, reactions) {
  const list = item.querySelector(".reactions");
  list.replaceChildren(...reactions.map((r) => {
    const reaction = element("li", "reaction", r.emoji);
    reaction.title = `Reaction from ${r.from}`;
    return reaction;
  }));
  list.hidden = reactions.length === 0;
}

// "edited", with the earlier words in its tooltip (the team's view: the customer's app shows only the mark).
function renderEdited(data) {
  const mark = element("span", "edited", "edited");
  const earlier = [data.original, ...data.edits.slice(0, -1)].filter(Boolean).map((version) => version.body || version.preview);
  mark.title = earlier.length ? `Earlier: ${earlier.join(" → ")}` : "Edited";
  return mark;
}

function renderActions(message, actions) {
  const bar = element("div", "message-actions");
  const reply = element("button", "action-reply", "↩");
  reply.type = "button";
  reply.title = "Reply";
  reply.setAttribute("aria-label", "Reply");
  reply.addEventListener("click", () => actions.onReply(message));
  bar.append(reply);
  const palette = element("span", "reaction-palette");
  for (const emoji of [...QUICK_REACTIONS, ""]) {
    const button = element("button", "action-react", emoji || "✕");
    button.type = "button";
    button.title = emoji ? `React ${emoji}` : "Remove my reaction";
    button.setAttribute("aria-label", button.title);
    button.addEventListener("click", () => actions.onReact(message, emoji));
    palette.append(button);
  }
  bar.append(palette);
  return bar;
}

function renderMedia(message) {
  const media = message.media;
  if (!media || media.state === "pending") {
    const label = message.direction === "in" ? "Downloading…" : "Uploading…";
    return element("div", `media-placeholder media-${message.type}`, `${message.preview.split(":")[0]} · ${label}`);
  }
  if (media.state === "failed") {
    const failed = element("div", `media-placeholder media-failed`, `${message.preview.split(":")[0]} · unavailable`);
    failed.title = media.error || "";
    return failed;
  }
  let node;
  if (message.type === "image" || message.type === "sticker") {
    node = element("img", `media media-${message.type}`);
    node.src = media.url;
    node.alt = message.body || message.preview;
    node.loading = "lazy";
  } else if (message.type === "audio" || message.type === "video") {
    node = element(message.type, `media media-${message.type}`);
    node.controls = true;
    node.preload = "metadata";
    node.src = media.url;
  } else {
    node = element("a", "media media-document", media.filename || message.preview);
    node.href = media.url;
    node.setAttribute("download", media.filename || "");
  }
  return node;
}

function renderQuote(wamid, findQuoted) {
  const quote = element("blockquote", "quote");
  const quoted = findQuoted ? findQuoted(wamid) : null;
  quote.textContent = quoted || "Reply to an earlier message";
  quote.dataset.replyTo = wamid;
  return quote;
}

function renderContent(message) {
  const content = element("div", "content");
  const data = message.content || {};
  if (data.revoked) {
    content.append(element("div", "placeholder revoked", message.text));
  } else if (message.type === "text") {
    appendLinkified(content, message.body);
  } else if (MEDIA_TYPES.has(message.type)) {
    content.append(renderMedia(message));
    if (message.body) appendLinkified(content.appendChild(element("div", "caption")), message.body);
  } else if (message.type === "location") {
    content.append(renderLocation(data, message.preview));
  } else if (message.type === "contacts") {
    for (const card of data.contacts || []) content.append(renderContactCard(card));
  } else if (message.type === "order") {
    content.append(element("div", "order-title", message.preview));
    const items = element("ul", "order-items");
    for (const product of data.product_items || []) {
      items.append(element("li", null, `${product.quantity} × ${product.product_retailer_id} @ ${product.item_price} ${product.currency}`));
    }
    content.append(items);
    if (message.body) content.append(element("div", "caption", message.body));
  } else if (message.type === "interactive" || message.type === "button") {
    content.append(element("div", "reply-label", "Replied"));
    appendLinkified(content.appendChild(element("div", "reply-text")), message.text);
  } else {
    content.append(element("div", message.type === "system" ? "system-text" : "placeholder", message.text));
  }
  return content;
}

function renderLocation(data, preview) {
  const lat = Number(data.latitude);
  const lon = Number(data.longitude);
  const wrapper = element("div", "location");
  if (Number.isFinite(lat) && Number.isFinite(lon)) {
    const link = element("a", "map-link", preview);
    link.href = `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=16/${lat}/${lon}`;
    link.target = "_blank";
    link.rel = "noopener noreferrer nofollow";
    wrapper.append(link);
  } else {
    wrapper.textContent = preview;
  }
  if (data.address && data.address !== data.name) wrapper.append(element("div", "address", data.address));
  return wrapper;
}

function renderContactCard(card) {
  const box = element("div", "contact-card");
  box.append(element("div", "contact-card-name", (card.name && card.name.formatted_name) || "Contact"));
  for (const phone of card.phones || []) box.append(element("div", "contact-card-phone", phone.phone || phone.wa_id || ""));
  for (const email of card.emails || []) box.append(element("div", "contact-card-email", email.email || ""));
  return box;
}
