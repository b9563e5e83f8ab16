// The peer of Filestore's tus endpoint for bench/tus.py: @tus/server with @tus/s3-store on the
// bench's own SeaweedFS. Not part of Filestore; run by `bench/tus.py --peer DIR`, which copies
// this file into DIR (where `npm install @tus/server @tus/s3-store` was run: ESM resolves
// packages next to the script) and passes the store through the environment.
import http from "node:http";
import { Server } from "@tus/server";
import { S3Store } from "@tus/s3-store";

const env = process.env;
const datastore = new S3Store({
  // 8 MiB, the package's default, stated; parts are spooled to the OS temp dir as they fill.
  partSize: 8 * 1024 * 1024,
  s3ClientConfig: {
    bucket: env.S3_BUCKET,
    region: env.S3_REGION,
    endpoint: env.S3_ENDPOINT,
    forcePathStyle: true,
    credentials: { accessKeyId: env.S3_ACCESS_KEY, secretAccessKey: env.S3_SECRET_KEY },
    // The SDK's default extra CRC32 of every request body: off, as minio/obstore send none.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  },
});
const tus = new Server({ path: "/files", datastore });
http
  .createServer((req, res) => tus.handle(req, res))
  .listen(Number(env.PORT), "127.0.0.1", () => console.log(`tus peer on ${env.PORT}`));
