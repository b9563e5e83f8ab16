// Upload one file with tus-js-client (Node) and print what happened as one line of JSON.
// Usage: node tus_upload.mjs <endpoint> <token> <file> <chunkSize|0> <metadata JSON> [protocol]
// chunkSize 0 sends the whole file in one PATCH (tus-js-client's default).
import fs from "node:fs";
import * as tus from "tus-js-client";

const [endpoint, token, path, chunkArg, metadataJson, protocol] = process.argv.slice(2);
const chunkSize = Number(chunkArg) > 0 ? Number(chunkArg) : Infinity;
const offsets = [];
let fileId = null;
let lastError = null;

// A Buffer, like a browser's File: the client can re-read any range after a cut.
const upload = new tus.Upload(fs.readFileSync(path), {
  endpoint,
  chunkSize,
  metadata: JSON.parse(metadataJson),
  headers: { Authorization: `Bearer ${token}` },
  retryDelays: [200, 500, 1000, 1000, 2000, 2000, 3000],
  protocol: protocol || "tus-v1",
  onAfterResponse(req, res) {
    if (req.getMethod() === "HEAD") {
      offsets.push(Number(res.getHeader("Upload-Offset")));
    }
    const id = res.getHeader("Filestore-File-Id");
    if (id) fileId = id;
  },
  onShouldRetry(err, attempt, options) {
    lastError = String(err);
    const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
    return status === 0 || status >= 500 || status === 409 || status === 423;
  },
  onError(err) {
    console.log(JSON.stringify({ ok: false, error: String(err), offsets, lastError }));
    process.exit(1);
  },
  onSuccess() {
    console.log(JSON.stringify({ ok: true, url: upload.url, fileId, offsets, lastError }));
    process.exit(0);
  },
});
upload.start();
