import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { accountIdSchema } from '../shared/domain/contract.js';
import {
  accountViewSchema,
  errorBodySchema,
  healthSchema,
  idempotencyKeySchema,
  readySchema,
  TRANSFER_EXAMPLES,
  transferAcceptedSchema,
  transferBodySchema,
  transferViewSchema,
} from './http-contract.js';

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
const error = (description: string) => ({ description, content: json(errorBodySchema) });

const RATE_LIMIT_HEADERS = {
  'RateLimit-Limit': { description: 'Requests allowed per window', schema: { type: 'integer' as const } },
  'RateLimit-Remaining': { description: 'Requests left in this window', schema: { type: 'integer' as const } },
  'RateLimit-Reset': { description: 'Seconds until the window resets', schema: { type: 'integer' as const } },
};

const unauthorized = {
  description: 'No API key, or an unknown or revoked one (`unauthorized`); carries `WWW-Authenticate: Bearer`',
  headers: { 'WWW-Authenticate': { description: 'Bearer challenge', schema: { type: 'string' as const } } },
  content: json(errorBodySchema),
};
const unavailable = {
  description: 'The database is unavailable (`database_unavailable`); retry after Retry-After',
  headers: { 'Retry-After': { description: 'Seconds', schema: { type: 'integer' as const } } },
  content: json(errorBodySchema),
};

/** The OpenAPI 3.1 document, generated from the same zod schemas that validate requests. */
export function openApiDocument(): Record<string, unknown> {
  const registry = new OpenAPIRegistry();
  const bearer = registry.registerComponent('securitySchemes', 'apiKey', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API key: `npm run keys -- create --accounts <id>`. Each key acts only for the accounts it is bound to.',
  });
  const secured = [{ [bearer.name]: [] }];

  registry.registerPath({
    method: 'post',
    path: '/transfer',
    summary: 'Move money now; notifications follow',
    description:
      'Debits and credits in one transaction and answers 202 at once; the email and SMS are sent by the worker. ' +
      'Rate limited per API key and per client address.',
    security: secured,
    request: {
      headers: z.object({ 'Idempotency-Key': idempotencyKeySchema.optional() }),
      body: { required: true, content: { 'application/json': { schema: transferBodySchema, examples: TRANSFER_EXAMPLES } } },
    },
    responses: {
      202: {
        description: 'Accepted: the money has moved',
        headers: {
          Location: { description: 'The transfer’s status URL', schema: { type: 'string' } },
          'Idempotent-Replayed': { description: '`true` when this is the stored answer to an earlier request with the same Idempotency-Key', schema: { type: 'string' } },
          ...RATE_LIMIT_HEADERS,
        },
        content: json(transferAcceptedSchema),
      },
      400: error('`invalid_body` (details list each problem), `malformed_json`, or `invalid_header` (Idempotency-Key)'),
      401: unauthorized,
      403: error('`forbidden`: the key is not bound to fromAccount'),
      404: error('`account_not_found`: toAccount does not exist'),
      409: error('`idempotency_in_flight`: the first request with this Idempotency-Key is still being processed'),
      413: error('`payload_too_large`: the body is over 16 kB'),
      415: error('`unsupported_media_type`: the body is not application/json'),
      422: error('`insufficient_funds`, `same_account`, `currency_mismatch`, or `idempotency_key_reused` (same key, different body)'),
      429: {
        description: '`rate_limited`: too many requests for this key or address',
        headers: { 'Retry-After': { description: 'Seconds', schema: { type: 'integer' } }, ...RATE_LIMIT_HEADERS },
        content: json(errorBodySchema),
      },
      503: unavailable,
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/transfers/{id}',
    summary: 'A transfer and the outcome of each notification',
    security: secured,
    request: { params: z.object({ id: z.uuid().meta({ description: 'The transferId from POST /transfer' }) }) },
    responses: {
      200: { description: 'The transfer', content: json(transferViewSchema) },
      400: error('`invalid_path`: the id is not valid percent-encoded UTF-8'),
      401: unauthorized,
      404: error('`transfer_not_found`: no such transfer, or none of its accounts is the key’s'),
      503: unavailable,
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/accounts/{id}',
    summary: 'An account’s balance',
    security: secured,
    request: { params: z.object({ id: accountIdSchema }) },
    responses: {
      200: { description: 'The account', content: json(accountViewSchema) },
      400: error('`invalid_path`: the id is not valid percent-encoded UTF-8'),
      401: unauthorized,
      404: error('`account_not_found`: no such account, or the key is not bound to it'),
      503: unavailable,
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/health',
    summary: 'The process is up',
    responses: { 200: { description: 'Up', content: json(healthSchema) } },
  });
  registry.registerPath({
    method: 'get',
    path: '/ready',
    summary: 'The database and the broker are reachable',
    responses: {
      200: { description: 'Ready', content: json(readySchema) },
      503: { description: 'Not ready; `checks` says what is down', content: json(readySchema) },
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics: request latency, transfers by outcome, outbox backlog, process',
    responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } } },
  });
  registry.registerPath({
    method: 'get',
    path: '/openapi.json',
    summary: 'This document',
    responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: z.object({}).loose() } } } },
  });
  registry.registerPath({
    method: 'get',
    path: '/docs',
    summary: 'Interactive documentation (Swagger UI) for this document',
    responses: { 200: { description: 'HTML page', content: { 'text/html': { schema: z.string() } } } },
  });

  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'async-transfers',
      version: '1.0.0',
      description: 'Bank transfers that answer 202 at once while a worker sends the email and SMS notifications through RabbitMQ.',
    },
    servers: [{ url: '/' }],
  }) as unknown as Record<string, unknown>;
}
