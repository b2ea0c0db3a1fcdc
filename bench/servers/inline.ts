import express from 'express';
import { parseTransferRequest } from '../../api/transfer-request.js';
import type { TransferEvent } from '../../shared/domain/contract.js';
import { loadConfig } from '../../shared/runtime/config.js';
import { CHANNELS, composeNotification } from '../../shared/domain/notifications.js';
import { openStore } from '../../shared/store/index.js';
import { SimulatedProvider } from '../../worker/providers/simulated.js';

/**
 * What going async is measured against: the same transfer through the same store,
 * then the email and the SMS sent one after the other (NOTIFY_LATENCY_MS each)
 * and recorded before the answer, as a handler without a queue would do it.
 */
const config = loadConfig();
const store = await openStore(config);
const provider = new SimulatedProvider(config.notifyLatencyMs);
const lease = { owner: 'inline-bench', leaseMs: 3_600_000 };
const claimant = await store.registerClaimant('inline-bench', 60_000);

const app = express();
app.disable('x-powered-by');
app.use(express.json({ limit: '16kb' }));
app.post('/transfer', async (req, res) => {
  const request = parseTransferRequest(req.body);
  const receipt = await store.executeTransfer(request, null, lease);
  if (receipt.replayed) throw new Error('no idempotency keys here');
  // Nobody publishes here; mark the event done so no relay sharing this database picks it up.
  await store.markPublished([receipt.event.id]);
  const event = JSON.parse(receipt.event.payload) as TransferEvent;
  const claim = (await store.claimSends(receipt.transfer.id, CHANNELS, claimant, { replay: false }))!;
  for (const channel of claim.granted) await provider.send(composeNotification(channel, event, claim.contact));
  await store.recordAttempts(receipt.transfer.id, claim.granted.map((channel) => ({ channel, status: 'sent' as const, error: null })), claimant);
  res.status(201).json({ transferId: receipt.transfer.id, status: 'notified' });
});
const server = app.listen(config.port, () => {
  process.stdout.write(`${JSON.stringify({ message: 'listening', port: (server.address() as { port: number }).port })}\n`);
});
process.on('SIGTERM', () => server.close(() => void store.close().then(() => process.exit(0))));
