import { DELIVERY_ID_HEADER, EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, webhookSignatureHeader } from './webhook-signature';

/** The JSON a receiver gets; `id` is the outbox message id, the same on every retry. */
export interface WebhookEventBody {
  id: string;
  type: string;
  created_at: string;
  organization_id: string;
  data: Record<string, unknown>;
}

export interface WebhookPost {
  url: string;
  deliveryId: string;
  event: WebhookEventBody;
  /** Secrets to sign with (the current one first; the previous one during a rotation's grace). */
  secrets: string[];
  timeoutMs: number;
  responseBodyLimit: number;
  now?: Date;
}

export interface WebhookPostResult {
  ok: boolean;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  responseBody: string | null;
  responseBodyTruncated: boolean;
  startedAt: Date;
}

export const USER_AGENT = 'Closebook-Webhooks/1';

/** The exact bytes that are signed and sent. */
export function serializeWebhookEvent(event: WebhookEventBody): string {
  return JSON.stringify({ id: event.id, type: event.type, created_at: event.created_at, organization_id: event.organization_id, data: event.data });
}

/** PostgreSQL text refuses NUL; receivers' answers are arbitrary bytes. */
const cleanText = (s: string) => s.replace(/\u0000/g, '');

async function readLimited(res: Response, limit: number): Promise<{ text: string; truncated: boolean }> {
  if (!res.body) return { text: '', truncated: false };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size > limit) {
      truncated = true;
      await reader.cancel().catch(() => undefined);
      break;
    }
  }
  return { text: cleanText(Buffer.concat(chunks).subarray(0, limit).toString('utf8')), truncated };
}

function describeError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `timed out after ${timeoutMs} ms`;
  const cause = e?.cause ? ` (${e.cause.code ?? e.cause.message ?? 'unknown cause'})` : '';
  return cleanText(`${e?.message ?? String(err)}${cause}`).slice(0, 1000);
}

/**
 * POSTs one signed event. Never throws: a network error or a timeout is a result like a 500.
 * Redirects are not followed (a 3xx is a failed attempt), so a signed body only goes where it was sent.
 */
export async function postWebhook(p: WebhookPost): Promise<WebhookPostResult> {
  const startedAt = p.now ?? new Date();
  const body = serializeWebhookEvent(p.event);
  const timestamp = Math.floor(startedAt.getTime() / 1000);
  const headers = {
    'Content-Type': 'application/json',
    'User-Agent': USER_AGENT,
    [SIGNATURE_HEADER]: webhookSignatureHeader(p.secrets, timestamp, body),
    [EVENT_ID_HEADER]: p.event.id,
    [EVENT_TYPE_HEADER]: p.event.type,
    [DELIVERY_ID_HEADER]: p.deliveryId,
  };
  const started = performance.now();
  try {
    const res = await fetch(p.url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(p.timeoutMs) });
    // The status decides; an answer body that stalls or breaks off is noted, not held against it.
    const answer = await readLimited(res, p.responseBodyLimit).catch((err: unknown) => ({ text: '', truncated: true, error: describeError(err, p.timeoutMs) }));
    const ok = res.status >= 200 && res.status < 300;
    const bodyError = 'error' in answer ? `; reading the answer failed: ${answer.error}` : '';
    return {
      ok,
      statusCode: res.status,
      durationMs: Math.round(performance.now() - started),
      error: ok ? (bodyError ? bodyError.slice(2) : null) : `receiver answered HTTP ${res.status}${bodyError}`,
      responseBody: answer.text,
      responseBodyTruncated: answer.truncated,
      startedAt,
    };
  } catch (err) {
    return {
      ok: false,
      statusCode: null,
      durationMs: Math.round(performance.now() - started),
      error: describeError(err, p.timeoutMs),
      responseBody: null,
      responseBodyTruncated: false,
      startedAt,
    };
  }
}
