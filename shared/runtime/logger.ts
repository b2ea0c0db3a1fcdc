import { AsyncLocalStorage } from 'node:async_hooks';
import winston from 'winston';
import { isSecretField, redact } from './log-redaction.js';

/**
 * One logger per process, JSON lines on stdout. Context (requestId, transferId,
 * messageId) travels in AsyncLocalStorage so that every line written while a
 * request or a message is being handled carries it without threading it by hand.
 */

type LogContext = Record<string, unknown>;

const contextStore = new AsyncLocalStorage<LogContext>();

const withContext = winston.format((info) => {
  const context = contextStore.getStore();
  if (context) {
    for (const [key, value] of Object.entries(context)) {
      if (info[key] === undefined) info[key] = value;
    }
  }
  return info;
});

function serializeError(error: Error): Record<string, unknown> {
  const code = (error as { code?: unknown }).code;
  return {
    name: error.name,
    message: error.message,
    ...(code === undefined ? {} : { code }),
    ...(error.stack ? { stack: error.stack } : {}),
    ...(error.cause instanceof Error ? { cause: serializeError(error.cause) } : {}),
  };
}

/** JSON.stringify turns an Error into {}; keep its message, code and stack instead. */
const errorFields = winston.format((info) => {
  for (const [key, value] of Object.entries(info)) {
    if (value instanceof Error) info[key] = serializeError(value);
  }
  return info;
});

/** Masks emails, phone numbers, keys and credentials in every field of the line (see log-redaction.ts). */
const privateData = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (key === 'level' || key === 'timestamp') continue;
    info[key] = isSecretField(key) ? '***' : redact(info[key]);
  }
  return info;
});

export const logger = winston.createLogger({
  level: 'info',
  format: winston.format.combine(
    withContext(),
    errorFields(),
    winston.format.errors({ stack: true }),
    privateData(),
    winston.format.timestamp(),
    winston.format.json(),
  ),
  transports: [new winston.transports.Console()],
});

// winston builds the line and pushes it through its stream before it filters by
// level, so a disabled debug or http call still costs microseconds on hot paths.
// Check the level first, for every level method at once.
for (const level of Object.keys(logger.levels)) {
  const method = level as keyof typeof logger & string;
  const write = (logger[method] as (...args: unknown[]) => unknown).bind(logger);
  (logger as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => (logger.isLevelEnabled(level) ? write(...args) : logger);
}

/** `meta` goes on every line too (one of several API processes adds its pid). */
export function configureLogger(options: { level: string; service: string; meta?: Record<string, unknown> }): void {
  logger.level = options.level;
  logger.defaultMeta = { service: options.service, ...options.meta };
}

/** Runs fn with fields added to every log line it writes, including in callbacks it schedules. */
export function withLogContext<T>(fields: LogContext, fn: () => T): T {
  return contextStore.run({ ...contextStore.getStore(), ...fields }, fn);
}

/** Adds fields to the current context, for facts learned midway (a request's transferId). */
export function addLogContext(fields: LogContext): void {
  const context = contextStore.getStore();
  if (context) Object.assign(context, fields);
}
