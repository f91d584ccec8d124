// Display formatting shared by the list and the thread: times, days, safe links.

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/gi;

export function timeLabel(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function dayKey(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function dayLabel(iso) {
  const d = new Date(iso);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(iso) === dayKey(today.toISOString())) return "Today";
  if (dayKey(iso) === dayKey(yesterday.toISOString())) return "Yesterday";
  return d.toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

export function listTimeLabel(iso) {
  return dayKey(iso) === dayKey(new Date().toISOString()) ? timeLabel(iso) : new Date(iso).toLocaleDateString();
}

// Customer text goes into text nodes only; URLs become links built with DOM APIs (never innerHTML).
export function appendLinkified(parent, text) {
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const url = match[0].replace(/[.,;:!?)]+$/, "");
    if (match.index > last) parent.append(document.createTextNode(text.slice(last, match.index)));
    const link = document.createElement("a");
    link.href = url;
    link.textContent = url;
    link.target = "_blank";
    link.rel = "noopener noreferrer nofollow";
    parent.append(link);
    last = match.index + url.length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

// A time within the coming days, as "Tue 09:00" (a snooze's end, the reply window's close).
export function weekdayTimeLabel(iso) {
  return new Date(iso).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });
}

// An error line: the text shown, or the line hidden when there is none.
export function showErrorIn(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}

// A conversation's status as people read it.
export const STATUS_LABELS = { open: "Open", pending: "Pending", snoozed: "Snoozed", resolved: "Resolved" };

// A contact as the pages name them: their name, else their phone, else their username.
export function contactName(contact, fallback = "Unknown") {
  return contact.name || contact.phone || contact.username || fallback;
}

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}
