import { inheritedEnv } from '../../shared/runtime/config.js';

/** RabbitMQ's management HTTP API, which the management UI itself reads. */
export const MANAGEMENT_URL = inheritedEnv().RABBITMQ_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672';

function request(path: string): { url: URL; headers: Record<string, string> } {
  const url = new URL(`/api${path}`, MANAGEMENT_URL);
  const auth = Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64');
  url.username = '';
  url.password = '';
  return { url, headers: { authorization: `Basic ${auth}` } };
}

export async function management<T = Record<string, any>>(path: string): Promise<T> {
  const { url, headers } = request(path);
  let response: Response;
  try {
    response = await fetch(url, { headers });
  } catch (error) {
    throw new Error(`RabbitMQ's management API is not reachable at ${url.origin} (enable it: rabbitmq-plugins enable rabbitmq_management): ${(error as Error).message}`, { cause: error });
  }
  if (!response.ok) throw new Error(`management API ${path} answered ${response.status}`);
  return (await response.json()) as T;
}

/** Resolves when the management API answers /api/overview; rejects with fetch's error (its cause says ECONNREFUSED) otherwise. */
export async function managementProbe(): Promise<void> {
  const { url, headers } = request('/overview');
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
  await response.body?.cancel();
  if (!response.ok) throw new Error(`GET /api/overview answered ${response.status}`);
}

export const queueInfo = (name: string) => management(`/queues/%2F/${encodeURIComponent(name)}`);
export const exchangeInfo = (name: string) => management(`/exchanges/%2F/${encodeURIComponent(name)}`);
