// Same-origin JSON calls with Django's session and CSRF token. A refused request rejects with the
// server's stable error ({code, detail}) when it sent one.

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function send(url, options) {
  const response = await fetch(url, { credentials: "same-origin", ...options, headers: { Accept: "application/json", ...options.headers } });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(`${options.method || "GET"} ${url}: ${response.status}`);
    const detail = data.error || {};
    error.code = detail.code;
    error.fields = detail.fields || {};
    error.detail = detail.detail || (typeof data.detail === "string" ? data.detail : null) || firstFieldError(data);
    throw error;
  }
  return data;
}

function firstFieldError(data) {
  for (const value of Object.values(data || {})) if (Array.isArray(value) && value.length) return String(value[0]);
  return null;
}

export function getJson(url) {
  return send(url, { method: "GET" });
}

export function postJson(url, body = {}) {
  return send(url, { method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() }, body: JSON.stringify(body) });
}

export function patchJson(url, body = {}) {
  return send(url, { method: "PATCH", headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() }, body: JSON.stringify(body) });
}

export function putJson(url, body = {}) {
  return send(url, { method: "PUT", headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() }, body: JSON.stringify(body) });
}

export function postForm(url, form) {
  return send(url, { method: "POST", headers: { "X-CSRFToken": csrfToken() }, body: form });
}

export function deleteJson(url) {
  return send(url, { method: "DELETE", headers: { "X-CSRFToken": csrfToken() } });
}
