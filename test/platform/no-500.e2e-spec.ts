import { discoverRoutes } from '@closebook/platform';
import { bearer, startApi, type TestApi } from '../helpers/api';

/**
 * Bad input never reaches a 500: every route, called with path ids that are not ids (or are another
 * organization's nothing) and with an empty or malformed body, answers a 4xx in the error shape.
 */
describe('no route answers 500 to bad input', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api.close());

  const fillers = ['not-a-uuid', '00000000-0000-4000-8000-000000000000', '2026-13', "x'; drop table invoices; --"];

  it('every route, every filler', async () => {
    const { adminKey } = await api.newOrg('No 500');
    const routes = discoverRoutes(api.app, 'v1').filter((r) => r.path !== '/v1/health');
    expect(routes.length).toBeGreaterThan(50);
    const failures: string[] = [];
    for (const r of routes) {
      for (const filler of fillers) {
        const path = r.path.replace(/:([A-Za-z_]\w*)/g, () => encodeURIComponent(filler));
        const call = (req: ReturnType<TestApi['http']['get']>) => req.set(bearer(adminKey));
        const res =
          r.method === 'GET'
            ? await call(api.http.get(`${path}?period=${encodeURIComponent(filler)}&cursor=${encodeURIComponent(filler)}`))
            : r.method === 'POST'
              ? await call(api.http.post(path)).send({})
              : r.method === 'PUT'
                ? await call(api.http.put(path)).send({ products: 'nope' })
                : null;
        if (!res) continue;
        if (res.status >= 500 || (res.status >= 400 && !res.body?.error?.code)) failures.push(`${r.method} ${path} → ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
      }
    }
    expect(failures).toEqual([]);
  }, 120_000);
});
