// A table of files (a customer's or a ticket's), newest first and paged, with preview,
// download, copy-a-link and delete.

import { api } from "./api.js";
import { announce, emptyState, formatDate, formatSize, h, loading, replace } from "./dom.js";

const PAGE = 20;
const SCAN_LABELS = { clean: "Clean", unscanned: "Not scanned", disabled: "Scanning off", infected: "Virus found" };
const PREVIEWABLE = /^(image\/(png|jpeg|gif|webp)|application\/pdf)$/;

function downloadUrl(file, inline = false) {
  return `/files/download/${file.id}${inline ? "?inline=true" : ""}`;
}

function openDialog(title, body, actions) {
  const dialog = h("dialog", { class: "dialog", "aria-labelledby": "dialog-title" },
    h("div", { class: "dialog-head" },
      h("h2", { id: "dialog-title" }, title),
      h("button", { type: "button", class: "icon-button", "aria-label": "Close", onclick: () => dialog.close() }, "×")),
    h("div", { class: "dialog-body" }, body),
    actions ? h("div", { class: "dialog-actions" }, actions) : null);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

function preview(file) {
  const src = downloadUrl(file, true);
  const body = file.mime_type === "application/pdf"
    ? h("iframe", { class: "preview-frame", src, title: `Preview of ${file.filename}` })
    : h("img", { class: "preview-image", src, alt: `Preview of ${file.filename}` });
  openDialog(file.filename, body, [
    h("a", { class: "button", href: downloadUrl(file), download: file.filename }, "Download"),
  ]);
}

function confirmDelete(file, onDeleted) {
  let dialog;
  const remove = async (event) => {
    event.target.disabled = true;
    try {
      await api(`/files/${file.id}`, { method: "DELETE" });
      dialog.close();
      announce(`${file.filename} deleted.`);
      onDeleted();
    } catch (error) {
      event.target.disabled = false;
      replace(dialog.querySelector(".dialog-error"), error.message);
    }
  };
  dialog = openDialog("Delete this file?", [
    h("p", {}, "“", h("strong", {}, file.filename), "” will be deleted. This cannot be undone."),
    h("p", { class: "dialog-error", role: "alert" }),
  ], [
    h("button", { type: "button", class: "button secondary", onclick: () => dialog.close() }, "Cancel"),
    h("button", { type: "button", class: "button danger", onclick: remove }, "Delete"),
  ]);
}

async function copyLink(file) {
  try {
    const link = await api(`/files/${file.id}/download-url`);
    const until = link.expires_at ? ` It works until ${formatDate(link.expires_at)}.` : "";
    let copied = false;
    try {
      await navigator.clipboard.writeText(link.url);
      copied = true;
    } catch { /* no clipboard permission: the dialog shows the link to copy by hand */ }
    announce(copied ? `Link to ${file.filename} copied.${until}` : `Link to ${file.filename} ready.`);
    const input = h("input", { id: "share-link", type: "text", readonly: true, value: link.url });
    openDialog("Download link", [
      h("p", {}, copied ? "Copied to the clipboard." : "Copy this link:", until),
      h("label", { for: "share-link" }, "Link"),
      input,
    ]);
    input.select();
  } catch (error) {
    announce(`No link: ${error.message}`);
  }
}

function uploaderName(file, me) {
  if (file.uploaded_by === null) return "—";
  return file.uploaded_by === me.id ? "You" : `User #${file.uploaded_by}`;
}

function row(file, me, reload) {
  const canDelete = me.role !== "customer" || file.uploaded_by === me.id;
  const name = PREVIEWABLE.test(file.mime_type)
    ? h("button", { type: "button", class: "link-button", onclick: () => preview(file), "aria-label": `Preview ${file.filename}` }, file.filename)
    : h("span", {}, file.filename);
  return h("tr", {},
    h("th", { scope: "row", class: "file-name" }, name, h("span", { class: "muted small" }, file.mime_type)),
    // data-label: on a phone each row is a card and the cells name themselves (CSS ::before).
    h("td", { "data-label": "Type" }, h("span", { class: "tag" }, file.file_type)),
    h("td", { class: "num", "data-label": "Size" }, formatSize(file.file_size)),
    h("td", { "data-label": "Uploaded by" }, uploaderName(file, me)),
    h("td", { "data-label": "Date" }, formatDate(file.created_at)),
    h("td", { "data-label": "Scan" }, h("span", { class: `scan scan-${file.scan_status}` }, SCAN_LABELS[file.scan_status] ?? file.scan_status)),
    h("td", { "data-label": "Expires" }, file.expires_at ? formatDate(file.expires_at) : "Never"),
    h("td", { class: "actions" },
      h("a", { class: "button small secondary", href: downloadUrl(file), download: file.filename, "aria-label": `Download ${file.filename}` }, "Download"),
      h("button", { type: "button", class: "button small secondary", onclick: () => copyLink(file), "aria-label": `Copy link to ${file.filename}` }, "Copy link"),
      canDelete ? h("button", { type: "button", class: "button small danger-outline", onclick: () => confirmDelete(file, reload), "aria-label": `Delete ${file.filename}` }, "Delete") : null));
}

export function fileTable({ listPath, me, emptyHint }) {
  const container = h("div", { class: "files" });
  let offset = 0;

  async function load() {
    replace(container, loading("Loading files…"));
    let files;
    try {
      files = await api(`${listPath}?limit=${PAGE + 1}&offset=${offset}`);
    } catch (error) {
      replace(container, h("p", { class: "error", role: "alert" }, error.message));
      return;
    }
    const more = files.length > PAGE;
    files = files.slice(0, PAGE);
    if (!files.length && offset === 0) {
      replace(container, emptyState("No files yet", emptyHint));
      return;
    }
    const table = h("table", { class: "table" },
      h("caption", { class: "visually-hidden" }, "Files, newest first"),
      h("thead", {}, h("tr", {}, ["Name", "Type", "Size", "Uploaded by", "Date", "Scan", "Expires", "Actions"]
        .map((title) => h("th", { scope: "col" }, title)))),
      h("tbody", {}, files.map((file) => row(file, me, load))));
    const page = Math.floor(offset / PAGE) + 1;
    const pager = h("nav", { class: "pager", "aria-label": "File pages" },
      h("button", { type: "button", class: "button small secondary", disabled: offset === 0, onclick: () => { offset -= PAGE; load(); } }, "Newer"),
      h("span", { class: "muted" }, `Page ${page}`),
      h("button", { type: "button", class: "button small secondary", disabled: !more, onclick: () => { offset += PAGE; load(); } }, "Older"));
    replace(container, h("div", { class: "table-wrap" }, table), pager);
  }

  load();
  return { element: container, reload: () => { offset = 0; return load(); } };
}
