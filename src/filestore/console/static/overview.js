// The Overview screen (staff and admins): storage per bucket, the customers with the most bytes,
// uploads per day with the rejected ones by reason, CSV imports per day, and the health of the
// workers and clamd. Figures from `GET /stats/overview` and `GET /health`; the day charts are
// drawn by uPlot (vendored, global `uPlot`), and every chart has its numbers as a table.

import { api } from "./api.js";
import { emptyState, formatDate, formatSize, h, loading, replace } from "./dom.js";

const REASONS = ["size", "type", "virus", "checksum", "missing", "other"];
const REASON_LABELS = { size: "Too large", type: "Type not allowed", virus: "Virus found", checksum: "Checksum mismatch", missing: "Bytes missing", other: "Other" };
const COLOURS = { completed: "#2563eb", size: "#d97706", type: "#7c3aed", virus: "#dc2626", checksum: "#0891b2", missing: "#64748b", other: "#94a3b8", rows: "#16a34a", failed: "#dc2626", seconds: "#7c3aed" };
const number = new Intl.NumberFormat();
// Counts are whole numbers: ticks never fall between them.
const WHOLE = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7];

function header(days) {
  return h("div", { class: "page-header" },
    h("div", {}, h("h1", {}, "Overview"), h("p", { class: "muted" }, `Storage now; uploads and imports over the last ${days} days (UTC).`)));
}

function stat(label, value, hint) {
  return h("div", { class: "stat" }, h("p", { class: "stat-label" }, label), h("p", { class: "stat-value" }, value), hint ? h("p", { class: "muted small" }, hint) : null);
}

function table(caption, columns, rows) {
  return h("div", { class: "table-wrap" }, h("table", { class: "table numbers" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c, i) => (i === 0 ? h("th", { scope: "row" }, c) : h("td", { "data-label": columns[i] }, c))))))));
}

// Horizontal bars as plain elements: the label and the figure are text, the bar is decoration.
function barList(label, items) {
  const max = Math.max(1, ...items.map((i) => i.value));
  return h("ul", { class: "bars", "aria-label": label }, items.map((item) => {
    const bar = h("span", { class: "bar", "aria-hidden": "true" });
    bar.style.width = `${Math.max(1, (100 * item.value) / max)}%`;
    return h("li", {}, h("span", { class: "bar-label" }, item.label), h("span", { class: "bar-track" }, bar), h("span", { class: "bar-value" }, item.text));
  }));
}

function dayLabel(iso) {
  return new Date(`${iso}T00:00:00Z`).toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
}

// A uPlot chart of day series; `description` is its accessible name, the table its numbers.
function dayChart(onCleanup, { description, days, series, axes }) {
  const box = h("div", { class: "chart", role: "img", "aria-label": description });
  if (typeof uPlot === "undefined") return box;
  const xs = days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
  let plot = null;
  const draw = () => {
    const width = Math.max(280, box.clientWidth || 600);
    if (plot) { plot.setSize({ width, height: 220 }); return; }
    plot = new uPlot({
      width, height: 220, tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      cursor: { drag: { x: false, y: false } }, legend: { live: false },
      scales: { x: { time: true } },
      axes: [{}, ...axes],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.colour, fill: s.fill ? `${s.colour}33` : undefined, width: 2, scale: s.scale ?? "y", points: { show: days.length <= 31 }, spanGaps: true }))],
    }, [xs, ...series.map((s) => s.values)], box);
  };
  requestAnimationFrame(draw);
  const onResize = () => plot && draw();
  window.addEventListener("resize", onResize);
  onCleanup(() => { window.removeEventListener("resize", onResize); plot?.destroy(); });
  return box;
}

function storageSection(body) {
  const total = body.storage.reduce((n, b) => n + b.bytes, 0);
  const files = body.storage.reduce((n, b) => n + b.files, 0);
  return h("section", { class: "panel", "aria-labelledby": "storage-title" },
    h("h2", { id: "storage-title" }, "Storage per bucket"),
    h("p", { class: "muted" }, `${formatSize(total)} in ${number.format(files)} live file${files === 1 ? "" : "s"}.`),
    body.storage.length
      ? barList("Bytes per bucket", body.storage.map((b) => ({ label: b.bucket, value: b.bytes, text: `${formatSize(b.bytes)} · ${number.format(b.files)} files` })))
      : emptyState("No files stored yet"));
}

function customersSection(body) {
  return h("section", { class: "panel", "aria-labelledby": "top-title" },
    h("h2", { id: "top-title" }, "Customers with the most bytes"),
    h("p", { class: "muted" }, `Live files uploaded in the last ${body.days} days.`),
    body.top_customers.length
      ? barList("Bytes per customer", body.top_customers.map((c) => ({ label: c.full_name, value: c.bytes, text: `${formatSize(c.bytes)} · ${number.format(c.files)} files` })))
      : emptyState("No uploads in this window"));
}

function uploadsSection(body, onCleanup) {
  const days = body.uploads;
  const done = days.reduce((n, d) => n + d.completed, 0);
  const refused = days.reduce((n, d) => n + d.rejected, 0);
  const byReason = {};
  for (const d of days) for (const [r, n] of Object.entries(d.rejected_by_reason)) byReason[r] = (byReason[r] ?? 0) + n;
  const reasons = REASONS.filter((r) => byReason[r]);
  const rate = done + refused ? `${((100 * done) / (done + refused)).toFixed(1)} % accepted` : "no uploads";
  const reasonText = reasons.map((r) => `${number.format(byReason[r])} ${REASON_LABELS[r].toLowerCase()}`).join(", ");
  const description = `Uploads per day: ${number.format(done)} accepted and ${number.format(refused)} rejected in ${body.days} days${reasonText ? ` (${reasonText})` : ""}.`;
  const active = days.filter((d) => d.completed || d.rejected);
  return h("section", { class: "panel", "aria-labelledby": "uploads-title" },
    h("h2", { id: "uploads-title" }, "Uploads per day"),
    h("p", { class: "muted" }, `${number.format(done)} accepted, ${number.format(refused)} rejected: ${rate}.`),
    active.length && dayChart(onCleanup, {
      description, days: days.map((d) => d.day),
      series: [{ label: "Accepted", colour: COLOURS.completed, values: days.map((d) => d.completed), fill: true },
        ...reasons.map((r) => ({ label: `Rejected: ${REASON_LABELS[r]}`, colour: COLOURS[r], values: days.map((d) => d.rejected_by_reason[r] ?? 0) }))],
      axes: [{ label: "Uploads", incrs: WHOLE }],
    }),
    active.length
      ? table("Uploads per day", ["Day", "Accepted", "Stored", "Rejected", ...reasons.map((r) => REASON_LABELS[r])],
        active.map((d) => [dayLabel(d.day), number.format(d.completed), formatSize(d.bytes), number.format(d.rejected), ...reasons.map((r) => number.format(d.rejected_by_reason[r] ?? 0))]))
      : emptyState("No uploads in this window"));
}

function seconds(value) {
  if (value === null || value === undefined) return "—";
  return value < 60 ? `${value.toFixed(1)} s` : `${(value / 60).toFixed(1)} min`;
}

function importsSection(body, onCleanup) {
  const days = body.imports;
  const count = days.reduce((n, d) => n + d.imports, 0);
  const rows = days.reduce((n, d) => n + d.rows_imported, 0);
  const failedRows = days.reduce((n, d) => n + d.rows_failed, 0);
  const active = days.filter((d) => d.imports);
  return h("section", { class: "panel", "aria-labelledby": "imports-title" },
    h("h2", { id: "imports-title" }, "Imports per day"),
    h("p", { class: "muted" }, `${number.format(count)} CSV import${count === 1 ? "" : "s"}: ${number.format(rows)} rows imported, ${number.format(failedRows)} rows failed.`),
    active.length && dayChart(onCleanup, {
      description: `Imports per day: ${number.format(count)} imports, ${number.format(rows)} rows imported and ${number.format(failedRows)} rows failed in ${body.days} days.`,
      days: days.map((d) => d.day),
      series: [{ label: "Rows imported", colour: COLOURS.rows, values: days.map((d) => d.rows_imported), fill: true },
        { label: "Rows failed", colour: COLOURS.failed, values: days.map((d) => d.rows_failed) },
        { label: "Average run time (s)", colour: COLOURS.seconds, values: days.map((d) => d.average_seconds), scale: "s" }],
      axes: [{ label: "Rows", incrs: WHOLE }, { scale: "s", side: 1, label: "Seconds", grid: { show: false } }],
    }),
    active.length
      ? table("Imports per day", ["Day", "Imports", "Failed", "Rows imported", "Rows failed", "Rows skipped", "Average run time", "Longest"],
        active.map((d) => [dayLabel(d.day), number.format(d.imports), number.format(d.failed), number.format(d.rows_imported), number.format(d.rows_failed), number.format(d.rows_skipped), seconds(d.average_seconds), seconds(d.longest_seconds)]))
      : emptyState("No imports in this window"));
}

const HEALTH_TEXT = { ok: "OK", stale: "Stale heartbeat", none: "No worker running", unknown: "Unknown", down: "Down" };

function healthSection(report) {
  if (!report) return h("section", { class: "panel" }, h("h2", {}, "Health"), h("p", { class: "error" }, "The health check did not answer."));
  const worker = report.worker ?? {};
  const item = (label, value, ok, extra) => [h("dt", {}, label), h("dd", {}, h("span", { class: `status ${ok ? "status-ok" : "status-bad"}` }, value), extra ? h("span", { class: "muted small" }, ` ${extra}`) : null)];
  return h("section", { class: "panel", "aria-labelledby": "health-title" },
    h("h2", { id: "health-title" }, "Health"),
    h("dl", { class: "details" },
      item("Service", report.status === "healthy" ? "Healthy" : "Unhealthy", report.status === "healthy"),
      item("Database", report.database === "ok" ? "OK" : report.database, report.database === "ok"),
      item("Object storage", report.storage === "ok" ? "OK" : report.storage, report.storage === "ok"),
      item("Workers", HEALTH_TEXT[worker.status] ?? worker.status, worker.status === "ok", worker.last_heartbeat ? `last heartbeat ${formatDate(worker.last_heartbeat)}` : null),
      item("Virus scanner (clamd)", report.scanner == null ? "Not used (VIRUS_SCAN=off)" : report.scanner === "ok" ? "OK" : report.scanner, report.scanner == null || report.scanner === "ok")));
}

async function health() {
  // 503 still carries the report (a part is down): read the body whatever the status.
  try {
    const response = await fetch("/health", { headers: { Accept: "application/json" }, credentials: "same-origin" });
    return await response.json();
  } catch {
    return null;
  }
}

export async function overviewScreen(main, onCleanup, days = 30) {
  replace(main, header(days), loading("Loading the overview…"));
  let body;
  let report;
  try {
    [body, report] = await Promise.all([api(`/stats/overview?days=${days}`), health()]);
  } catch (error) {
    replace(main, header(days), h("p", { class: "error", role: "alert" }, error.message));
    return;
  }
  replace(main, header(days),
    h("div", { class: "stats" },
      stat("Storage used", formatSize(body.storage.reduce((n, b) => n + b.bytes, 0))),
      stat("Uploads", number.format(body.uploads.reduce((n, d) => n + d.completed, 0)), `last ${days} days`),
      stat("Rejected", number.format(body.uploads.reduce((n, d) => n + d.rejected, 0)), `last ${days} days`),
      stat("Imports", number.format(body.imports.reduce((n, d) => n + d.imports, 0)), `last ${days} days`)),
    uploadsSection(body, onCleanup),
    h("div", { class: "grid" }, storageSection(body), customersSection(body)),
    importsSection(body, onCleanup),
    healthSection(report));
}
