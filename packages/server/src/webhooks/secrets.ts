import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/** A new endpoint secret: `whsec_` + base64 of 32 random bytes (the Standard Webhooks format). */
export const generateSecret = () => `whsec_${randomBytes(32).toString("base64")}`;

const PREFIX = "enc:v1:";

/**
 * Secrets at rest: AES-256-GCM under LUMENPAY_ENCRYPTION_KEY when it is set. Rows written before a
 * key was configured stay readable (they are plain `whsec_…`), so a key can be introduced later.
 */
export interface SecretBox {
  seal(secret: string): string;
  open(stored: string): string;
}

export function createSecretBox(key: Buffer | undefined): SecretBox {
  return {
    seal(secret) {
      if (!key) return secret;
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, iv);
      const data = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
      return `${PREFIX}${Buffer.concat([iv, cipher.getAuthTag(), data]).toString("base64")}`;
    },
    open(stored) {
      if (!stored.startsWith(PREFIX)) return stored;
      if (!key) throw new Error("An endpoint secret is encrypted but LUMENPAY_ENCRYPTION_KEY is not set.");
      const raw = Buffer.from(stored.slice(PREFIX.length), "base64");
      const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
    },
  };
}
