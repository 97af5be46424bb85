import type { Logger } from "pino";
import type { Alert } from "./monitor.js";

const SLACK_TIMEOUT_MS = 5000;

/**
 * Posts an alert to a Slack incoming webhook (`{ "text": … }`). Failures are logged, never thrown:
 * a broken alert channel must not turn into failed webhook deliveries. The URL is a credential, so
 * it is never logged.
 */
export function slackNotifier(url: string | undefined, log: Logger): (alert: Alert) => Promise<void> {
  return async (alert) => {
    if (!url) return;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text: alert.text }),
        signal: AbortSignal.timeout(SLACK_TIMEOUT_MS),
      });
      await res.body?.cancel();
      if (!res.ok) log.error({ kind: "security.alert_failed", status: res.status }, "Slack refused the security alert");
    } catch (error) {
      log.error({ kind: "security.alert_failed", error: (error as Error).message }, "posting the security alert to Slack failed");
    }
  };
}
