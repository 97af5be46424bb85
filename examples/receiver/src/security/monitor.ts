import type { Logger } from "pino";

/** Why a request was refused; one counter per client IP and reason. */
export type RejectionReason =
  | "invalid_signature"
  | "invalid_payload"
  | "ip_not_allowed"
  | "rate_limited"
  | "payload_too_large"
  | "unsupported_media_type"
  | "method_not_allowed";

export interface Rejection {
  ip: string;
  reason: RejectionReason;
  status: number;
  /** The verification error's class (e.g. TimestampTooOldError), when there is one. */
  detail?: string | undefined;
  userAgent?: string | undefined;
  /** As claimed by the request's webhook-id header: unverified when the signature failed. */
  webhookId?: string | undefined;
  method: string;
  path: string;
}

/** One crossing of the threshold; `text` is what a person reads (Slack, the log). */
export interface Alert {
  ip: string;
  reason: RejectionReason;
  count: number;
  text: string;
}

export interface SlidingWindowOptions {
  /** Hits within the window that make a crossing. */
  threshold: number;
  windowMs: number;
  /** Keys kept at most; the least recently hit is evicted, so a spray of IPs cannot exhaust memory. */
  maxKeys: number;
  now?: () => number;
}

interface Window {
  /** Times of the latest hits, oldest first; never more than `threshold` of them. */
  hits: number[];
  /** Alerted for this crossing; re-armed once the window holds fewer than `threshold` hits. */
  alerted: boolean;
}

/**
 * Sliding-window hit counters that report each crossing of the threshold once. Only the last
 * `threshold` hit times are kept per key: whether they all fall within the window is all a
 * crossing needs, so memory is bounded by maxKeys × threshold.
 */
export class SlidingWindowCounter {
  readonly #windows = new Map<string, Window>();
  readonly #options: Required<SlidingWindowOptions>;

  constructor(options: SlidingWindowOptions) {
    this.#options = { now: Date.now, ...options };
  }

  get size(): number {
    return this.#windows.size;
  }

  /** Records a hit; `crossed` is true only for the hit that reached the threshold. */
  hit(key: string): { count: number; crossed: boolean } {
    const { threshold, windowMs, maxKeys, now } = this.#options;
    const time = now();
    const window = this.#windows.get(key) ?? { hits: [], alerted: false };
    // Re-inserted on every hit, so the Map's first key is the least recently hit.
    this.#windows.delete(key);
    this.#windows.set(key, window);
    while (window.hits.length > 0 && window.hits[0]! <= time - windowMs) window.hits.shift();
    if (window.hits.length < threshold) window.alerted = false;
    window.hits.push(time);
    if (window.hits.length > threshold) window.hits.shift();
    const crossed = window.hits.length >= threshold && !window.alerted;
    if (crossed) window.alerted = true;
    for (const oldest of this.#windows.keys()) {
      if (this.#windows.size <= maxKeys) break;
      this.#windows.delete(oldest);
    }
    return { count: window.hits.length, crossed };
  }
}

export interface SecurityMonitor {
  /** Logs a refused request and, when monitoring is on, counts it and alerts on a crossing. */
  reject(rejection: Rejection): void;
}

export interface MonitorOptions {
  log: Logger;
  /** Undefined when ENABLE_SECURITY_MONITORING is off: rejections are still logged, not counted. */
  counter: SlidingWindowCounter | undefined;
  windowSeconds: number;
  alertEmail: string | undefined;
  /** Delivers an alert (Slack); must not throw. */
  notify: (alert: Alert) => Promise<void>;
}

export function createSecurityMonitor({ log, counter, windowSeconds, alertEmail, notify }: MonitorOptions): SecurityMonitor {
  return {
    reject(rejection) {
      log.warn(
        {
          kind: "security.rejection",
          ip: rejection.ip,
          reason: rejection.reason,
          detail: rejection.detail,
          status: rejection.status,
          user_agent: rejection.userAgent,
          webhook_id: rejection.webhookId,
          method: rejection.method,
          path: rejection.path,
        },
        `webhook request rejected: ${rejection.reason}`,
      );
      const result = counter?.hit(`${rejection.ip} ${rejection.reason}`);
      if (!result?.crossed) return;
      const text =
        `Lumenpay webhook receiver: ${result.count} ${rejection.reason} rejections from ${rejection.ip} ` +
        `in the last ${windowSeconds} s (latest: ${rejection.detail ?? `HTTP ${rejection.status}`}).` +
        (alertEmail ? ` Alert contact: ${alertEmail}.` : "");
      const alert: Alert = { ip: rejection.ip, reason: rejection.reason, count: result.count, text };
      log.error({ kind: "security.alert", ip: alert.ip, reason: alert.reason, count: alert.count, alert_email: alertEmail }, text);
      void notify(alert);
    },
  };
}
