import qrcode from "qrcode-generator";
import { html, trusted, type Html } from "./html.js";

/**
 * The dark modules of `text`'s QR code as one SVG path, with the side in modules: each run of dark
 * modules in a row is one stroke a module wide (`m<gap> 0h<length>`), a few bytes where a square per
 * module took twenty, so that even the largest code keeps the page light.
 */
function qrPath(text: string): { size: number; d: string } {
  const qr = qrcode(0, "M");
  // Byte mode over UTF-8, so that any URI (a text memo can be any UTF-8) round-trips exactly.
  qr.addData(Buffer.from(text, "utf8").toString("latin1"), "Byte");
  qr.make();
  const count = qr.getModuleCount();
  const quiet = 4;
  let d = "";
  for (let row = 0; row < count; row++) {
    let runs = "";
    let x = 0;
    for (let col = 0; col < count; col++) {
      if (!qr.isDark(row, col)) continue;
      let end = col + 1;
      while (end < count && qr.isDark(row, end)) end++;
      runs += `m${col - x} 0h${end - col}`;
      x = col = end;
    }
    // The stroke is centred on its line: half a module down covers the row exactly.
    if (runs) d += `M${quiet} ${row + quiet + 0.5}${runs}`;
  }
  return { size: count + quiet * 2, d };
}

function svg({ size, d }: { size: number; d: string }, label: string, sizeAttributes: Html | string): Html {
  return html`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${size} ${size}"${sizeAttributes} role="img" aria-label="${label}" shape-rendering="crispEdges"><rect width="${size}" height="${size}" fill="#fff"/>${trusted(`<path d="${d}" fill="none" stroke="#000"/>`)}</svg>`;
}

/**
 * A QR code as inline SVG, drawn on the server so that it shows without JavaScript: error correction
 * M (a phone camera reads it off a screen), a quiet zone of four modules.
 */
export function qrSvg(text: string, label: string): Html {
  return svg(qrPath(text), label, "");
}

/**
 * `qrSvg` with an intrinsic size of whole pixels per module, as large as fits in `maxPx` (at least
 * two per module): modules of unequal width, which scaling to an arbitrary size gives, are what
 * makes a QR code on a low-resolution screen hard to read. CSS can still shrink it to fit.
 */
export function qrSvgFitting(text: string, label: string, maxPx: number): Html {
  const path = qrPath(text);
  const px = path.size * Math.max(2, Math.floor(maxPx / path.size));
  return svg(path, label, html` width="${px}" height="${px}"`);
}
