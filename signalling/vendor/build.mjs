// Bundles the front-end packages from node_modules (installed by `npm ci` from
// the committed lockfile) into ES modules under signalling/static/vendor/,
// which the server serves itself at /static/vendor/ (no CDN).
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const out = join(root, "signalling", "static", "vendor");
mkdirSync(out, { recursive: true });

// One ES module per package, each exporting the package's API.
const bundles = {
  "msgpack.js": 'export { encode, decode, Encoder, Decoder } from "@msgpack/msgpack";',
  "qrcode.js": 'import QRCode from "qrcode"; export default QRCode; export const toCanvas = QRCode.toCanvas, toDataURL = QRCode.toDataURL, toString = QRCode.toString;',
  "uplot.js": 'import uPlot from "uplot"; export default uPlot;',
  "hls.js": 'import Hls from "hls.js"; export default Hls;',
};
for (const [name, contents] of Object.entries(bundles)) {
  await build({
    stdin: { contents, resolveDir: root, loader: "js" },
    bundle: true,
    format: "esm",
    minify: true,
    platform: "browser",
    target: "es2020",
    legalComments: "eof",
    outfile: join(out, name),
    logLevel: "warning",
  });
}
copyFileSync(join(root, "node_modules", "uplot", "dist", "uPlot.min.css"), join(out, "uplot.css"));
console.log(`vendor bundles written: ${Object.keys(bundles).join(", ")}, uplot.css`);
