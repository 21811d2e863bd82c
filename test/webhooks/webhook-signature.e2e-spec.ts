import {
  computeWebhookSignature,
  generateWebhookSecret,
  parseWebhookSignatureHeader,
  serializeWebhookEvent,
  verifyWebhookSignature,
  webhookSignatureHeader,
  webhookUrlProblem,
} from '@closebook/platform';

// Pure functions; no database. Named *.e2e-spec.ts so it runs with the webhooks suite.
describe('webhook signatures', () => {
  const secret = 'whsec_test-secret';
  const body = serializeWebhookEvent({ id: 'b4b0a3a0-1111-4a4a-8b8b-000000000001', type: 'period.closed', created_at: '2026-11-01T00:00:00.000Z', organization_id: 'org', data: { period: '2026-10' } });
  const t = 1_790_000_000;

  it('signs "<t>.<raw body>" with HMAC-SHA256 and verifies it', () => {
    const header = webhookSignatureHeader([secret], t, body);
    expect(header).toBe(`t=${t},v1=${computeWebhookSignature(secret, t, body)}`);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature(secret, header, body, 300, t + 10)).toBe(true);
    expect(verifyWebhookSignature(secret, header, Buffer.from(body), 300, t)).toBe(true);
  });

  it('matches an independent computation of the documented scheme', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { createHmac } = require('node:crypto');
    const hex = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
    expect(computeWebhookSignature(secret, t, body)).toBe(hex);
  });

  it('refuses a changed body, another secret, a stale or future timestamp, and malformed headers', () => {
    const header = webhookSignatureHeader([secret], t, body);
    expect(verifyWebhookSignature(secret, header, body.replace('2026-10', '2026-09'), 300, t)).toBe(false);
    expect(verifyWebhookSignature('whsec_other', header, body, 300, t)).toBe(false);
    expect(verifyWebhookSignature(secret, header, body, 300, t + 301)).toBe(false);
    expect(verifyWebhookSignature(secret, header, body, 300, t - 301)).toBe(false);
    for (const bad of [undefined, null, '', 'garbage', `t=${t}`, `v1=${'a'.repeat(64)}`, `t=abc,v1=${computeWebhookSignature(secret, t, body)}`, `t=${t},v1=zz`]) {
      expect(verifyWebhookSignature(secret, bad, body, 300, t)).toBe(false);
    }
  });

  it('accepts any of several v1 signatures (secret rotation) and ignores unknown schemes', () => {
    const header = webhookSignatureHeader(['whsec_new', secret], t, body);
    expect(parseWebhookSignatureHeader(header)?.signatures).toHaveLength(2);
    expect(verifyWebhookSignature(secret, header, body, 300, t)).toBe(true);
    expect(verifyWebhookSignature('whsec_new', header, body, 300, t)).toBe(true);
    expect(verifyWebhookSignature(secret, `${header},v0=deadbeef`, body, 300, t)).toBe(true);
  });

  it('generates distinct 256-bit secrets', () => {
    const a = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(generateWebhookSecret()).not.toBe(a);
  });

  it('accepts http(s) URLs only, without credentials', () => {
    expect(webhookUrlProblem('https://hooks.example.com/closebook?x=1')).toBeNull();
    expect(webhookUrlProblem('http://127.0.0.1:8080/in')).toBeNull();
    expect(webhookUrlProblem('ftp://example.com/in')).toMatch(/http/);
    expect(webhookUrlProblem('example.com/in')).toMatch(/http/);
    expect(webhookUrlProblem('https://user:pw@example.com/in')).toMatch(/credentials/);
    expect(webhookUrlProblem(`https://example.com/${'x'.repeat(3000)}`)).toMatch(/at most/);
  });
});
