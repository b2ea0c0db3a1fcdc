import type { FailureKind } from './notifications.js';

/**
 * When a failed send is tried again. Attempt n failing transiently waits
 * delaysMs[n-1] (the last delay repeats if attempts outnumber delays) before
 * attempt n+1; the last attempt, or any permanent failure, gives up.
 */
export interface RetryPolicy {
  delaysMs: readonly number[];
  maxAttempts: number;
}

export type NextStep = { kind: 'retry'; attempt: number; delayMs: number } | { kind: 'give-up' };

export function nextStep(policy: RetryPolicy, attempt: number, failure: FailureKind): NextStep {
  if (failure === 'permanent' || attempt >= policy.maxAttempts) return { kind: 'give-up' };
  const delayMs = policy.delaysMs[Math.min(attempt - 1, policy.delaysMs.length - 1)]!;
  return { kind: 'retry', attempt: attempt + 1, delayMs };
}
