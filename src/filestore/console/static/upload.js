// The upload panel: Uppy's Dashboard sending files over tus (resumable; a failed chunk is
// retried, an upload cut off resumes where the server's offset says). The choices above it
// (type, ticket, expiry) become each upload's tus metadata: the same fields as the API's form.

import { csrfToken, refreshSession } from "./api.js";
import { announce, h, formatSize } from "./dom.js";

const EXPIRY_CHOICES = [
  ["", "Never"],
  ["1", "In 1 day"],
  ["7", "In 7 days"],
  ["30", "In 30 days"],
  ["365", "In 1 year"],
];
const FILE_TYPES = [
  ["document", "Document"],
  ["photo", "Photo"],
  ["contract", "Contract"],
  ["invoice", "Invoice"],
  ["other", "Other"],
];

// An API refusal in plain words, next to the file it concerns.
export function plainError(status, body, maxSize) {
  const code = body && body.code;
  if (status === 413 || code === "file_too_large" || code === "upload_length_exceeded") {
    return maxSize ? `Too large: files may be at most ${formatSize(maxSize)}.` : "Too large for this server.";
  }
  if (code === "file_type_not_allowed" || code === "unsupported_media_type" || status === 415) {
    return "This type of file is not allowed.";
  }
  if (code === "virus_found" || (typeof body?.detail === "string" && /virus|malware/i.test(body.detail))) {
    return "A virus was found in this file; it was not stored.";
  }
  if (code === "empty_file") return "The file is empty.";
  if (status === 401) return "Your session ended; sign in again.";
  if (status === 403) return typeof body?.detail === "string" ? body.detail : "You may not upload this here.";
  if (typeof body?.detail === "string") return body.detail;
  return "The upload failed; try again.";
}

function responseOf(error) {
  const response = error && error.originalResponse;
  if (!response) return { status: 0, body: null };
  let body = null;
  try { body = JSON.parse(response.getBody()); } catch { body = null; }
  return { status: response.getStatus(), body };
}

async function maxUploadSize() {
  try {
    const response = await fetch("/files/tus", { method: "OPTIONS" });
    const value = Number(response.headers.get("Tus-Max-Size"));
    return Number.isFinite(value) && value > 0 ? value : null;
  } catch {
    return null;
  }
}

function select(id, label, options) {
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    h("select", { id }, options.map(([value, text]) => h("option", { value }, text))));
}

// `fileType` fixes the type and hides the choices (the import's CSV); `onStored(file)` gets
// each stored file's API record.
export function uploadPanel({
  customerId = null, ticketId = null, tickets = [], onUploaded, onStored,
  fileType = null, allowedFileTypes = null, maxFiles = 50, title = "Upload files",
  note = "Drop several files at once; uploads resume after a dropped connection.", height = 340,
}) {
  const ticketOptions = [["", "No ticket"], ...tickets.map((t) => [String(t.id), `#${t.id} ${t.subject}`])];
  const target = h("div", { class: "uppy-target" });
  const choices = fileType ? null : h("div", { class: "choices" },
    select("upload-file-type", "File type", FILE_TYPES),
    ticketId ? null : select("upload-ticket", "Attach to ticket", ticketOptions),
    select("upload-expiry", "Expires", EXPIRY_CHOICES));
  const panel = h("section", { class: "panel upload-panel", "aria-labelledby": "upload-title" },
    h("h3", { id: "upload-title" }, title), choices, target);
  const restrictions = { maxNumberOfFiles: maxFiles, allowedFileTypes };

  let maxSize = null;
  const uppy = new window.Uppy.Uppy({
    autoProceed: false,
    restrictions,
    onBeforeUpload(files) {
      const days = panel.querySelector("#upload-expiry")?.value;
      const ticket = ticketId ?? (panel.querySelector("#upload-ticket")?.value || "");
      const meta = {
        file_type: fileType ?? panel.querySelector("#upload-file-type").value,
        customer_id: customerId ? String(customerId) : "",
        ticket_id: ticket ? String(ticket) : "",
        expires_at: days ? new Date(Date.now() + Number(days) * 86400000).toISOString() : "",
      };
      const updated = {};
      for (const [id, file] of Object.entries(files)) updated[id] = { ...file, meta: { ...file.meta, ...meta } };
      return updated;
    },
  });
  uppy.use(window.Uppy.Dashboard, {
    inline: true,
    target,
    width: "100%",
    height,
    proudlyDisplayPoweredByUppy: false,
    showProgressDetails: true,
    note,
  });
  uppy.use(window.Uppy.Tus, {
    endpoint: "/files/tus",
    headers: () => ({ "X-CSRF-Token": csrfToken() }),
    chunkSize: 1024 * 1024,
    retryDelays: [500, 1000, 3000, 5000, 10000, 20000],
    removeFingerprintOnSuccess: true,
    allowedMetaFields: ["name", "type", "file_type", "customer_id", "ticket_id", "expires_at"],
    onShouldRetry(error, retryAttempt, options, next) {
      const { status } = responseOf(error);
      // The access cookie expired during a long upload: renew it; the retry then carries it.
      if (status === 401 && retryAttempt < 2) {
        refreshSession();
        return true;
      }
      // Refusals (too large, wrong type, forbidden) do not get better by retrying.
      if (status >= 400 && status < 500 && status !== 409 && status !== 423 && status !== 429) return false;
      return next(error);
    },
  });
  maxUploadSize().then((size) => {
    maxSize = size;
    if (size) uppy.setOptions({ restrictions: { ...restrictions, maxFileSize: size } });
  });
  const reasons = new Map();
  uppy.on("upload-error", (file, error) => {
    const { status, body } = responseOf(error);
    const message = plainError(status, body, maxSize);
    reasons.set(file.id, message);
    uppy.setFileState(file.id, { error: message });
    uppy.info(`${file.name}: ${message}`, "error", 8000);
  });
  uppy.on("back-online", () => uppy.retryAll());
  uppy.on("upload-success", async (file, response) => {
    if (!onStored || !response.uploadURL) return;
    // The finished tus upload names its stored file.
    const upload = await fetch(response.uploadURL, { headers: { Accept: "application/json" } }).then((r) => r.json());
    if (upload.file) onStored(upload.file);
  });
  uppy.on("complete", (result) => {
    const done = result.successful.length;
    const failures = result.failed.map((f) => `${f.name} was not uploaded: ${reasons.get(f.id) ?? "it failed"}`);
    announce([`${done} file${done === 1 ? "" : "s"} uploaded.`, ...failures].join(" "));
    if (done) onUploaded?.();
  });
  return { panel, close: () => uppy.destroy(), reset: () => uppy.cancelAll() };
}
