import { validate, compileErrors } from '@readme/openapi-parser';
import { expect } from 'chai';
import { servedRoutes } from './support/routes.js';
import { TestSystem } from './support/system.js';

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, { examples?: Record<string, { value: Record<string, unknown> }> }> } }>>;
};

describe('OpenAPI document and /docs', () => {
  let system: TestSystem;
  let doc: Doc;
  before(async () => {
    system = await TestSystem.start();
    doc = (await system.http().get('/openapi.json').expect(200)).body as Doc;
  });
  after(async () => system?.stop());

  const documented = () =>
    new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`)));

  it('When /openapi.json is fetched, then it is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).to.equal('3.1.0');
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid, result.valid ? '' : compileErrors(result)).to.equal(true);
  });

  it('When the app’s routes are listed, then every one is in the document, and /docs too', () => {
    const served = servedRoutes(system.api.app);
    served.add('GET /docs'); // mounted as middleware (Swagger UI's assets), not as a route
    expect([...served].filter((r) => !documented().has(r)), 'served but undocumented').to.deep.equal([]);
    expect([...documented()].filter((r) => !served.has(r)), 'documented but not served').to.deep.equal([]);
  });

  it('When each documented path is requested, then the app serves it rather than answering "no route"', async () => {
    const auth = await system.auth('user-A');
    for (const key of documented()) {
      const [method, path] = key.split(' ') as [string, string];
      const url = path.replace('{id}', path.startsWith('/transfers') ? '00000000-0000-4000-8000-000000000000' : 'user-A');
      const res = await system.http()[method.toLowerCase() as 'get' | 'post'](url).set(auth).send(method === 'POST' ? {} : undefined);
      expect(res.body?.error?.code, key).to.not.equal('not_found');
    }
  });

  it('When the document’s example requests are sent, then the app accepts each one', async () => {
    const examples = doc.paths['/transfer']!.post!.requestBody!.content['application/json']!.examples!;
    expect(Object.keys(examples)).to.have.length.greaterThan(0);
    for (const [name, example] of Object.entries(examples)) {
      const res = await system.post(example.value);
      expect(res.status, `${name}: ${JSON.stringify(res.body)}`).to.equal(202);
    }
  });

  it('When /docs is opened, then the interactive page loads the document', async () => {
    const page = await system.http().get('/docs/').expect(200);
    expect(page.headers['content-type']).to.match(/text\/html/);
    expect(page.text).to.contain('swagger-ui');
    const init = await system.http().get('/docs/swagger-ui-init.js').expect(200);
    expect(init.text).to.contain('"/transfer"');
    await system.http().get('/docs').expect((res) => expect([200, 301]).to.include(res.status));
  });

  it('When every error code the API can answer is listed, then the document names it', () => {
    const text = JSON.stringify(doc);
    for (const code of ['invalid_body', 'unauthorized', 'forbidden', 'rate_limited', 'idempotency_in_flight', 'database_unavailable']) {
      expect(text).to.contain(code);
    }
  });
});
