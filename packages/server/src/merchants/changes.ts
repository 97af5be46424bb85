import { createNotificationListener } from "../webhooks/listener.js";
import { MERCHANT_CHANGES_CHANNEL } from "./store.js";

/** Announcements that a merchant (or its keys) changed, for whatever an instance caches about merchants. */
export interface MerchantChanges {
  /** `listener` is told each changed merchant's id, and null when everything may have changed (a reconnect). */
  onChange(listener: (merchantId: string | null) => void): void;
  close(): Promise<void>;
}

/** One LISTEN connection on the merchant-changes channel, shared by every cache of the process. */
export function listenForMerchantChanges(connectionString: string, log: { warn(obj: object, msg: string): void }): MerchantChanges {
  const listeners: Array<(merchantId: string | null) => void> = [];
  const listener = createNotificationListener({
    connectionString,
    channel: MERCHANT_CHANGES_CHANNEL,
    log,
    onNotification: (merchantId) => {
      for (const notify of listeners) notify(merchantId);
    },
  });
  return {
    onChange: (notify) => listeners.push(notify),
    close: () => listener.close(),
  };
}
