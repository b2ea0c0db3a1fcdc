import { compileErrors, validate } from '@readme/openapi-parser';
import { expect } from 'chai';
import request from 'supertest';
import { createApp } from '../../api/app.js';
import { DEMO_API_KEYS } from '../../shared/domain/demo-accounts.js';
import { loadConfig } from '../../shared/runtime/config.js';
import { servedRoutes } from '../support/routes.js';
import { collectingRelay, memoryLedger } from './fakes.js';

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, { examples?: Record<string, { value: Record<string, unknown> }> }> } }>>;
};

/** The real Express app (routes, auth, error table, docs) over an in-memory ledger: no broker, no database. */
describe('OpenAPI document and /docs', () => {
  const store = memoryLedger();
  const relay = collectingRelay();
  const app = createApp({ config: loadConfig({}), store, relay, brokerConnected: () => true });
  const http = () => request(app);
  const auth = { Authorization: `Bearer ${DEMO_API_KEYS['user-A']}` };
  let doc: Doc;
  before(async () => {
    doc = (await http().get('/openapi.json').expect(200)).body as Doc;
  });

  const documented = () =>
    new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`)));

  it('When /openapi.json is fetched, then it is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).to.equal('3.1.0');
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid, result.valid ? '' : compileErrors(result)).to.equal(true);
  });

  it('When the app’s routes are listed, then every one is in the document, and /docs too', () => {
    const served = servedRoutes(app);
    served.add('GET /docs'); // mounted as middleware (Swagger UI's assets), not as a route
    expect([...served].filter((r) => !documented().has(r)), 'served but undocumented').to.deep.equal([]);
    expect([...documented()].filter((r) => !served.has(r)), 'documented but not served').to.deep.equal([]);
  });

  it('When each documented path is requested, then the app serves it rather than answering "no route"', async () => {
    for (const key of documented()) {
      const [method, path] = key.split(' ') as [string, string];
      const url = path.replace('{id}', path.startsWith('/transfers') ? '00000000-0000-4000-8000-000000000000' : 'user-A');
      const res = await http()[method.toLowerCase() as 'get' | 'post'](url).set(auth).send(method === 'POST' ? {} : undefined);
      expect(res.body?.error?.code, key).to.not.equal('not_found');
    }
  });

  it('When the document’s example requests are sent, then the app accepts each one and hands its event to the relay', async () => {
    const examples = doc.paths['/transfer']!.post!.requestBody!.content['application/json']!.examples!;
    expect(Object.keys(examples)).to.have.length.greaterThan(0);
    for (const [name, example] of Object.entries(examples)) {
      const res = await http().post('/transfer').set(auth).send(example.value);
      expect(res.status, `${name}: ${JSON.stringify(res.body)}`).to.equal(202);
      expect(relay.enqueued.at(-1)?.transferId).to.equal(res.body.transferId);
      await http().get(res.body.statusUrl as string).set(auth).expect(200);
    }
  });

  it('When /docs is opened, then the interactive page loads the document', async () => {
    const page = await http().get('/docs/').expect(200);
    expect(page.headers['content-type']).to.match(/text\/html/);
    expect(page.text).to.contain('swagger-ui');
    const init = await http().get('/docs/swagger-ui-init.js').expect(200);
    expect(init.text).to.contain('"/transfer"');
    await http().get('/docs').expect((res) => expect([200, 301]).to.include(res.status));
  });

  it('When every error code the API can answer is listed, then the document names it', () => {
    const text = JSON.stringify(doc);
    for (const code of ['invalid_body', 'unauthorized', 'forbidden', 'rate_limited', 'idempotency_in_flight', 'database_unavailable']) {
      expect(text).to.contain(code);
    }
  });
});
