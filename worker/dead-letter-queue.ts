import type { EventEmitter } from 'node:events';
import type { Channel, ConfirmChannel, GetMessage } from 'amqplib';
import { ConfirmPublisher } from '../shared/broker/publisher.js';
import type { Topology } from '../shared/broker/topology.js';
import { BROKER_HEADERS, HEADERS, parseTransferEvent } from '../shared/domain/contract.js';
import { CHANNELS } from '../shared/domain/notifications.js';

/** One parked message as an operator reads it. */
export interface ParkedMessage {
  transferId: string | null;
  channel: string;
  attempt: number | null;
  reason: string;
  failedAt: string | null;
  messageId: string | null;
}

interface DeathRecord {
  reason?: string;
  queue?: string;
  time?: { value?: number } | Date | number;
}

function deathTime(time: DeathRecord['time']): string | null {
  const seconds = typeof time === 'number' ? time : time instanceof Date ? time.getTime() / 1000 : time?.value;
  return typeof seconds === 'number' ? new Date(seconds * 1000).toISOString() : null;
}

/** Our own x-failure-reason when the worker parked it; otherwise what the broker wrote in x-death. */
export function describe(message: GetMessage): ParkedMessage {
  const h = (message.properties.headers ?? {}) as Record<string, unknown>;
  const death = (Array.isArray(h['x-death']) ? h['x-death'][0] : undefined) as DeathRecord | undefined;
  let transferId: string | null = message.properties.correlationId ?? null;
  if (!transferId) {
    try {
      transferId = JSON.parse(message.content.toString()).transfer.id ?? null;
    } catch {
      transferId = null;
    }
  }
  const brokerReason = death?.reason ? `broker: ${death.reason}${death.queue ? ` in ${death.queue}` : ''}` : 'unknown';
  return {
    transferId,
    channel: typeof h[HEADERS.channel] === 'string' ? (h[HEADERS.channel] as string) : 'all',
    attempt: h[HEADERS.attempt] === undefined ? null : Number(h[HEADERS.attempt]),
    reason: typeof h[HEADERS.failureReason] === 'string' ? (h[HEADERS.failureReason] as string) : brokerReason,
    failedAt: typeof h[HEADERS.failedAt] === 'string' ? (h[HEADERS.failedAt] as string) : deathTime(death?.time),
    messageId: message.properties.messageId ?? null,
  };
}

/**
 * Reads up to `limit` parked messages without taking them: each is fetched
 * unacked and handed back when the channel closes.
 */
export async function listDeadLetters(channel: Channel, t: Topology, limit: number): Promise<{ total: number; shown: ParkedMessage[] }> {
  const { messageCount } = await channel.checkQueue(t.deadQueue);
  const shown: ParkedMessage[] = [];
  while (shown.length < limit) {
    const message = await channel.get(t.deadQueue, { noAck: false });
    if (!message) break;
    shown.push(describe(message));
  }
  channel.nackAll(true);
  return { total: messageCount, shown };
}

/**
 * Sends up to `limit` parked messages back to the work queue for a new round of
 * attempts (x-attempt starts again at 1). Each is removed from the dead-letter
 * queue only after the broker confirmed its copy, so a crash here can duplicate
 * a replay but never lose one; channels already sent are not sent again. A
 * message parked whole by the broker (its delivery limit) names no channel: it is
 * replayed as one message per channel, so each channel gets its new round.
 */
export async function replayDeadLetters(connection: EventEmitter, channel: ConfirmChannel, t: Topology, limit: number): Promise<ParkedMessage[]> {
  const publisher = new ConfirmPublisher(channel, connection);
  const replayed: ParkedMessage[] = [];
  // Only what is parked now: a replay that fails again is parked behind us and must not be taken twice.
  const { messageCount } = await channel.checkQueue(t.deadQueue);
  const take = Math.min(limit, messageCount);
  while (replayed.length < take) {
    const message = await channel.get(t.deadQueue, { noAck: false });
    if (!message) break;
    const p = message.properties;
    const kept = Object.fromEntries(
      Object.entries(p.headers ?? {}).filter(([k]) => !BROKER_HEADERS.test(k) && k !== HEADERS.failureReason && k !== HEADERS.failedAt && k !== HEADERS.failedBy),
    );
    const headers = { ...kept, [HEADERS.attempt]: 1, [HEADERS.replayedAt]: new Date().toISOString() };
    const perChannel = kept[HEADERS.channel] === undefined && parseTransferEvent(message.content).ok ? CHANNELS : [undefined];
    await Promise.all(
      perChannel.map((channel) =>
        publisher.publish('', t.workQueue, message.content, {
          contentType: p.contentType,
          messageId: p.messageId,
          correlationId: p.correlationId,
          timestamp: p.timestamp,
          type: p.type,
          appId: p.appId,
          headers: channel === undefined ? headers : { ...headers, [HEADERS.channel]: channel },
        }),
      ),
    );
    channel.ack(message);
    replayed.push(describe(message));
  }
  return replayed;
}
