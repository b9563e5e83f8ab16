// The import wizard's middle steps, after the CSV is uploaded: the detected header and first
// rows (`POST /files/csv-import/preview`), each column matched to a customer field in an
// editable dropdown (pre-filled from the preview's suggestion), what to do with rows whose
// e-mail a customer already has (`validation_rules.on_duplicate`), a dry run of the whole file
// (`validation_rules.dry_run`: counts new / duplicates / invalid and the invalid rows with
// their reasons), then the real import with the same mapping. Rows further down that repeat an
// earlier row's e-mail (`duplicates_in_file`, a bounded scan past the shown rows) are named
// before the dry run, so nobody learns of them only from the import's skipped count. Every column is sent in
// `mapping_config`; a column set to "Not imported" is sent as "" so the server leaves it out.

import { api } from "./api.js";
import { announce, h, loading, replace } from "./dom.js";

// The customer fields an import fills (src/filestore/imports/fields.py).
const FIELDS = [["full_name", "Full name"], ["email", "E-mail"], ["phone", "Phone"], ["address", "Address"],
  ["city", "City"], ["state", "State / region"], ["postal_code", "Postal code"], ["country", "Country"],
  ["password", "Password"]];
const FIELD_LABEL = Object.fromEntries(FIELDS);
const VERDICTS = { new: "New", duplicate_in_file: "Duplicate in file", duplicate_existing: "Duplicate",
  update: "Update", skipped: "Skipped", invalid: "Invalid" };
const FINISHED = new Set(["completed", "failed", "cancelled"]);
// `validation_rules.on_duplicate`: what a row whose e-mail a customer already has does.
const ON_DUPLICATE = [["skip", "Skip them (leave the customer as it is)"],
  ["update", "Update the customer with the row's non-empty cells"],
  ["update_if_empty", "Fill only the customer's empty fields"]];
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

function delimiterName(d) {
  return { ",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe" }[d] ?? (d ? `“${d}”` : "—");
}

function problems(errors) {
  return errors.map((e) => {
    const where = [e.column, e.value ? `“${e.value}”` : null].filter(Boolean).join(" ");
    return where ? `${where}: ${e.error}` : e.error;
  }).join("; ");
}

// The first rows as the import would read them, with each one's verdict.
function rowsTable(preview) {
  const used = FIELDS.map(([f]) => f).filter((f) => Object.values(preview.mapping).includes(f));
  return h("div", { class: "table-wrap" }, h("table", { class: "table" },
    h("caption", { class: "visually-hidden" }, "The first rows of the file, as they would be imported"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Row"), used.map((f) => h("th", { scope: "col" }, FIELD_LABEL[f])),
      h("th", { scope: "col" }, "Verdict"))),
    h("tbody", {}, preview.rows.map((row) => h("tr", {},
      h("th", { scope: "row" }, String(row.row)),
      used.map((f) => h("td", { "data-label": FIELD_LABEL[f] }, row.values[f] || null)),
      h("td", { "data-label": "Verdict" }, h("span", { class: `verdict verdict-${row.verdict}` }, VERDICTS[row.verdict] ?? row.verdict),
        row.errors.length ? h("span", { class: "small error-text" }, ` ${problems(row.errors)}`) : null))))));
}

const plural = (n, one, many) => `${n.toLocaleString("en")} ${n === 1 ? one : many}`;

// The rows that repeat an earlier row's e-mail, with examples; nothing when the scan found none.
function duplicatesNotice(found) {
  if (!found || found.duplicate_rows === 0) return null;
  const n = found.duplicate_rows;
  const shown = found.examples.length;
  return h("section", { class: "notice", "aria-labelledby": "duplicates-title" },
    h("h4", { id: "duplicates-title" }, "Repeated e-mails in the file"),
    h("p", {}, n === 1
      ? "1 row repeats an e-mail from earlier in the file (it will be skipped)."
      : `${plural(n, "row", "rows")} repeat an e-mail from earlier in the file (they will be skipped).`),
    shown ? h("ul", { class: "duplicates", "aria-label": n > shown ? `The first ${shown} repeated rows` : "Repeated rows" },
      found.examples.map((e) => h("li", {}, h("strong", {}, `Row ${e.row}`), ": ", h("span", { class: "email" }, e.email),
        h("span", { class: "muted" }, ` (first on row ${e.first_row})`)))) : null,
    n > shown ? h("p", { class: "small muted" }, `…and ${plural(n - shown, "more row", "more rows")}.`) : null,
    found.complete ? null : h("p", { class: "small muted" },
      `Only the first ${plural(found.rows_scanned, "row was", "rows were")} checked here; `
      + "repeats further down are skipped too, and the dry run counts them with the duplicates."));
}

// One dropdown per column, labelled with the column's name, the suggestion's reason beneath.
function columnFields(preview, chosen, onChange) {
  return h("div", { class: "mapping" }, preview.columns.map((col, i) => {
    const id = `map-${i}`;
    const select = h("select", { id, "aria-describedby": `${id}-why` },
      h("option", { value: "" }, "Not imported"),
      FIELDS.map(([value, text]) => h("option", { value, selected: chosen[col.column] === value }, text)));
    select.addEventListener("change", () => { chosen[col.column] = select.value; onChange(); });
    const why = col.match === "fuzzy" ? `Perhaps ${FIELD_LABEL[col.field] ?? col.field}: ${col.why}` : col.why;
    return h("div", { class: "field mapping-field" },
      h("label", { for: id }, `Column “${col.column}”`), select,
      h("p", { class: "small muted", id: `${id}-why` }, why));
  }));
}

async function waitForJob(jobId, isStale) {
  for (;;) {
    const job = await api(`/files/jobs/${jobId}`);
    if (FINISHED.has(job.status) || isStale()) return job;
    await sleep(700);
  }
}

function dryRunResult(job, onDuplicate) {
  if (job.status !== "completed") {
    return h("p", { class: "error", role: "alert" }, `The dry run ${job.status}: ${job.message ?? "see the job"}.`);
  }
  const invalid = job.error_log;
  return h("div", {},
    h("dl", { class: "counts", "aria-label": "Dry run counts" },
      [["New", job.successful_rows], ["Duplicates", job.skipped_rows], ["Invalid", job.failed_rows]]
        .map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, String(v))))),
    onDuplicate === "skip" ? null : h("p", { class: "small muted" },
      "Duplicates include the rows that would update a customer; the first rows above show which."),
    invalid.length ? h("h4", { id: "invalid-title" },
      job.failed_rows > invalid.length ? `Invalid rows (the first ${invalid.length})` : "Invalid rows") : null,
    invalid.length ? h("div", { class: "table-wrap" }, h("table", { class: "table", "aria-labelledby": "invalid-title" },
      h("thead", {}, h("tr", {}, ["Row", "Column", "Value", "Reason"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, invalid.map((e) => h("tr", {},
        h("th", { scope: "row" }, String(e.row)),
        h("td", { "data-label": "Column" }, e.column ?? "—"),
        h("td", { "data-label": "Value" }, e.value ?? ""),
        h("td", { "data-label": "Reason" }, e.error)))))) : null);
}

// Steps 2–4 for an uploaded file; `onStarted(jobId)` when the real import is queued.
export function importWizard(file, onStarted) {
  const root = h("div", { class: "wizard" }, loading("Reading the file…"));
  const chosen = {};
  let preview = null;
  let generation = 0; // bumps on each mapping change: late answers for an older one are dropped
  const mappingConfig = () => Object.fromEntries(Object.entries(chosen));
  const onDuplicate = h("select", { id: "on-duplicate" },
    ON_DUPLICATE.map(([value, text]) => h("option", { value }, text)));
  const rules = (dryRun) => ({ dry_run: dryRun, on_duplicate: onDuplicate.value });
  const rowsBox = h("div", {});
  const duplicatesBox = h("div", {});
  const missing = h("p", { class: "error", role: "alert" });
  const dryBox = h("div", { class: "dry-run" });
  const dryButton = h("button", { type: "button", class: "button" }, "Dry run");
  const startBox = h("div", {});

  function showMissing() {
    const fields = preview.missing_required.map((f) => FIELD_LABEL[f] ?? f);
    replace(missing, fields.length ? `Choose a column for: ${fields.join(", ")}.` : "");
    dryButton.disabled = fields.length > 0;
  }

  onDuplicate.addEventListener("change", () => remap());

  async function remap() {
    const mine = ++generation;
    replace(dryBox); replace(startBox);
    replace(duplicatesBox);
    replace(rowsBox, loading("Checking the rows with this mapping…"));
    try {
      const body = await api("/files/csv-import/preview", { method: "POST", json: { file_upload_id: file.id, mapping_config: mappingConfig(), validation_rules: rules(false) } });
      if (mine !== generation) return;
      preview = body;
      replace(duplicatesBox, duplicatesNotice(preview.duplicates_in_file));
      replace(rowsBox, rowsTable(preview));
      showMissing();
      announce("Mapping checked.");
    } catch (error) {
      if (mine === generation) replace(rowsBox, h("p", { class: "error", role: "alert" }, error.message));
    }
  }

  async function post(dryRun) {
    const json = { file_upload_id: file.id, mapping_config: mappingConfig(), validation_rules: rules(dryRun) };
    return (await api("/files/csv-import", { method: "POST", json })).job_id;
  }

  dryButton.addEventListener("click", async () => {
    const mine = generation;
    dryButton.disabled = true;
    replace(startBox);
    replace(dryBox, loading("Dry run: checking every row…"));
    try {
      const job = await waitForJob(await post(true), () => mine !== generation);
      if (mine !== generation) return;
      replace(dryBox, dryRunResult(job, onDuplicate.value));
      if (job.status === "completed") {
        announce(`Dry run: ${job.successful_rows} new, ${job.skipped_rows} duplicates, ${job.failed_rows} invalid.`);
        const start = h("button", { type: "button", class: "button" }, "Start import");
        const error = h("p", { class: "error", role: "alert" });
        start.addEventListener("click", async () => {
          start.disabled = true;
          try { onStarted(await post(false)); } catch (e) { start.disabled = false; replace(error, e.message); }
        });
        replace(startBox, h("h3", {}, "4. Start the import"),
          h("p", {}, "The import uses this mapping and writes the rows the dry run counted."), error, start);
        start.focus();
      }
    } catch (error) {
      replace(dryBox, h("p", { class: "error", role: "alert" }, error.message));
    } finally {
      dryButton.disabled = preview.missing_required.length > 0;
    }
  });

  (async () => {
    try {
      preview = await api("/files/csv-import/preview", { method: "POST", json: { file_upload_id: file.id } });
    } catch (error) {
      replace(root, h("p", { class: "error", role: "alert" }, error.message));
      return;
    }
    for (const col of preview.columns) chosen[col.column] = col.match === "fuzzy" ? "" : col.field ?? "";
    replace(duplicatesBox, duplicatesNotice(preview.duplicates_in_file));
    replace(rowsBox, rowsTable(preview));
    showMissing();
    replace(root,
      h("h3", {}, "2. Check the columns"),
      h("p", { class: "muted" },
        `${file.filename}: header on line ${preview.header_row}, ${preview.header.length} columns, `
        + `${preview.encoding ?? "workbook"}, ${delimiterName(preview.delimiter)}-separated.`),
      preview.warnings.length ? h("ul", { class: "warnings", "aria-label": "Warnings" }, preview.warnings.map((w) => h("li", {}, w))) : null,
      columnFields(preview, chosen, remap),
      h("div", { class: "field" }, h("label", { for: "on-duplicate" }, "Rows whose e-mail a customer already has"),
        onDuplicate),
      duplicatesBox,
      h("h3", {}, `The first ${preview.rows.length} rows`),
      rowsBox,
      h("h3", {}, "3. Dry run"),
      h("p", { class: "muted" }, "Reads the whole file with this mapping and counts what an import would do. Nothing is written."),
      missing, dryButton, dryBox, startBox);
    announce(`Read ${preview.header.length} columns and the first ${preview.rows.length} rows.`);
  })();
  return root;
}
