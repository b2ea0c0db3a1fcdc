import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import express from 'express';
import request from 'supertest';
import { STATUS_BY_CODE, errorHandler, notFoundHandler } from '../../api/http-errors.js';
import { AppError, ERROR_CODES, type ErrorCode } from '../../shared/domain/errors.js';

/** A bare app whose one route fails with the given error, behind the real JSON parser and error table. */
function failingWith(error: () => unknown) {
  const app = express();
  app.use(express.json({ limit: '1kb' }));
  app.post('/fail', () => {
    throw error();
  });
  app.use(notFoundHandler);
  app.use(errorHandler);
  return request(app);
}

/** The README's error table: status and the codes of each row. */
function readmeErrorTable(): Map<ErrorCode, number> {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('**Errors**'));
  const table = section.slice(0, section.indexOf('\n\n', section.indexOf('| Status')));
  const rows = new Map<ErrorCode, number>();
  for (const match of table.matchAll(/^\| (\d{3}) \| ([^|]+) \|/gm)) {
    for (const code of match[2]!.matchAll(/`(\w+)`/g)) rows.set(code[1] as ErrorCode, Number(match[1]));
  }
  return rows;
}

describe('the error table (api/http-errors.ts)', () => {
  it('When the README lists the error codes, then it names every code with the status the API answers', () => {
    const documented = readmeErrorTable();
    expect(Object.fromEntries(documented)).to.deep.equal(STATUS_BY_CODE);
    expect([...documented.keys()].sort()).to.deep.equal([...ERROR_CODES].sort());
  });

  for (const code of ERROR_CODES) {
    it(`When a handler throws AppError('${code}'), then the answer is ${STATUS_BY_CODE[code]} with that code and message`, async () => {
      const res = await failingWith(() => new AppError(code, `because ${code}`)).post('/fail').expect(STATUS_BY_CODE[code]);
      expect(res.body).to.deep.equal({ error: { code, message: `because ${code}` } });
    });
  }

  it('When an AppError carries details, then they are in the body', async () => {
    const details = [{ path: 'amount', message: 'must be greater than 0' }];
    const res = await failingWith(() => new AppError('invalid_body', 'invalid request body', details)).post('/fail').expect(400);
    expect(res.body.error.details).to.deep.equal(details);
  });

  it('When the database is unavailable, then the answer is 503 with Retry-After', async () => {
    const res = await failingWith(() => new AppError('database_unavailable', 'down')).post('/fail').expect(503);
    expect(res.headers['retry-after']).to.equal('5');
  });

  it('When a handler fails with something that is not an AppError, then the answer is a 500 that says nothing about it', async () => {
    const res = await failingWith(() => new Error('secret detail at /srv/app.ts:12')).post('/fail').expect(500);
    expect(res.body).to.deep.equal({ error: { code: 'internal_error', message: 'internal error' } });
    expect(res.text).to.not.contain('secret detail');
  });

  it('When the body is not JSON or too large, then the parser’s failure becomes malformed_json or payload_too_large', async () => {
    const app = failingWith(() => new Error('never reached'));
    const malformed = await app.post('/fail').set('content-type', 'application/json').send('{"amount":').expect(400);
    expect(malformed.body.error.code).to.equal('malformed_json');
    const large = await app.post('/fail').set('content-type', 'application/json').send(JSON.stringify({ pad: 'x'.repeat(2000) })).expect(413);
    expect(large.body.error.code).to.equal('payload_too_large');
  });

  it('When no route matches, then the answer is 404 not_found naming the method and path', async () => {
    const res = await failingWith(() => new Error('never reached')).get('/nowhere').expect(404);
    expect(res.body).to.deep.equal({ error: { code: 'not_found', message: 'no route for GET /nowhere' } });
  });
});
