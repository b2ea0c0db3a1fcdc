import type { Channel, NotificationStatus } from './notifications.js';

/**
 * Send claims: before a worker hands a notification to a provider it claims the
 * channel in the database (its worker id, and a lease longer than a provider may
 * take). Another worker that gets the same message meanwhile (a redelivery after a
 * connection drop, a duplicate) finds the claim and does not send; it comes back
 * later through a delay queue. A claim whose worker has died no longer counts, so
 * a dead worker's sends are taken over at once. Both stores read the rows and ask
 * this one rule what to do with each channel.
 */

/** One channel's row, as the claiming transaction sees it. */
export interface ClaimCandidate {
  channel: Channel;
  status: NotificationStatus;
  parked: boolean;
  lastError: string | null;
  claimedBy: string | null;
  /** Another worker's claim, within its lease, whose worker the store believes alive. */
  heldByLiveWorker: boolean;
}

export interface ClaimDecision {
  /** Send these now: the claim is ours. */
  granted: Channel[];
  /** Another live worker is sending these: do not send, look again later. */
  held: { channel: Channel; by: string }[];
  /** Recorded failed, but the dead-letter copy was never confirmed (its worker stopped in between): park them. */
  unparked: { channel: Channel; lastError: string | null }[];
}

/**
 * A pending channel is granted unless a live worker holds it. A sent channel is
 * done. A failed channel is parked if it is not yet; a replay (the operator asked
 * for another round) reopens it.
 */
export function decideClaims(rows: readonly ClaimCandidate[], options: { replay: boolean }): ClaimDecision {
  const decision: ClaimDecision = { granted: [], held: [], unparked: [] };
  for (const row of rows) {
    if (row.status === 'sent') continue;
    if (row.status === 'failed' && !options.replay) {
      if (!row.parked) decision.unparked.push({ channel: row.channel, lastError: row.lastError });
      continue;
    }
    if (row.heldByLiveWorker) decision.held.push({ channel: row.channel, by: row.claimedBy ?? 'another worker' });
    else decision.granted.push(row.channel);
  }
  return decision;
}

/** A claim outlives the longest send a provider may take (PROVIDER_TIMEOUT_MS), with room to record it. */
export function claimLeaseMs(providerTimeoutMs: number): number {
  return providerTimeoutMs + Math.max(5000, providerTimeoutMs / 2);
}
