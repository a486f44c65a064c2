// Renders TeX to HTML with KaTeX at book-build time.
//   node katex_render.js /usr/share/javascript/katex/katex.js  < items.json
// stdin: [{"tex": "...", "display": bool}, ...]
// stdout: [{"html": "..."} or {"error": "..."}, ...] in the same order.
"use strict";
const katex = require(process.argv[2]);
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const items = JSON.parse(input);
  const out = items.map(({ tex, display }) => {
    try {
      return { html: katex.renderToString(tex, { displayMode: display, throwOnError: true, strict: "error" }) };
    } catch (e) {
      return { error: String(e.message || e) };
    }
  });
  process.stdout.write(JSON.stringify(out));
});
