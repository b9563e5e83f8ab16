// The public API, called with the console's cookie session. No token ever reaches this code:
// the browser sends the HttpOnly cookie, and every state-changing request carries the CSRF
// token the server set in a readable cookie (double submit).

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.detail;
    super(typeof detail === "string" ? detail : `Request failed (${status})`);
    this.status = status;
    this.code = body && body.code;
    this.detail = detail;
  }
}

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)filestore_csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

let refreshing = null;

export async function refreshSession() {
  // One refresh at a time: parallel 401s wait for the same one (a refresh token is single-use).
  refreshing ??= fetch("/console/session/refresh", {
    method: "POST",
    headers: { "X-CSRF-Token": csrfToken() },
    credentials: "same-origin",
  }).then((r) => r.ok).finally(() => { refreshing = null; });
  return refreshing;
}

export const session = { onExpired: () => {} };

export async function api(path, { method = "GET", json, retry = true } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  if (json !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: json === undefined ? undefined : JSON.stringify(json),
    credentials: "same-origin",
  });
  if (response.status === 401 && retry && path !== "/console/session") {
    if (await refreshSession()) return api(path, { method, json, retry: false });
    session.onExpired();
  }
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export async function signIn(username, password) {
  return api("/console/session", { method: "POST", json: { username, password }, retry: false });
}

export async function signOut() {
  return api("/console/session/logout", { method: "POST", retry: false });
}
