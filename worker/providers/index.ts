import type { Config } from '../../shared/runtime/config.js';
import type { Providers } from '../notifier.js';
import { SimulatedProvider } from './simulated.js';
import { SmsWebhookProvider } from './sms-webhook.js';
import { SmtpProvider } from './smtp.js';

/** Which provider serves which channel is configuration (EMAIL_PROVIDER, SMS_PROVIDER). */
export function createProviders(config: Config): Providers {
  const { email, sms, timeoutMs, simulatedFailureRate } = config.providers;
  const simulated = () => new SimulatedProvider(config.notifyLatencyMs, simulatedFailureRate);
  return {
    email: email.kind === 'smtp' ? new SmtpProvider(email.url, email.from, timeoutMs, email.maxConnections) : simulated(),
    sms: sms.kind === 'webhook' ? new SmsWebhookProvider(sms.url, sms.token, timeoutMs, sms.maxConnections) : simulated(),
  };
}
