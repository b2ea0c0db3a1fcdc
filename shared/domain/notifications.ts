import type { TransferEvent } from './contract.js';
import { formatMinor } from './money.js';

/** Every transfer notifies its sender on each of these channels, each tracked on its own. */
export const CHANNELS = ['email', 'sms'] as const;
export type Channel = (typeof CHANNELS)[number];

export type NotificationStatus = 'pending' | 'sent' | 'failed';

/**
 * transient: worth another attempt later (timeout, connection refused, 5xx).
 * permanent: another attempt would fail the same way (4xx, invalid recipient).
 */
export type FailureKind = 'transient' | 'permanent';

export interface NotificationState {
  channel: Channel;
  status: NotificationStatus;
  attempts: number;
  lastError: string | null;
  updatedAt: string;
  /**
   * A failed channel is parked once its dead-letter copy is confirmed by the broker.
   * Until then it is still being handled: it shows as pending (see visibleState), and
   * a redelivery parks it.
   */
  parked: boolean;
}

export interface Contact {
  name: string;
  email: string;
  phone: string;
}

/** What a provider is asked to deliver. The text always names the transfer id, so anyone holding it can trace it. */
export interface OutgoingNotification {
  channel: Channel;
  transferId: string;
  to: string;
  subject: string;
  text: string;
  /** Stable per transfer and channel, so a provider can drop a duplicate we could not prevent. */
  idempotencyKey: string;
}

export function composeNotification(channel: Channel, event: TransferEvent, sender: Contact): OutgoingNotification {
  const t = event.transfer;
  const amount = `${formatMinor(t.amountMinor)} ${t.currency}`;
  const reference = t.reference ? ` Reference: ${t.reference}.` : '';
  const idempotencyKey = `${t.id}:${channel}`;
  if (channel === 'email') {
    return {
      channel,
      transferId: t.id,
      to: sender.email,
      subject: `Transfer ${t.id}: ${amount} sent to ${t.toAccount}`,
      text:
        `Hello ${sender.name},\n\n` +
        `You sent ${amount} from account ${t.fromAccount} to account ${t.toAccount}.${reference}\n\n` +
        `Transfer id: ${t.id}\nDate: ${event.occurredAt}\n`,
      idempotencyKey,
    };
  }
  return {
    channel,
    transferId: t.id,
    to: sender.phone,
    subject: `Transfer ${t.id}`,
    text: `You sent ${amount} to ${t.toAccount}. Transfer id ${t.id}`,
    idempotencyKey,
  };
}

/** A channel with no recorded attempt is pending; the list always covers every channel. */
export function notificationStates(recorded: readonly NotificationState[], since: string): NotificationState[] {
  return CHANNELS.map(
    (channel) =>
      recorded.find((s) => s.channel === channel) ?? { channel, status: 'pending', attempts: 0, lastError: null, updatedAt: since, parked: false },
  );
}

/** What a reader is told: a channel shows failed only once it is parked where an operator can replay it. */
export function visibleState(state: NotificationState): NotificationState {
  return state.status === 'failed' && !state.parked ? { ...state, status: 'pending' } : state;
}

/**
 * A transfer exists only once its money has moved; what remains open is telling the customer.
 * accepted: some notification still pending; notified: all sent; notification_failed: one gave up.
 */
export function transferStatus(states: readonly NotificationState[]): 'accepted' | 'notified' | 'notification_failed' {
  const visible = states.map(visibleState);
  if (visible.some((s) => s.status === 'failed')) return 'notification_failed';
  if (visible.every((s) => s.status === 'sent')) return 'notified';
  return 'accepted';
}

export function isChannel(value: unknown): value is Channel {
  return typeof value === 'string' && (CHANNELS as readonly string[]).includes(value);
}
