// Stellar StrKey (SEP-23) for Ed25519 keys: base32(version byte ‖ 32-byte key ‖ CRC16-XModem LE).
// Written out here because the SDK has no runtime dependencies.

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const VERSION_PUBLIC_KEY = 6 << 3; // encodes to a leading "G"
const VERSION_SECRET_SEED = 18 << 3; // encodes to a leading "S"
// 1 + 32 + 2 bytes = 280 bits = exactly 56 base32 characters, so there are no padding bits.
const STRKEY_LENGTH = 56;

function crc16XModem(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

function encode(version: number, key: Uint8Array): string {
  const data = new Uint8Array(35);
  data[0] = version;
  data.set(key, 1);
  const crc = crc16XModem(data.subarray(0, 33));
  data[33] = crc & 0xff;
  data[34] = crc >> 8;
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of data) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET.charAt((buffer >> bits) & 31);
    }
  }
  return out;
}

function decode(version: number, text: unknown, what: string): Uint8Array {
  if (typeof text !== "string" || text.length !== STRKEY_LENGTH) {
    throw new TypeError(`Expected a ${STRKEY_LENGTH}-character Stellar ${what}`);
  }
  const data = new Uint8Array(35);
  let buffer = 0;
  let bits = 0;
  let index = 0;
  for (const char of text) {
    const value = ALPHABET.indexOf(char);
    if (value < 0) throw new TypeError(`Invalid character in Stellar ${what}`);
    buffer = ((buffer << 5) | value) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      data[index++] = (buffer >> bits) & 0xff;
    }
  }
  if (data[0] !== version) throw new TypeError(`Not a Stellar ${what} (wrong version byte)`);
  const crc = crc16XModem(data.subarray(0, 33));
  if (data[33] !== (crc & 0xff) || data[34] !== crc >> 8) {
    throw new TypeError(`Invalid checksum in Stellar ${what}`);
  }
  return data.slice(1, 33);
}

function checkKeyLength(key: Uint8Array): void {
  if (key.length !== 32) throw new TypeError(`Ed25519 keys are 32 bytes, got ${key.length}`);
}

/** Encode a raw 32-byte Ed25519 public key as a Stellar `G…` address. */
export function encodeStellarPublicKey(key: Uint8Array): string {
  checkKeyLength(key);
  return encode(VERSION_PUBLIC_KEY, key);
}

/** Decode a Stellar `G…` address to its raw 32-byte Ed25519 public key; TypeError if invalid. */
export function decodeStellarPublicKey(address: string): Uint8Array {
  return decode(VERSION_PUBLIC_KEY, address, "public key (G…)");
}

/** Decode a Stellar `S…` secret seed to its raw 32-byte Ed25519 seed; TypeError if invalid. */
export function decodeStellarSeed(seed: string): Uint8Array {
  return decode(VERSION_SECRET_SEED, seed, "secret seed (S…)");
}

/** Raw seed bytes from either form the SDK accepts. */
export function seedBytes(seed: Uint8Array | string): Uint8Array {
  if (typeof seed === "string") return decodeStellarSeed(seed);
  if (!(seed instanceof Uint8Array)) throw new TypeError("signingSeed must be a Uint8Array or an S… string");
  checkKeyLength(seed);
  return seed;
}
