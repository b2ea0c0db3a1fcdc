import type { Config } from '../../shared/runtime/config.js';
import { logger } from '../../shared/runtime/logger.js';
import type { Providers } from '../notifier.js';
import { FailureInjectingProvider } from './failure-injection.js';
import type { NotificationProvider } from './provider.js';
import { SimulatedProvider } from './simulated.js';
import { SmsWebhookProvider } from './sms-webhook.js';
import { SmtpProvider } from './smtp.js';

/** Which provider serves which channel is configuration (EMAIL_PROVIDER, SMS_PROVIDER). */
export function createProviders(config: Config): Providers {
  const { email, sms, timeoutMs, failureRate } = config.providers;
  const simulated = () => new SimulatedProvider(config.notifyLatencyMs);
  const providers: Providers = {
    email: email.kind === 'smtp' ? new SmtpProvider(email.url, email.from, timeoutMs, email.maxConnections) : simulated(),
    sms: sms.kind === 'webhook' ? new SmsWebhookProvider(sms.url, sms.token, timeoutMs, sms.maxConnections) : simulated(),
  };
  if (failureRate === 0) return providers;
  logger.warn('NOTIFY_FAILURE_RATE is set: failing this share of every send on purpose (a demo setting)', { failureRate });
  const flaky = (p: NotificationProvider) => new FailureInjectingProvider(p, failureRate);
  return { email: flaky(providers.email), sms: flaky(providers.sms) };
}
