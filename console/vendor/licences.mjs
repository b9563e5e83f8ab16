// Prints the licence of every package installed under node_modules (the packages bundled into
// uppy.min.js), for `make vendor` to store next to the vendored files.
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";

const root = "node_modules";
const dirs = [];
for (const name of readdirSync(root).sort()) {
  if (name.startsWith(".")) continue;
  if (name.startsWith("@")) {
    for (const sub of readdirSync(join(root, name)).sort()) dirs.push(join(root, name, sub));
  } else {
    dirs.push(join(root, name));
  }
}
for (const dir of dirs) {
  const manifest = join(dir, "package.json");
  if (!existsSync(manifest)) continue;
  const pkg = JSON.parse(readFileSync(manifest, "utf8"));
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  console.log(`==== ${pkg.name}@${pkg.version} (${pkg.license ?? "see below"}) ====`);
  console.log(file ? readFileSync(join(dir, file), "utf8").trim() : "(no licence file in the package)");
  console.log();
}
