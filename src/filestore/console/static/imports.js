// Importing customers from a CSV, as a wizard: upload the file (tus), check the columns and a
// dry run (import_wizard.js), start the import, follow its progress live, then the counts and
// the failed rows' errors.csv; and the list of import jobs.

import { api } from "./api.js";
import { announce, emptyState, formatDate, h, loading, replace } from "./dom.js";
import { importWizard } from "./import_wizard.js";
import { uploadPanel } from "./upload.js";

const FINISHED = new Set(["completed", "failed", "cancelled"]);
const STATUSES = [["", "All"], ["pending", "Pending"], ["processing", "Running"], ["completed", "Completed"], ["failed", "Failed"], ["cancelled", "Cancelled"]];

function counts(job) {
  return h("dl", { class: "counts" },
    [["Rows read", job.total_rows === null ? `${job.processed_rows}` : `${job.processed_rows} of ${job.total_rows}`],
      ["Imported", job.created_rows], job.updated_rows ? ["Updated", job.updated_rows] : null,
      ["Duplicates skipped", job.skipped_rows], ["Invalid", job.failed_rows]]
      .filter(Boolean).map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, String(v)))));
}

function summary(job) {
  if (job.status === "completed") {
    const updated = job.updated_rows ? ` ${job.updated_rows} updated,` : "";
    return `Import finished: ${job.created_rows} imported,${updated} ${job.skipped_rows} duplicates skipped, ${job.failed_rows} invalid.`;
  }
  if (job.status === "failed") return `Import failed: ${job.message ?? "see the errors"}.`;
  if (job.status === "cancelled") return `Import cancelled after ${job.processed_rows} rows.`;
  if (job.status === "pending") return "Waiting for a worker…";
  return `Importing: ${job.processed_rows}${job.total_rows ? ` of ${job.total_rows}` : ""} rows…`;
}

// One job, followed live (polled each second until it ends).
export function jobProgress(jobId, onCleanup) {
  const panel = h("section", { class: "panel", "aria-labelledby": "job-title" }, loading("Loading the import…"));
  let timer = null;
  let lastStatus = null;
  onCleanup(() => clearTimeout(timer));

  async function poll() {
    let job;
    try {
      job = await api(`/files/jobs/${jobId}`);
    } catch (error) {
      replace(panel, h("p", { class: "error", role: "alert" }, error.message));
      return;
    }
    const done = FINISHED.has(job.status);
    const bar = h("progress", { max: String(job.total_rows || 1), value: String(done && job.status === "completed" ? job.total_rows || 1 : job.processed_rows), "aria-label": "Import progress" });
    const cancel = done ? null : h("button", { type: "button", class: "button small danger-outline", onclick: async () => {
      try { await api(`/files/jobs/${jobId}/cancel`, { method: "POST" }); announce("Cancel requested."); } catch (error) { announce(error.message); }
    } }, "Cancel import");
    replace(panel,
      h("div", { class: "section-head" }, h("h2", { id: "job-title" }, "Import progress"),
        h("span", {}, h("span", { class: `status status-${job.status}` }, job.status),
          job.dry_run ? h("span", { class: "tag dry-run-tag" }, "Dry run: nothing written") : null)),
      bar,
      h("p", { class: "job-summary" }, summary(job)),
      counts(job),
      job.warnings.length ? h("ul", { class: "warnings", "aria-label": "Warnings" }, job.warnings.map((w) => h("li", {}, w))) : null,
      h("div", { class: "row-actions" },
        cancel,
        job.failed_rows ? h("a", { class: "button small secondary", href: `/files/jobs/${jobId}/errors.csv`, download: "errors.csv" }, "Download errors.csv") : null));
    if (job.status !== lastStatus) announce(summary(job));
    lastStatus = job.status;
    if (!done) timer = setTimeout(poll, 1000);
  }
  poll();
  return panel;
}

function jobsList(onCleanup) {
  const filter = h("select", { id: "jobs-status" }, STATUSES.map(([v, t]) => h("option", { value: v }, t)));
  const list = h("div", {});
  async function load() {
    replace(list, loading("Loading jobs…"));
    try {
      const jobs = await api(`/files/jobs?job_type=csv_import&limit=50${filter.value ? `&status=${filter.value}` : ""}`);
      if (!jobs.length) { replace(list, emptyState("No imports yet", filter.value ? "None with this status." : "Start one above.")); return; }
      replace(list, h("div", { class: "table-wrap" }, h("table", { class: "table" },
        h("caption", { class: "visually-hidden" }, "Import jobs, newest first"),
        h("thead", {}, h("tr", {}, ["Started", "Status", "Rows", "Imported", "Skipped", "Invalid", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, jobs.map((job) => h("tr", {},
          h("th", { scope: "row" }, formatDate(job.created_at)),
          h("td", { "data-label": "Status" }, h("span", { class: `status status-${job.status}` }, job.status),
            job.dry_run ? h("span", { class: "tag dry-run-tag" }, "Dry run") : null),
          h("td", { "data-label": "Rows" }, job.total_rows === null ? String(job.processed_rows) : `${job.processed_rows}/${job.total_rows}`),
          h("td", { "data-label": "Imported" }, String(job.successful_rows)),
          h("td", { "data-label": "Skipped" }, String(job.skipped_rows)),
          h("td", { "data-label": "Invalid" }, String(job.failed_rows)),
          h("td", { class: "actions" },
            h("a", { class: "button small secondary", href: `#/imports/${job.id}` }, "Open"),
            FINISHED.has(job.status) ? null : h("button", { type: "button", class: "button small danger-outline", onclick: async () => {
              try { await api(`/files/jobs/${job.id}/cancel`, { method: "POST" }); announce("Cancel requested."); load(); } catch (error) { announce(error.message); }
            } }, "Cancel"))))))));
    } catch (error) {
      replace(list, h("p", { class: "error", role: "alert" }, error.message));
    }
  }
  filter.addEventListener("change", load);
  load();
  return h("section", { class: "panel", "aria-labelledby": "jobs-title" },
    h("div", { class: "section-head" }, h("h2", { id: "jobs-title" }, "Imports"),
      h("div", { class: "inline-field" }, h("div", { class: "field" }, h("label", { for: "jobs-status" }, "Status"), filter))),
    list);
}

export function importsScreen(main, jobId, onCleanup) {
  const header = h("div", { class: "page-header" }, h("div", {}, h("h1", {}, "Import customers"),
    h("p", { class: "muted" }, "Upload a CSV file of customers, match its columns to customer fields, try a dry run, then import and follow it.")));
  if (jobId) {
    replace(main, h("a", { href: "#/imports", class: "back" }, "← Imports"), header, jobProgress(jobId, onCleanup));
    return;
  }
  const start = h("div", { class: "start" });
  const upload = uploadPanel({
    fileType: "csv",
    allowedFileTypes: [".csv"],
    maxFiles: 1,
    title: "1. Upload the CSV file",
    note: "One CSV file with a header row (name, e-mail, phone, address…).",
    height: 260,
    onStored(file) {
      replace(start, importWizard(file, (id) => { location.hash = `#/imports/${id}`; }));
    },
  });
  onCleanup(() => upload.close());
  replace(main, header, h("div", { class: "panel" }, upload.panel, start), jobsList(onCleanup));
}
