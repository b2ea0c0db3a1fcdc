import { expect } from 'chai';
import { tierName, topology } from '../../shared/broker/topology.js';
import { HEADERS, readDeliveryScope } from '../../shared/domain/contract.js';
import { nextStep } from '../../shared/domain/retry-policy.js';
import { ProviderError, failureKind } from '../../worker/providers/provider.js';
import { classifyHttpStatus } from '../../worker/providers/sms-webhook.js';
import { classifySmtpError } from '../../worker/providers/smtp.js';

describe('retry rules', () => {
  const policy = { delaysMs: [1000, 5000, 30000, 120000], maxAttempts: 5 };

  it('When attempts fail transiently, then they follow the delays and the fifth gives up', () => {
    expect([1, 2, 3, 4, 5].map((a) => nextStep(policy, a, 'transient'))).to.deep.equal([
      { kind: 'retry', attempt: 2, delayMs: 1000 },
      { kind: 'retry', attempt: 3, delayMs: 5000 },
      { kind: 'retry', attempt: 4, delayMs: 30000 },
      { kind: 'retry', attempt: 5, delayMs: 120000 },
      { kind: 'give-up' },
    ]);
  });

  it('When attempts outnumber the delays, then the last delay repeats', () => {
    expect(nextStep({ delaysMs: [100, 200], maxAttempts: 6 }, 4, 'transient')).to.deep.equal({ kind: 'retry', attempt: 5, delayMs: 200 });
  });

  it('When a failure is permanent, then there is no retry even on the first attempt', () => {
    expect(nextStep(policy, 1, 'permanent')).to.deep.equal({ kind: 'give-up' });
  });

  it('When an HTTP gateway answers, then 5xx, 408 and 429 are transient and other 4xx permanent', () => {
    expect([500, 502, 503, 504, 408, 429].map(classifyHttpStatus)).to.deep.equal(Array(6).fill('transient'));
    expect([400, 401, 403, 404, 410, 422].map(classifyHttpStatus)).to.deep.equal(Array(6).fill('permanent'));
  });

  it('When an SMTP server answers, then 4xx is transient (try later) and 5xx permanent (no such user)', () => {
    const smtp = (fields: object) => classifySmtpError(Object.assign(new Error('x'), fields)).kind;
    expect(smtp({ responseCode: 421 })).to.equal('transient');
    expect(smtp({ responseCode: 451 })).to.equal('transient');
    expect(smtp({ responseCode: 550 })).to.equal('permanent');
    expect(smtp({ responseCode: 553 })).to.equal('permanent');
    expect(smtp({ code: 'ETIMEDOUT' })).to.equal('transient');
    expect(smtp({ code: 'ECONNECTION' })).to.equal('transient');
    expect(smtp({ code: 'EAUTH' })).to.equal('permanent');
  });

  it('When a provider throws something it did not classify, then it is treated as transient', () => {
    expect(failureKind(new TypeError('boom'))).to.equal('transient');
    expect(failureKind(new ProviderError('no', 'permanent'))).to.equal('permanent');
  });

  it('When a message carries no retry headers, then it is attempt 1 for every channel', () => {
    expect(readDeliveryScope(undefined)).to.deep.equal({ ok: true, attempt: 1, channel: null, replay: false });
    expect(readDeliveryScope({ [HEADERS.attempt]: 3, [HEADERS.channel]: 'sms' })).to.deep.equal({ ok: true, attempt: 3, channel: 'sms', replay: false });
    expect(readDeliveryScope({ [HEADERS.channel]: 'fax' }).ok).to.equal(false);
    expect(readDeliveryScope({ [HEADERS.attempt]: 0 }).ok).to.equal(false);
  });

  it('When delay tiers are named, then the names read well and each tier has its own queue', () => {
    expect([1000, 5000, 30000, 120000, 1500, 3_600_000].map(tierName)).to.deep.equal(['1s', '5s', '30s', '2m', '1500ms', '1h']);
    expect(topology('bank', { retryDelaysMs: [1000, 120000], deliveryLimit: 10 }).delayQueues.map((q) => q.name)).to.deep.equal([
      'bank.notifications.retry.1s',
      'bank.notifications.retry.2m',
    ]);
  });
});
