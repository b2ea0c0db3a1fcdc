import autocannon from 'autocannon';

export interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  total: number;
  non2xx: number;
  errors: number;
}

export interface LoadOptions {
  url: string;
  connections: number;
  durationS?: number;
  amount?: number;
  /** A fresh JSON body (and its headers) per request. */
  request: () => { body: unknown; headers?: Record<string, string> };
}

/** autocannon, closed loop: each connection sends its next request when the last is answered. */
export async function load(options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    ...(options.amount ? { amount: options.amount } : { duration: options.durationS ?? 10 }),
    requests: [
      {
        method: 'POST',
        setupRequest: (request: autocannon.Request) => {
          const next = options.request();
          return { ...request, headers: { 'content-type': 'application/json', ...next.headers }, body: JSON.stringify(next.body) };
        },
      },
    ],
  });
  return {
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/**
 * Requests at evenly spaced instants (an open loop): autocannon's overallRate
 * sends each second's requests in a burst, which would measure queueing, not latency.
 */
export async function paced(options: {
  url: string;
  rate: number;
  durationS: number;
  request: () => { body: unknown; headers?: Record<string, string> };
  onResponse: (status: number, body: string) => void;
}): Promise<void> {
  const total = Math.round(options.rate * options.durationS);
  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const wait = started + (i * 1000) / options.rate - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const next = options.request();
    inFlight.push(
      fetch(options.url, { method: 'POST', headers: { 'content-type': 'application/json', ...next.headers }, body: JSON.stringify(next.body) }).then(
        async (response) => options.onResponse(response.status, await response.text()),
      ),
    );
  }
  await Promise.all(inFlight);
}
