/**
 * Every string the checkout shows, in one catalogue: English and Spanish. A page picks its language
 * with `?lang=` first, then the browser's Accept-Language, else English.
 */

export const LANGUAGES = ["en", "es"] as const;
export type Language = (typeof LANGUAGES)[number];
export const DEFAULT_LANGUAGE: Language = "en";

export interface Messages {
  /** The name of the language in itself, for the link that switches to it. */
  languageName: string;
  paymentRequest: string;
  pageTitle: (merchant: string) => string;
  status: {
    pending: string;
    partially_paid: (remaining: string) => string;
    paid: string;
    expired: string;
    canceled: string;
  };
  received: (received: string, amount: string) => string;
  stillToPay: string;
  scanWithWallet: string;
  qrLabel: (amount: string) => string;
  openInWallet: string;
  amount: string;
  asset: string;
  nativeAsset: string;
  issuer: string;
  sendTo: string;
  memo: (type: string) => string;
  memoTypes: { text: string; id: string; hash: string };
  memoRequiredTitle: string;
  memoRequired: string;
  muxedNote: string;
  timeLeft: string;
  /** The copy buttons: their text, their text once done, and their accessible name for each value. */
  copy: { button: string; done: string; amount: string; issuer: string; destination: string; memo: string; transaction: string };
  transaction: string;
  viewReceipt: string;
  continue: string;
  expiredHelp: string;
  refundable: (received: string) => string;
  canceledHelp: string;
  refresh: string;
  noScript: string;
  notFoundTitle: string;
  notFound: string;
  receiptTitle: string;
  paidTo: string;
  payment: string;
  description: string;
  paidAt: string;
  transactions: string;
  ledger: string;
  onChainTime: string;
  from: string;
  print: string;
  noReceiptTitle: string;
  noReceipt: string;
  backToPayment: string;
}

const en: Messages = {
  languageName: "English",
  paymentRequest: "Payment request",
  pageTitle: (merchant) => `Pay ${merchant}`,
  status: {
    pending: "Waiting for your payment",
    partially_paid: (remaining) => `Partly paid: please send the remaining ${remaining}`,
    paid: "Paid. Thank you!",
    expired: "This payment request has expired",
    canceled: "This payment request was canceled",
  },
  received: (received, amount) => `Received ${received} of ${amount}.`,
  stillToPay: "Still to pay",
  scanWithWallet: "Scan with a Stellar wallet",
  qrLabel: (amount) => `QR code to pay ${amount} with a Stellar wallet`,
  openInWallet: "Open in wallet",
  amount: "Amount",
  asset: "Asset",
  nativeAsset: "XLM (Stellar lumens)",
  issuer: "issuer",
  sendTo: "Send to",
  memo: (type) => `Memo (${type})`,
  memoTypes: { text: "text", id: "ID", hash: "hash" },
  memoRequiredTitle: "Memo required.",
  memoRequired: "Enter this memo exactly in your wallet: without it your payment cannot be matched to this request.",
  muxedNote: "This address identifies your payment: no memo is needed.",
  timeLeft: "Time left",
  copy: {
    button: "Copy",
    done: "Copied",
    amount: "Copy amount",
    issuer: "Copy issuer",
    destination: "Copy address",
    memo: "Copy memo",
    transaction: "Copy transaction hash",
  },
  transaction: "Transaction",
  viewReceipt: "View receipt",
  continue: "Continue",
  expiredHelp: "Please do not send a payment now. If you paid before it expired, this page shows it as paid once the payment is seen.",
  refundable: (received) => `${received} arrived for this request: contact the merchant about a refund.`,
  canceledHelp: "Please do not send a payment. Contact the merchant if you need help.",
  refresh: "Refresh",
  noScript: "This page does not update by itself without JavaScript:",
  notFoundTitle: "Payment not found",
  notFound: "This payment link is not valid. Check the link you were given, or ask the merchant for a new one.",
  receiptTitle: "Receipt",
  paidTo: "Paid to",
  payment: "Payment",
  description: "Description",
  paidAt: "Paid on",
  transactions: "Transactions",
  ledger: "Ledger",
  onChainTime: "On-chain time",
  from: "From",
  print: "Print",
  noReceiptTitle: "No receipt yet",
  noReceipt: "There is a receipt only once this payment has been paid.",
  backToPayment: "Back to the payment",
};

const es: Messages = {
  languageName: "Español",
  paymentRequest: "Solicitud de pago",
  pageTitle: (merchant) => `Pagar a ${merchant}`,
  status: {
    pending: "Esperando tu pago",
    partially_paid: (remaining) => `Pagado en parte: envía los ${remaining} que faltan`,
    paid: "Pagado. ¡Gracias!",
    expired: "Esta solicitud de pago ha caducado",
    canceled: "Esta solicitud de pago fue cancelada",
  },
  received: (received, amount) => `Recibido ${received} de ${amount}.`,
  stillToPay: "Falta pagar",
  scanWithWallet: "Escanea con una billetera Stellar",
  qrLabel: (amount) => `Código QR para pagar ${amount} con una billetera Stellar`,
  openInWallet: "Abrir en la billetera",
  amount: "Importe",
  asset: "Activo",
  nativeAsset: "XLM (lumens de Stellar)",
  issuer: "emisor",
  sendTo: "Enviar a",
  memo: (type) => `Memo (${type})`,
  memoTypes: { text: "texto", id: "ID", hash: "hash" },
  memoRequiredTitle: "Memo obligatorio.",
  memoRequired: "Escribe este memo tal cual en tu billetera: sin él tu pago no se puede asociar a esta solicitud.",
  muxedNote: "Esta dirección identifica tu pago: no hace falta memo.",
  timeLeft: "Tiempo restante",
  copy: {
    button: "Copiar",
    done: "Copiado",
    amount: "Copiar importe",
    issuer: "Copiar emisor",
    destination: "Copiar dirección",
    memo: "Copiar memo",
    transaction: "Copiar hash de la transacción",
  },
  transaction: "Transacción",
  viewReceipt: "Ver recibo",
  continue: "Continuar",
  expiredHelp: "No envíes ningún pago ahora. Si pagaste antes de que caducara, esta página lo mostrará como pagado cuando se vea el pago.",
  refundable: (received) => `Llegaron ${received} para esta solicitud: contacta con el comercio para el reembolso.`,
  canceledHelp: "No envíes ningún pago. Contacta con el comercio si necesitas ayuda.",
  refresh: "Actualizar",
  noScript: "Sin JavaScript esta página no se actualiza sola:",
  notFoundTitle: "Pago no encontrado",
  notFound: "Este enlace de pago no es válido. Revisa el enlace que te dieron o pide uno nuevo al comercio.",
  receiptTitle: "Recibo",
  paidTo: "Pagado a",
  payment: "Pago",
  description: "Descripción",
  paidAt: "Pagado el",
  transactions: "Transacciones",
  ledger: "Ledger",
  onChainTime: "Hora en la cadena",
  from: "Desde",
  print: "Imprimir",
  noReceiptTitle: "Aún no hay recibo",
  noReceipt: "El recibo existe solo cuando este pago se ha pagado.",
  backToPayment: "Volver al pago",
};

export const MESSAGES: Record<Language, Messages> = { en, es };

/** The supported language a tag names by its primary subtag ("es-MX" → "es"), if any. */
function supported(tag: string): Language | undefined {
  const primary = tag.toLowerCase().split("-")[0];
  return LANGUAGES.find((language) => language === primary);
}

interface LanguageRange {
  range: string;
  q: number;
}

// RFC 9110 §12.5.4: a range (`*` or subtags of letters and digits) and an optional weight of at most three decimals.
const RANGE = /^(\*|[a-z]{1,8}(?:-[a-z0-9]{1,8})*)(?:\s*;\s*q=(0(?:\.\d{0,3})?|1(?:\.0{0,3})?))?$/i;

/** The ranges of an Accept-Language header, best first (equal weights keep their order); malformed entries are skipped. */
export function parseAcceptLanguage(header: string): LanguageRange[] {
  const ranges: LanguageRange[] = [];
  for (const entry of header.split(",")) {
    const match = RANGE.exec(entry.trim());
    if (match) ranges.push({ range: match[1]!.toLowerCase(), q: match[2] === undefined ? 1 : Number(match[2]) });
  }
  // Array.prototype.sort is stable, so the header's order breaks ties.
  return ranges.sort((a, b) => b.q - a.q);
}

/** The language the browser prefers among ours: `q=0` refuses one, `*` stands for any not refused. */
function negotiate(header: string): Language | undefined {
  const ranges = parseAcceptLanguage(header);
  const refused = new Set(ranges.filter((r) => r.q === 0).map((r) => r.range));
  for (const { range, q } of ranges) {
    if (q === 0) continue;
    const language = range === "*" ? LANGUAGES.find((l) => !refused.has(l)) : supported(range);
    if (language && !refused.has(language)) return language;
  }
  return undefined;
}

/** `?lang=` first (any tag of a language we have), then Accept-Language, else English. */
export function chooseLanguage(query: unknown, acceptLanguage: string | undefined): Language {
  const asked = typeof query === "string" ? supported(query) : undefined;
  return asked ?? (acceptLanguage === undefined ? undefined : negotiate(acceptLanguage)) ?? DEFAULT_LANGUAGE;
}

/** A date and time for people, in UTC so that every reader sees the same time; receipts give the seconds. */
export const formatDateTime = (language: Language, date: Date, timeStyle: "short" | "medium" = "short") =>
  `${new Intl.DateTimeFormat(language, { dateStyle: "medium", timeStyle, timeZone: "UTC" }).format(date)} UTC`;
