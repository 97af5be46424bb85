import qrcode from "qrcode-generator";
import { html, trusted, type Html } from "./html.js";

/**
 * A QR code as inline SVG, drawn on the server so that it shows without JavaScript. One path of unit
 * squares, error correction M (a phone camera reads it off a screen), a quiet zone of four modules.
 */
export function qrSvg(text: string, label: string): Html {
  const qr = qrcode(0, "M");
  // Byte mode over UTF-8, so that any URI (a text memo can be any UTF-8) round-trips exactly.
  qr.addData(Buffer.from(text, "utf8").toString("latin1"), "Byte");
  qr.make();
  const count = qr.getModuleCount();
  const quiet = 4;
  const size = count + quiet * 2;
  let d = "";
  for (let row = 0; row < count; row++) {
    for (let col = 0; col < count; col++) if (qr.isDark(row, col)) d += `M${col + quiet} ${row + quiet}h1v1h-1z`;
  }
  return html`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${size} ${size}" role="img" aria-label="${label}" shape-rendering="crispEdges"><rect width="${size}" height="${size}" fill="#fff"/>${trusted(`<path d="${d}" fill="#000"/>`)}</svg>`;
}
