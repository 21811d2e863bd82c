import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures, Stripe-style: `Closebook-Signature: t=<unix seconds>,v1=<hex>` where
 * `<hex> = HMAC-SHA256(secret, "<t>.<raw body>")`, the secret's UTF-8 bytes being the key. During a
 * secret rotation's grace period the header carries one `v1=` per valid secret.
 */
export const SIGNATURE_HEADER = 'Closebook-Signature';
export const EVENT_ID_HEADER = 'Closebook-Event-Id';
export const EVENT_TYPE_HEADER = 'Closebook-Event-Type';
export const DELIVERY_ID_HEADER = 'Closebook-Delivery-Id';
export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300;

const SECRET_PREFIX = 'whsec_';

/** 256 random bits, prefixed so a leaked secret is recognizable. */
export function generateWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** Enough of a secret for a person to tell two apart; never enough to use it. */
export function secretHint(secret: string): string {
  return `${secret.slice(0, SECRET_PREFIX.length + 4)}…`;
}

/** Hex HMAC-SHA256 of `"<timestamp>.<raw body>"`. */
export function computeWebhookSignature(secret: string, timestamp: number, rawBody: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest('hex');
}

/** The `Closebook-Signature` header value: one `v1=` per secret, in the order given. */
export function webhookSignatureHeader(secrets: string[], timestamp: number, rawBody: string | Buffer): string {
  return [`t=${timestamp}`, ...secrets.map((s) => `v1=${computeWebhookSignature(s, timestamp, rawBody)}`)].join(',');
}

export interface ParsedSignatureHeader {
  timestamp: number;
  signatures: string[];
}

/** Parses `t=…,v1=…[,v1=…]`; unknown schemes are ignored (room for a v2); null when malformed. */
export function parseWebhookSignatureHeader(header: string | null | undefined): ParsedSignatureHeader | null {
  if (typeof header !== 'string' || header.length > 2000) return null;
  let timestamp: number | null = null;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    if (key === 'v1' && /^[0-9a-f]{64}$/i.test(value)) signatures.push(value.toLowerCase());
  }
  return timestamp === null || signatures.length === 0 ? null : { timestamp, signatures };
}

/**
 * For receivers: true when `header` carries a valid signature of `rawBody` (the exact bytes received,
 * before any JSON parsing) by `secret`, made within `toleranceSeconds` of now (replay protection).
 * Compares in constant time.
 */
export function verifyWebhookSignature(
  secret: string,
  header: string | null | undefined,
  rawBody: string | Buffer,
  toleranceSeconds: number = DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): boolean {
  const parsed = parseWebhookSignatureHeader(header);
  if (!parsed) return false;
  if (Math.abs(nowSeconds - parsed.timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(computeWebhookSignature(secret, parsed.timestamp, rawBody), 'hex');
  return parsed.signatures.some((s) => {
    const given = Buffer.from(s, 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
