import { inheritedEnv } from '../../shared/runtime/config.js';

/** RabbitMQ's management HTTP API, which the management UI itself reads. */
const BASE = inheritedEnv().RABBITMQ_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672';

export async function management<T = Record<string, any>>(path: string): Promise<T> {
  const url = new URL(`/api${path}`, BASE);
  const auth = Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64');
  url.username = '';
  url.password = '';
  let response: Response;
  try {
    response = await fetch(url, { headers: { authorization: `Basic ${auth}` } });
  } catch (error) {
    throw new Error(`RabbitMQ's management API is not reachable at ${url.origin} (enable it: rabbitmq-plugins enable rabbitmq_management): ${(error as Error).message}`);
  }
  if (!response.ok) throw new Error(`management API ${path} answered ${response.status}`);
  return (await response.json()) as T;
}

export const queueInfo = (name: string) => management(`/queues/%2F/${encodeURIComponent(name)}`);
export const exchangeInfo = (name: string) => management(`/exchanges/%2F/${encodeURIComponent(name)}`);
