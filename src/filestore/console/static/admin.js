// Admin screens: users (create, deactivate, change role, send a reset link) and the audit
// trail (filtered by user, action and date). The API allows both to admins only.

import { api } from "./api.js";
import { announce, emptyState, formatDate, h, loading, replace } from "./dom.js";

const ROLES = [["admin", "Admin"], ["staff", "Staff"], ["customer", "Customer"]];
const ACTIONS = [
  "login.success", "login.failure", "login.locked", "refresh.reuse_detected", "logout",
  "password.changed", "password.reset_issued", "password.reset", "user.created",
  "user.updated", "user.deactivated", "user.reactivated", "user.role_changed", "setup.completed",
];

function field(id, label, control) {
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

function options(pairs, selected) {
  return pairs.map(([value, text]) => h("option", { value, selected: value === selected }, text));
}

function dialog(title, body) {
  const el = h("dialog", { class: "dialog", "aria-labelledby": "dialog-title" },
    h("div", { class: "dialog-head" }, h("h2", { id: "dialog-title" }, title),
      h("button", { type: "button", class: "icon-button", "aria-label": "Close", onclick: () => el.close() }, "×")),
    h("div", { class: "dialog-body" }, body));
  el.addEventListener("close", () => el.remove());
  document.body.append(el);
  el.showModal();
  return el;
}

// POST `path` (a user's or a customer's password-reset); the link is e-mailed, or shown.
export async function sendResetLink(path, who) {
  try {
    const reset = await api(path, { method: "POST" });
    if (reset.emailed) {
      announce(`A reset link was e-mailed to ${who}.`);
      return;
    }
    const input = h("input", { id: "reset-link", type: "text", readonly: true, value: reset.reset_url });
    dialog("Reset link", [
      h("p", {}, `No mail server is set up: give ${who} this link. It works once, until ${formatDate(reset.expires_at)}.`),
      h("label", { for: "reset-link" }, "Link"), input]);
    input.select();
  } catch (error) {
    announce(`No reset link: ${error.message}`);
  }
}

function sendReset(user) {
  return sendResetLink(`/users/${user.id}/password-reset`, user.username);
}

function userRow(user, me, reload) {
  const role = h("select", { "aria-label": `Role of ${user.username}`, disabled: user.id === me.id }, options(ROLES, user.role));
  role.addEventListener("change", async () => {
    try {
      await api(`/users/${user.id}`, { method: "PATCH", json: { role: role.value } });
      announce(`${user.username} is now ${role.value}.`);
      reload();
    } catch (error) {
      role.value = user.role;
      announce(`Role not changed: ${error.message}`);
    }
  });
  const toggle = h("button", {
    type: "button",
    class: `button small ${user.is_active ? "danger-outline" : "secondary"}`,
    disabled: user.id === me.id,
    "aria-label": `${user.is_active ? "Deactivate" : "Activate"} ${user.username}`,
  }, user.is_active ? "Deactivate" : "Activate");
  toggle.addEventListener("click", async () => {
    try {
      await api(`/users/${user.id}`, { method: "PATCH", json: { is_active: !user.is_active } });
      announce(`${user.username} ${user.is_active ? "deactivated" : "activated"}.`);
      reload();
    } catch (error) {
      announce(error.message);
    }
  });
  return h("tr", { class: user.is_active ? "" : "inactive" },
    h("th", { scope: "row", class: "file-name" }, h("span", {}, user.username), h("span", { class: "muted small" }, user.full_name || user.email || "")),
    h("td", { "data-label": "Role" }, role),
    h("td", { "data-label": "Customer" }, user.customer_id ? h("a", { href: `#/customers/${user.customer_id}` }, `#${user.customer_id}`) : "—"),
    h("td", { "data-label": "Status" }, user.is_active ? "Active" : "Deactivated"),
    h("td", { "data-label": "Since" }, formatDate(user.created_at)),
    h("td", { class: "actions" }, toggle,
      h("button", { type: "button", class: "button small secondary", onclick: () => sendReset(user), "aria-label": `Send a reset link to ${user.username}` }, "Reset link")));
}

function newUserForm(onCreated) {
  const role = h("select", {}, options(ROLES, "staff"));
  const customer = h("input", { type: "number", min: "1", inputmode: "numeric" });
  const customerField = field("new-user-customer", "Customer id", customer);
  customerField.hidden = true;
  role.addEventListener("change", () => { customerField.hidden = role.value !== "customer"; });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "panel form-grid", "aria-labelledby": "new-user-title" },
    h("h2", { id: "new-user-title" }, "New user"),
    field("new-user-username", "Username", h("input", { name: "username", required: true, autocomplete: "off" })),
    field("new-user-name", "Full name", h("input", { name: "full_name" })),
    field("new-user-email", "E-mail", h("input", { name: "email", type: "email" })),
    field("new-user-role", "Role", role),
    customerField,
    field("new-user-password", "Password", h("input", { name: "password", type: "password", required: true, autocomplete: "new-password" })),
    error,
    h("div", { class: "field" }, h("button", { type: "submit", class: "button" }, "Create user")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    replace(error);
    const body = { username: form.username.value, password: form.password.value, role: role.value };
    if (form.full_name.value) body.full_name = form.full_name.value;
    if (form.email.value) body.email = form.email.value;
    if (role.value === "customer") body.customer_id = Number(customer.value);
    try {
      const user = await api("/users", { method: "POST", json: body });
      form.reset();
      customerField.hidden = true;
      announce(`User ${user.username} created.`);
      onCreated();
    } catch (err) {
      replace(error, Array.isArray(err.detail) ? err.detail.map((d) => d.msg).join("; ") : err.message);
    }
  });
  return form;
}

export async function usersScreen(main, me) {
  const list = h("div", {});
  const filter = h("select", {}, options([["", "All roles"], ...ROLES], ""));
  async function load() {
    replace(list, loading("Loading users…"));
    try {
      const users = await api(`/users?limit=200${filter.value ? `&role=${filter.value}` : ""}`);
      if (!users.length) { replace(list, emptyState("No users", null)); return; }
      replace(list, h("div", { class: "table-wrap" }, h("table", { class: "table" },
        h("caption", { class: "visually-hidden" }, "Users"),
        h("thead", {}, h("tr", {}, ["User", "Role", "Customer", "Status", "Since", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, users.map((u) => userRow(u, me, load))))));
    } catch (error) {
      replace(list, h("p", { class: "error", role: "alert" }, error.message));
    }
  }
  filter.addEventListener("change", load);
  replace(main,
    h("div", { class: "page-header" }, h("div", {}, h("h1", {}, "Users"), h("p", { class: "muted" }, "Accounts, roles and access."))),
    h("section", { class: "panel", "aria-labelledby": "users-title" },
      h("div", { class: "section-head" }, h("h2", { id: "users-title" }, "All users"),
        h("div", { class: "inline-field" }, field("users-role", "Show", filter))),
      list),
    newUserForm(load));
  await load();
}

export async function auditScreen(main) {
  const results = h("div", {});
  const user = h("select", {}, h("option", { value: "" }, "Anyone"));
  const action = h("select", {}, options([["", "Any action"], ...ACTIONS.map((a) => [a, a])], ""));
  const since = h("input", { type: "date" });
  const names = new Map();
  try {
    for (const u of await api("/users?limit=1000")) {
      names.set(u.id, u.username);
      user.append(h("option", { value: String(u.id) }, u.username));
    }
  } catch { /* the filter then offers "Anyone" only */ }
  const who = (id) => (id === null ? "—" : names.get(id) ?? `#${id}`);
  async function load() {
    replace(results, loading("Loading events…"));
    const params = new URLSearchParams({ limit: "200" });
    if (user.value) params.set("actor_id", user.value);
    if (action.value) params.set("action", action.value);
    if (since.value) params.set("since", new Date(`${since.value}T00:00:00`).toISOString());
    try {
      const events = await api(`/audit-events?${params}`);
      if (!events.length) { replace(results, emptyState("No events match", "Change the filters above.")); return; }
      replace(results, h("div", { class: "table-wrap" }, h("table", { class: "table" },
        h("caption", { class: "visually-hidden" }, "Audit events, newest first"),
        h("thead", {}, h("tr", {}, ["When", "Action", "By", "User", "Address", "Details"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, events.map((e) => h("tr", {},
          h("th", { scope: "row" }, formatDate(e.created_at)),
          h("td", { "data-label": "Action" }, h("span", { class: "tag" }, e.action)),
          h("td", { "data-label": "By" }, who(e.actor_id)),
          h("td", { "data-label": "User" }, who(e.target_user_id)),
          h("td", { "data-label": "Address" }, e.client_ip ?? "—"),
          h("td", { class: "details-json" }, Object.keys(e.details).length ? JSON.stringify(e.details) : "")))))));
    } catch (error) {
      replace(results, h("p", { class: "error", role: "alert" }, error.message));
    }
  }
  for (const control of [user, action, since]) control.addEventListener("change", load);
  replace(main,
    h("div", { class: "page-header" }, h("div", {}, h("h1", {}, "Audit trail"), h("p", { class: "muted" }, "Sign-ins, password and account changes, newest first."))),
    h("form", { class: "panel filters", role: "search", "aria-label": "Filter events" },
      field("audit-user", "User", user), field("audit-action", "Action", action), field("audit-since", "Since", since)),
    h("section", { class: "panel", "aria-label": "Events" }, results));
  await load();
}
