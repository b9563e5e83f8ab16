// The console: sign-in, the layout, and the screens, one per `#/…` route. Every call goes to
// the public API with the cookie session, so the console can do nothing the API would refuse.

import { auditScreen, sendResetLink, usersScreen } from "./admin.js";
import { api, session, signIn, signOut } from "./api.js";
import { announce, emptyState, formatDate, h, loading, replace } from "./dom.js";
import { fileTable } from "./files.js";
import { importsScreen } from "./imports.js";
import { overviewScreen } from "./overview.js";
import { uploadPanel } from "./upload.js";

const app = document.getElementById("app");
let me = null;
let cleanup = [];

const ROLE_LABELS = { admin: "Admin", staff: "Staff", customer: "Customer" };

function main() {
  return document.getElementById("main");
}

function setTitle(title) {
  document.title = `${title} · Filestore`;
}

// -- sign-in -----------------------------------------------------------------------------------

function showSignIn(message) {
  me = null;
  setTitle("Sign in");
  const error = h("p", { class: "error", role: "alert" }, message ?? "");
  const submit = h("button", { type: "submit", class: "button wide" }, "Sign in");
  const form = h("form", { class: "signin-card", "aria-labelledby": "signin-title" },
    h("div", { class: "brand brand-large" }, h("span", { class: "brand-mark", "aria-hidden": "true" }, "F"), "Filestore"),
    h("h1", { id: "signin-title" }, "Sign in to the console"),
    h("div", { class: "field" }, h("label", { for: "username" }, "Username or e-mail"),
      h("input", { id: "username", name: "username", autocomplete: "username", required: true })),
    h("div", { class: "field" }, h("label", { for: "password" }, "Password"),
      h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true })),
    error, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    replace(error, "");
    submit.textContent = "Signing in…";
    try {
      await signIn(form.username.value, form.password.value);
      await start();
    } catch (err) {
      replace(error, err.status === 401 ? "Wrong username or password." : err.message);
      submit.disabled = false;
      submit.textContent = "Sign in";
      form.password.focus();
    }
  });
  replace(app, h("main", { id: "main", class: "signin" }, form));
  form.username.focus();
}

// -- layout ------------------------------------------------------------------------------------

function shell() {
  const links = me.role === "customer"
    ? [["#/customers/" + me.customer_id, "My files"], ["#/tickets", "Tickets"]]
    : [["#/overview", "Overview"], ["#/customers", "Customers"], ["#/tickets", "Tickets"], ["#/imports", "Imports"]];
  if (me.role === "admin") links.push(["#/users", "Users"], ["#/audit", "Audit trail"]);
  const nav = h("nav", { class: "nav", "aria-label": "Main" },
    links.map(([href, text]) => h("a", { href, class: "nav-link" }, text)));
  const header = h("header", { class: "topbar" },
    h("a", { class: "brand", href: "#/" }, h("span", { class: "brand-mark", "aria-hidden": "true" }, "F"), "Filestore"),
    nav,
    h("div", { class: "who" },
      h("span", { class: "who-name" }, me.full_name || me.username),
      h("span", { class: `role role-${me.role}` }, ROLE_LABELS[me.role] ?? me.role),
      h("button", { type: "button", class: "button small secondary", onclick: doSignOut }, "Sign out")));
  replace(app,
    h("a", { class: "skip-link", href: "#main" }, "Skip to content"),
    header,
    h("main", { id: "main", class: "content", tabindex: "-1" }));
}

function markNav() {
  for (const link of document.querySelectorAll(".nav-link")) {
    const current = location.hash.startsWith(link.getAttribute("href"));
    if (current) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
}

async function doSignOut() {
  try { await signOut(); } catch { /* the cookies are cleared either way */ }
  history.replaceState(null, "", "#/");
  showSignIn();
  announce("Signed out.");
}

// -- screens -----------------------------------------------------------------------------------

function pageHeader(title, subtitle, ...extra) {
  return h("div", { class: "page-header" },
    h("div", {}, h("h1", {}, title), subtitle ? h("p", { class: "muted" }, subtitle) : null), ...extra);
}

function customersScreen() {
  setTitle("Customers");
  const input = h("input", { id: "customer-search", type: "search", autocomplete: "off", placeholder: "Name or e-mail", "aria-controls": "customer-results" });
  const results = h("div", { id: "customer-results", class: "results", "aria-live": "polite" });
  const form = h("form", { class: "search", role: "search" },
    h("label", { for: "customer-search" }, "Search customers"), input);
  form.addEventListener("submit", (e) => e.preventDefault());
  replace(main(), pageHeader("Customers", "Find a customer by name or e-mail."), form, results);

  let timer;
  let seq = 0;
  async function search() {
    const q = input.value.trim();
    const mine = ++seq;
    replace(results, loading(q ? "Searching…" : "Loading customers…"));
    try {
      const found = await api(`/customers?limit=20${q ? `&q=${encodeURIComponent(q)}` : ""}`);
      if (mine !== seq) return;
      if (!found.length) {
        replace(results, emptyState(q ? `No customer matches “${q}”` : "No customers yet", q ? "Try part of the name or the e-mail." : null));
        return;
      }
      replace(results,
        h("p", { class: "muted small" }, `${found.length}${found.length === 20 ? "+" : ""} customer${found.length === 1 ? "" : "s"}`),
        h("ul", { class: "card-list", "aria-label": "Customers found" }, found.map((c) =>
          h("li", {}, h("a", { href: `#/customers/${c.id}`, class: "card-link" },
            h("span", { class: "card-title" }, c.full_name),
            h("span", { class: "muted" }, c.email),
            c.city ? h("span", { class: "muted small" }, c.city) : null)))));
    } catch (error) {
      if (mine === seq) replace(results, h("p", { class: "error", role: "alert" }, error.message));
    }
  }
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 200); });
  search();
  input.focus();
}

function details(pairs) {
  return h("dl", { class: "details" }, pairs.filter(([, v]) => v).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function ticketList(tickets, emptyHint) {
  if (!tickets.length) return emptyState("No tickets", emptyHint);
  return h("ul", { class: "card-list" }, tickets.map((t) =>
    h("li", {}, h("a", { href: `#/tickets/${t.id}`, class: "card-link row" },
      h("span", { class: "card-title" }, `#${t.id} ${t.subject}`),
      h("span", { class: `status status-${t.status}` }, t.status),
      h("span", { class: "muted small" }, formatDate(t.created_at))))));
}

function uploadToggle(options) {
  const slot = h("div", {});
  let open = null;
  const button = h("button", { type: "button", class: "button", "aria-expanded": "false" }, "Upload files");
  button.addEventListener("click", () => {
    if (open) {
      open.close();
      open = null;
      replace(slot);
      button.setAttribute("aria-expanded", "false");
      button.textContent = "Upload files";
      return;
    }
    open = uploadPanel(options);
    cleanup.push(() => open?.close());
    replace(slot, open.panel);
    button.setAttribute("aria-expanded", "true");
    button.textContent = "Close upload";
  });
  return { button, slot };
}

async function customerScreen(id) {
  replace(main(), loading("Loading customer…"));
  let customer;
  let tickets;
  try {
    [customer, tickets] = await Promise.all([
      api(`/customers/${id}`),
      api(`/tickets?customer_id=${id}&limit=100`),
    ]);
  } catch (error) {
    setTitle("Not found");
    replace(main(), emptyState(error.status === 404 ? "Customer not found" : error.message,
      error.status === 404 ? "It does not exist, or you may not see it." : null));
    return;
  }
  setTitle(customer.full_name);
  const files = fileTable({ listPath: `/files/customer/${id}`, me, emptyHint: "Upload the customer's documents and photos here." });
  const upload = uploadToggle({ customerId: customer.id, tickets, onUploaded: files.reload });
  const address = [customer.address, customer.postal_code, customer.city, customer.state, customer.country].filter(Boolean).join(", ");
  replace(main(),
    me.role === "customer" ? null : h("a", { href: "#/customers", class: "back" }, "← Customers"),
    pageHeader(customer.full_name, customer.email),
    h("div", { class: "grid" },
      h("section", { class: "panel", "aria-labelledby": "details-title" },
        h("h2", { id: "details-title" }, "Details"),
        details([["E-mail", customer.email], ["Phone", customer.phone], ["Address", address], ["Customer since", formatDate(customer.created_at)]]),
        // The customer's login is created by its first reset link if it has none yet.
        me.role === "customer" ? null : h("button", {
          type: "button", class: "button small secondary", "aria-label": `Send a login link to ${customer.full_name}`,
          onclick: () => sendResetLink(`/customers/${customer.id}/password-reset`, customer.email),
        }, "Login link")),
      h("section", { class: "panel", "aria-labelledby": "tickets-title" },
        h("h2", { id: "tickets-title" }, "Tickets"), ticketList(tickets, "No tickets for this customer."))),
    h("section", { class: "panel", "aria-labelledby": "files-title" },
      h("div", { class: "section-head" }, h("h2", { id: "files-title" }, "Files"), upload.button),
      upload.slot, files.element));
}

async function ticketsScreen() {
  setTitle("Tickets");
  replace(main(), pageHeader("Tickets", "Newest first."), loading("Loading tickets…"));
  try {
    const tickets = await api("/tickets?limit=100");
    replace(main(), pageHeader("Tickets", "Newest first."), h("section", { class: "panel" }, ticketList(tickets, "Tickets opened for customers appear here.")));
  } catch (error) {
    replace(main(), h("p", { class: "error", role: "alert" }, error.message));
  }
}

async function ticketScreen(id) {
  replace(main(), loading("Loading ticket…"));
  let ticket;
  try {
    ticket = await api(`/tickets/${id}`);
  } catch (error) {
    setTitle("Not found");
    replace(main(), emptyState(error.status === 404 ? "Ticket not found" : error.message,
      error.status === 404 ? "It does not exist, or you may not see it." : null));
    return;
  }
  setTitle(`Ticket #${ticket.id}`);
  const files = fileTable({ listPath: `/files/ticket/${id}`, me, emptyHint: "Add photos or documents to this ticket." });
  const upload = uploadToggle({ customerId: ticket.customer_id, ticketId: ticket.id, onUploaded: files.reload });
  replace(main(),
    h("a", { href: `#/customers/${ticket.customer_id}`, class: "back" }, "← Customer"),
    pageHeader(`#${ticket.id} ${ticket.subject}`, `Opened ${formatDate(ticket.created_at)}`,
      h("span", { class: `status status-${ticket.status}` }, ticket.status)),
    h("section", { class: "panel", "aria-labelledby": "media-title" },
      h("div", { class: "section-head" }, h("h2", { id: "media-title" }, "Media"), upload.button),
      upload.slot, files.element));
}

// -- routing -----------------------------------------------------------------------------------

async function route() {
  for (const fn of cleanup.splice(0)) fn();
  if (!me) return;
  const path = location.hash.replace(/^#/, "") || "/";
  const parts = path.split("/").filter(Boolean);
  markNav();
  if (parts[0] === "customers" && parts[1]) await customerScreen(parts[1]);
  else if (parts[0] === "customers" && me.role !== "customer") customersScreen();
  else if (parts[0] === "tickets" && parts[1]) await ticketScreen(parts[1]);
  else if (parts[0] === "tickets") await ticketsScreen();
  else if (parts[0] === "imports" && me.role !== "customer") { setTitle("Import customers"); importsScreen(main(), parts[1], (fn) => cleanup.push(fn)); }
  else if (parts[0] === "overview" && me.role !== "customer") { setTitle("Overview"); await overviewScreen(main(), (fn) => cleanup.push(fn)); }
  else if (parts[0] === "users" && me.role === "admin") { setTitle("Users"); await usersScreen(main(), me); }
  else if (parts[0] === "audit" && me.role === "admin") { setTitle("Audit trail"); await auditScreen(main()); }
  else location.replace(me.role === "customer" ? `#/customers/${me.customer_id}` : "#/customers");
}

async function start() {
  try {
    me = await api("/auth/me");
  } catch {
    showSignIn();
    return;
  }
  shell();
  await route();
}

session.onExpired = () => { if (me) showSignIn("Your session ended. Please sign in again."); };
window.addEventListener("hashchange", route);
start();
